//! Wiring a node: the runtime, logging, the store, the authorization server and the service layer.
//!
//! Owns: the order things are opened in and where they live in the data directory
//! (`concord.db`; the signing keys in `keys/`, which concord-auth manages). A `node.key` left by
//! an older version (the HS256 secret) is no longer read.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use concord_auth::{AuthConfig, AuthServer};
use concord_hub::access::AccessConfig;
use concord_hub::audit::AuditTrail;
use concord_hub::feed::FeedConfig;
use concord_hub::identity::{IdentityConfig, InvalidNhsNumber};
use concord_hub::{Hub, HubConfig, SystemClock};
use concord_mpi::MatchConfig;
use concord_store_sqlite::{SqliteAuditLog, SqliteOptions, SqliteStore, Synchronous};
use tracing_subscriber::EnvFilter;

use crate::config::Config;

/// The async runtime of a serving node (`serve`, `demo`), its blocking pool sized by
/// `server.blocking_threads`.
pub fn runtime(config: &Config) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.server.blocking_pool_size())
        .build()
}

pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("log.level {:?} is not a valid filter", config.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

pub fn open_store(config: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    let mut options = SqliteOptions::new(config.database_path());
    options.readers = config.store.readers.max(readers_needed(config));
    options.synchronous = if config.store.synchronous == "normal" {
        Synchronous::Normal
    } else {
        Synchronous::Full
    };
    Ok(Arc::new(SqliteStore::open(&options)?))
}

/// The reader connections a serving node needs so that a read on an async worker
/// (`concord-rest`'s `inline`) never waits for one. A store call holds one reader while it runs:
/// one per worker covers the inline reads, and two per blocking thread leave room for a store call
/// made while another is open.
fn readers_needed(config: &Config) -> u32 {
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let needed = config.server.blocking_pool_size() * 2 + workers;
    u32::try_from(needed).unwrap_or(u32::MAX)
}

pub fn hub(config: &Config, store: Arc<SqliteStore>) -> anyhow::Result<Hub> {
    let hub = Hub::new(
        store.clone(),
        Arc::new(SystemClock),
        HubConfig {
            default_count: config.search.default_count,
            max_count: config.search.max_count,
            max_bundle_entries: config.search.max_bundle_entries,
            feed: FeedConfig {
                source: config.feed.source.clone(),
                local_time: config.feed_local_time()?,
            },
            identity: IdentityConfig {
                invalid_nhs_number: if config.identity.invalid_nhs_number == "flag" {
                    InvalidNhsNumber::Flag
                } else {
                    InvalidNhsNumber::Reject
                },
                matching: MatchConfig {
                    link_threshold: config.identity.link_threshold,
                    review_threshold: config.identity.review_threshold,
                },
                candidates: config.identity.candidates,
                master_index: config.identity.master_index,
            },
            access: AccessConfig {
                organization: config.node_organization(),
                policy: config.access_policy()?,
                break_glass_ms: i64::from(config.access.break_glass_hours) * 3_600_000,
            },
        },
    )
    .map_err(|e| anyhow::anyhow!("cannot load the master patient index: {e}"))?
    .with_message_log(store)
    .with_audit(audit_trail(config)?);
    Ok(match crate::sources::federation(config)? {
        Some(federation) => hub.with_federation(federation),
        None => hub,
    })
}

/// The node's audit trail, in `audit.db` beside the store: every request is recorded there.
pub fn audit_trail(config: &Config) -> anyhow::Result<AuditTrail> {
    let path = config.store.data_dir.join("audit.db");
    let log = SqliteAuditLog::open(&path)
        .with_context(|| format!("cannot open the audit trail {}", path.display()))?;
    let observer = if config.federation.origin.trim().is_empty() {
        config
            .node_organization()
            .unwrap_or_else(|| "concord".into())
    } else {
        config.federation.origin.clone()
    };
    AuditTrail::open(Arc::new(log), &observer)
        .map_err(|e| anyhow::anyhow!("cannot start the audit trail: {e}"))
}

/// Opens the node's authorization server with default settings (no public base URL): its key
/// ring lives in `<data_dir>/keys/`, created the first time.
pub fn node_key(data_dir: &Path) -> anyhow::Result<AuthServer> {
    open_auth(data_dir, AuthConfig::default())
}

/// Opens the authorization server the configuration describes: tokens are issued for (and
/// required to name) `server.base_url` when it is set.
pub fn auth_server(config: &Config) -> anyhow::Result<AuthServer> {
    open_auth(&config.store.data_dir, config.auth_config())
}

fn open_auth(data_dir: &Path, auth: AuthConfig) -> anyhow::Result<AuthServer> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    AuthServer::open(data_dir, auth)
        .map_err(|e| anyhow::anyhow!("{}: cannot open the signing keys: {e}", data_dir.display()))
}

/// The node's whole HTTP application: the FHIR API (`concord_rest::router`) and the portal at
/// `/portal`, registered as a client of the node's authorization server with a redirect URI on
/// each of `roots` (the addresses people reach the node at, e.g. `http://127.0.0.1:8080`).
pub fn app(
    state: concord_rest::AppState,
    roots: &[String],
    demo_sign_ins: Vec<concord_portal::DemoSignIn>,
) -> anyhow::Result<axum::Router> {
    let auth = state.auth.clone();
    let secret = concord_portal::register_client(&auth, roots).map_err(|e| {
        anyhow::anyhow!("cannot register the portal with the authorization server: {e}")
    })?;
    let fhir = concord_rest::router(state);
    let portal = concord_portal::PortalState::new(
        concord_portal::PortalConfig {
            client_secret: secret,
            demo_sign_ins,
        },
        auth,
        fhir.clone(),
    );
    Ok(concord_portal::router(portal).merge(fhir))
}

/// The roots a node listening on `addr` is reached at, for the portal's redirect URIs: the
/// configured public URL (the FHIR base without `/fhir`) and the address itself, with
/// `localhost` and `127.0.0.1` for a wildcard or loopback address.
pub fn roots(base_url: &str, addr: std::net::SocketAddr) -> Vec<String> {
    let mut roots = Vec::new();
    let base = base_url.trim_end_matches('/');
    if !base.is_empty() {
        roots.push(base.strip_suffix("/fhir").unwrap_or(base).to_string());
    }
    let port = addr.port();
    if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        roots.push(format!("http://localhost:{port}"));
        roots.push(format!("http://127.0.0.1:{port}"));
    }
    if !addr.ip().is_unspecified() {
        roots.push(format!("http://{addr}"));
    }
    roots.dedup();
    roots
}
