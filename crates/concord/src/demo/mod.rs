//! `concord demo`: a whole region in one process. A hub, six simulated organisations (GP practice,
//! acute hospital, mental health trust, community trust, ambulance service, council adult social
//! care) and a neighbouring region's hub with its own hospital, each an ordinary Concord node with
//! its own embedded store and its own HTTP listener, talking to each other over real HTTP with
//! their own keys, exactly as separate deployments would.
//!
//! Owns: starting the nodes, loading the synthetic people into the organisations on the first
//! run (`data`), starting each organisation's identity feed to its hub (`crate::announce`),
//! `--slow` and `--down`, and printing the URLs and sign-ins. Does not: contain any behaviour the
//! real nodes lack; the demo wires nodes, it does not simulate them.

pub mod accounts;
pub mod data;
pub mod names;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use concord_auth::{AuthServer as NodeKey, Claims};
use concord_fhir::RequestContext;
use concord_rest::{AppState, router};

use crate::config::{Config, Overrides, SourceAuth, SourceEntry};
use crate::node;

/// What `concord demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub listen: String,
    pub data: PathBuf,
    /// `SOURCE=MS`: that organisation answers every request this much later.
    pub slow: Vec<String>,
    /// That organisation's server is not running (connections are refused).
    pub down: Vec<String>,
    /// The Synthea bundles the people's clinical content comes from.
    pub synthea: PathBuf,
    /// How many people to generate on the first run.
    pub people: usize,
    /// Deadline the hub gives each source.
    pub deadline_ms: u64,
}

/// A running demo: the addresses of every node, for tests and benchmarks.
pub struct Running {
    pub hub_base: String,
    pub neighbour_base: String,
    pub organisations: BTreeMap<String, String>,
    /// A clinician token for the hub.
    pub clinician_token: String,
    /// Resolves when the demo should stop.
    pub handles: Vec<tokio::task::JoinHandle<()>>,
}

/// The hub's id and name.
const HUB_ID: &str = "home-region";
const HUB_NAME: &str = "Concord Care Record (demo region)";
const NEIGHBOUR_ID: &str = "neighbour-region";
const NEIGHBOUR_NAME: &str = "Northern Shared Care Record (neighbouring region)";

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = start(&options, stopped).await?;
    print_banner(&options, &running);
    crate::serve::shutdown_signal().await;
    let _ = stop.send(true);
    for handle in running.handles {
        let _ = handle.await;
    }
    Ok(())
}

/// Starts every node and returns when all are listening and the identity feeds have caught up.
pub async fn start(
    options: &DemoOptions,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Running> {
    let slow = parse_slow(&options.slow)?;
    for id in slow.keys().chain(options.down.iter()) {
        if !data::ORGS.iter().any(|o| o.id == id) {
            bail!(
                "--slow/--down: {id:?} is not a demo organisation; they are: {}",
                data::ORGS
                    .iter()
                    .map(|o| o.id)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    std::fs::create_dir_all(&options.data)
        .with_context(|| format!("cannot create {}", options.data.display()))?;
    let first_run = !options.data.join("loaded").exists();
    let generated = if first_run {
        let today = today();
        eprintln!(
            "concord demo: first run, generating {} people from {}",
            options.people,
            options.synthea.display()
        );
        Some(data::build(&options.synthea, 7, options.people, &today)?)
    } else {
        None
    };

    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut handles = Vec::new();

    // The organisations' edges.
    let mut organisations = BTreeMap::new();
    let mut edges = Vec::new();
    for org in data::ORGS {
        let dir = options.data.join("orgs").join(org.id);
        let mut config = node_config(&dir, "127.0.0.1:0")?;
        config.feed.source = org.ods.to_string();
        config.access.organization = org.ods.to_string();
        // The region's hub links the organisations' Patients (they are announced to it).
        config.identity.master_index = false;
        let store = node::open_store(&config)?;
        let hub = node::hub(&config, store)?;
        let key = node::node_key(&dir)?;
        if let Some(generated) = &generated {
            load(&hub, org.id, generated)?;
        }
        let down = options.down.iter().any(|d| d == org.id);
        let (base, handle) = if down {
            (refused_base()?, None)
        } else {
            let delay = slow.get(org.id).copied().unwrap_or_default();
            let (addr, handle) = listen(&hub, &key, delay, wait(stopped.clone())).await?;
            (format!("http://{addr}/fhir"), Some(handle))
        };
        handles.extend(handle);
        organisations.insert(org.id.to_string(), base.clone());
        edges.push((org, hub, key, base, dir));
    }

    // The neighbouring region's hub federates its own hospital.
    let neighbour_dir = options.data.join("neighbour-hub");
    let neighbour_key = node::node_key(&neighbour_dir)?;
    let mut neighbour_config = node_config(&neighbour_dir, "127.0.0.1:0")?;
    neighbour_config.federation.origin = NEIGHBOUR_ID.into();
    neighbour_config.federation.name = NEIGHBOUR_NAME.into();
    // The home hub's address is only known once it listens; the neighbour needs no route back
    // for the demo, so it lists only its own organisations.
    let neighbour_sources: Vec<SourceEntry> = edges
        .iter()
        .filter(|(org, ..)| org.region == "neighbour")
        .map(|(org, _, _, base, _)| source_entry(org, base, options.deadline_ms))
        .collect();
    let mut neighbour_tokens = BTreeMap::new();
    for (org, _, key, _, _) in &edges {
        neighbour_tokens.insert(org.id.to_string(), system_token(key, NEIGHBOUR_ID)?);
    }
    let neighbour_hub =
        node::hub(&neighbour_config, node::open_store(&neighbour_config)?)?.with_federation(
            federation(&neighbour_config, &neighbour_sources, &neighbour_tokens)?,
        );
    let (neighbour_addr, handle) = listen(
        &neighbour_hub,
        &neighbour_key,
        Duration::ZERO,
        wait(stopped.clone()),
    )
    .await?;
    handles.push(handle);
    let neighbour_base = format!("http://{neighbour_addr}/fhir");

    // The home hub.
    let hub_dir = options.data.join("hub");
    let hub_key = node::node_key(&hub_dir)?;
    let mut hub_config = node_config(&hub_dir, &options.listen)?;
    hub_config.federation.origin = HUB_ID.into();
    hub_config.federation.name = HUB_NAME.into();
    let mut sources: Vec<SourceEntry> = edges
        .iter()
        .filter(|(org, ..)| org.region == "home")
        .map(|(org, _, _, base, _)| source_entry(org, base, options.deadline_ms))
        .collect();
    sources.push(SourceEntry {
        id: NEIGHBOUR_ID.into(),
        name: NEIGHBOUR_NAME.into(),
        ods_code: None,
        kind: "region".into(),
        base_url: neighbour_base.clone(),
        deadline_ms: options.deadline_ms,
        resource_types: Vec::new(),
        fetch: "everything".into(),
        freshness: "live".into(),
        last_load: None,
        max_age_hours: 24,
        auth: SourceAuth::None,
    });
    let mut tokens: BTreeMap<String, String> = BTreeMap::new();
    for (org, _, key, _, _) in &edges {
        tokens.insert(org.id.to_string(), system_token(key, HUB_ID)?);
    }
    tokens.insert(NEIGHBOUR_ID.into(), system_token(&neighbour_key, HUB_ID)?);
    let home_hub = node::hub(&hub_config, node::open_store(&hub_config)?)?
        .with_federation(federation(&hub_config, &sources, &tokens)?);
    let (hub_addr, handle) = listen_on(
        &home_hub,
        &hub_key,
        Duration::ZERO,
        &options.listen,
        Some(accounts::sign_ins()),
        wait(stopped.clone()),
    )
    .await?;
    handles.push(handle);
    let hub_base = format!("http://{hub_addr}/fhir");

    // Identity feeds: each organisation announces its people to its region's hub. A down
    // organisation's feed still runs: the organisation is unreachable to the hub, not stopped.
    let home_token = system_token(&hub_key, "identity-feed")?;
    let neighbour_token = system_token(&neighbour_key, "identity-feed")?;
    let mut feeds = Vec::new();
    for (org, hub, _, base, dir) in edges {
        let (hub_url, token) = if org.region == "home" {
            (hub_base.clone(), home_token.clone())
        } else {
            (neighbour_base.clone(), neighbour_token.clone())
        };
        let mut settings = crate::announce::AnnounceSettings::new(hub_url, org.id, token, base);
        settings.poll_interval = Duration::from_millis(500);
        let cursor = dir.join("announce.cursor");
        feeds.push((org, hub.clone(), settings.clone()));
        let feed = crate::announce::run(hub, settings, cursor, wait(stopped.clone()));
        let org_id = org.id;
        handles.push(tokio::spawn(async move {
            if let Err(e) = feed.await {
                tracing::error!(organisation = org_id, error = %e, "an identity feed stopped");
            }
        }));
    }
    for (org, edge, _) in &feeds {
        let target = if org.region == "home" {
            &home_hub
        } else {
            &neighbour_hub
        };
        wait_announced(edge, target, org.id, Duration::from_secs(600)).await?;
    }
    if let Some(generated) = &generated {
        let people: Vec<String> = generated
            .people
            .iter()
            .map(|p| {
                format!(
                    "{}  {} {}  born {}  {}  at {}{}",
                    p.nhs_number,
                    p.given,
                    p.family,
                    p.birth_date,
                    p.postcode,
                    p.orgs.join(", "),
                    if p.highlights.is_empty() {
                        String::new()
                    } else {
                        format!("  ({})", p.highlights.join("; "))
                    }
                )
            })
            .collect();
        std::fs::write(options.data.join("people.txt"), people.join("\n") + "\n")
            .context("cannot write people.txt")?;
    }
    accounts::create(&home_hub, &hub_key, &options.data.join("people.txt")).await?;
    if first_run {
        std::fs::write(options.data.join("loaded"), b"")
            .context("cannot mark the demo data as loaded")?;
    }
    Ok(Running {
        hub_base,
        neighbour_base,
        organisations,
        // A GP at the practice every demo person is registered with: a legitimate relationship
        // with all of them, so the demo opens records without break-glass.
        clinician_token: user_token(&hub_key, "demo-clinician", "clinician", data::ORGS[0].ods)?,
        handles,
    })
}

/// Waits until the hub holds every Patient the organisation holds, announced by its identity
/// feed (or the deadline passes).
async fn wait_announced(
    edge: &concord_hub::Hub,
    hub: &concord_hub::Hub,
    source: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let count = |hub: &concord_hub::Hub, params: Vec<(String, String)>| {
        let hub = hub.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let ctx = RequestContext::system("concord-demo", "wait");
                hub.search(
                    &ctx,
                    Some("Patient"),
                    &params,
                    concord_hub::search::Handling::Lenient,
                    "http://demo.invalid/fhir",
                )
                .map(|b| b.total.unwrap_or(0))
            })
            .await
            .map_err(|_| anyhow::anyhow!("a count failed"))?
            .map_err(|e| anyhow::anyhow!("cannot count Patients: {e}"))
        }
    };
    let summary = ("_summary".to_string(), "count".to_string());
    let held = count(edge, vec![summary.clone()]).await?;
    let started = std::time::Instant::now();
    loop {
        let announced = count(
            hub,
            vec![
                (
                    "identifier".into(),
                    format!("{}{source}|", concord_hub::federate::SOURCE_RECORD_SYSTEM),
                ),
                summary.clone(),
            ],
        )
        .await?;
        if announced >= held {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("{source}'s identity feed announced {announced} of {held} people in time");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The configuration of one demo node: the built-in defaults with its own data directory.
fn node_config(dir: &Path, listen: &str) -> anyhow::Result<Config> {
    let mut config = Config::load(
        None,
        &Overrides {
            listen: Some(listen.to_string()),
            data_dir: Some(dir.to_path_buf()),
            mllp: None,
        },
    )?;
    // The demo's machine is a laptop: a power cut losing the last commit is acceptable, and
    // loading is several times faster.
    config.store.synchronous = "normal".into();
    config.store.readers = 4;
    // Each node says which organisation runs it (an edge is one organisation's system); the
    // environment must not make every node the same one.
    config.access.organization = String::new();
    Ok(config)
}

/// A hub's federation over registry entries, each authenticated with a bearer token the source's
/// own key signed (a deployment names the token's environment variable in the config instead).
fn federation(
    config: &Config,
    entries: &[SourceEntry],
    tokens: &BTreeMap<String, String>,
) -> anyhow::Result<concord_hub::federate::Federation> {
    let breaker = concord_source::BreakerConfig {
        failures: config.federation.breaker_failures,
        cool_down: Duration::from_millis(config.federation.breaker_cool_down_ms),
    };
    let mut sources = Vec::new();
    for entry in entries {
        let mut source = crate::sources::source_config(entry)?;
        if let Some(token) = tokens.get(&entry.id) {
            source.auth = concord_source::Auth::Bearer {
                token: token.clone(),
            };
        }
        sources.push(concord_source::Source::new(source, breaker)?);
    }
    Ok(concord_hub::federate::Federation::new(
        concord_hub::federate::FederationConfig {
            origin: config.federation.origin.clone(),
            name: config.federation.name.clone(),
            ods_code: None,
            max_hops: config.federation.max_hops,
        },
        sources,
    ))
}

/// A registry entry for one organisation's edge.
fn source_entry(org: &data::OrgSpec, base: &str, deadline_ms: u64) -> SourceEntry {
    let batch = org.kind == "social-care";
    SourceEntry {
        id: org.id.to_string(),
        name: org.name.to_string(),
        ods_code: Some(org.ods.to_string()),
        kind: org.kind.to_string(),
        base_url: base.to_string(),
        deadline_ms,
        resource_types: Vec::new(),
        fetch: "everything".into(),
        // The council's system hands over a nightly extract: its data is as old as the last load.
        freshness: if batch { "batch" } else { "live" }.into(),
        last_load: batch.then(|| format!("{}T02:00:00Z", today())),
        max_age_hours: 26,
        auth: SourceAuth::None,
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn today() -> String {
    concord_fhir::primitive::format_instant(now_secs() * 1000)[..10].to_string()
}

fn system_token(key: &NodeKey, sub: &str) -> anyhow::Result<String> {
    key.mint(&Claims {
        exp: now_secs() + 30 * 24 * 3600,
        ..Claims::system(sub, "system/*.*")
    })
    .map_err(|e| anyhow::anyhow!("{e}"))
}

fn user_token(key: &NodeKey, sub: &str, role: &str, org: &str) -> anyhow::Result<String> {
    key.mint(&Claims {
        exp: now_secs() + 12 * 3600,
        ..Claims::user(sub, vec![role.into()], Some(org.into()), "user/*.read")
    })
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Loads the generated people of one organisation, one transaction per Bundle.
fn load(hub: &concord_hub::Hub, org: &str, generated: &data::DemoData) -> anyhow::Result<()> {
    let ctx = RequestContext::system("concord-demo", "load");
    let Some(data) = generated.orgs.iter().find(|d| d.org.id == org) else {
        return Ok(());
    };
    for (i, bundle) in data.bundles.iter().enumerate() {
        hub.process_bundle(&ctx, bundle, "http://demo.invalid/fhir")
            .map_err(|e| anyhow::anyhow!("loading {org}'s bundle {i} failed: {e}"))?;
    }
    Ok(())
}

/// Serves one node on an ephemeral port (or the given one), answering `delay` late.
async fn listen(
    hub: &concord_hub::Hub,
    key: &NodeKey,
    delay: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    listen_on(hub, key, delay, "127.0.0.1:0", None, shutdown).await
}

async fn listen_on(
    hub: &concord_hub::Hub,
    key: &NodeKey,
    delay: Duration,
    addr: &str,
    portal: Option<Vec<concord_portal::DemoSignIn>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let state = AppState {
        hub: hub.clone(),
        auth: key.clone(),
        base_url: None,
        max_body_bytes: 16 * 1024 * 1024,
        metrics: None,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let app = match portal {
        Some(demo_sign_ins) => node::app(state, &node::roots("", local), demo_sign_ins)?,
        None => router(state),
    };
    let app = app
        .layer(middleware::from_fn_with_state(Arc::new(delay), slow_down))
        .into_make_service_with_connect_info::<SocketAddr>();
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "a demo node's server failed");
        }
    });
    Ok((local, handle))
}

/// `--slow`: the organisation's system is slow to answer.
async fn slow_down(State(delay): State<Arc<Duration>>, request: Request, next: Next) -> Response {
    if !delay.is_zero() {
        tokio::time::sleep(*delay).await;
    }
    next.run(request).await
}

/// A base URL on which nothing listens: the port was bound and released, so connections are
/// refused, as they are when an organisation's server is down.
fn refused_base() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    drop(listener);
    Ok(format!("http://{addr}/fhir"))
}

fn parse_slow(slow: &[String]) -> anyhow::Result<BTreeMap<String, Duration>> {
    slow.iter()
        .map(|s| {
            let (id, ms) = s
                .split_once('=')
                .with_context(|| format!("--slow {s:?}: write SOURCE=MS, e.g. gp=800"))?;
            let ms: u64 = ms
                .parse()
                .with_context(|| format!("--slow {s:?}: {ms:?} is not a number of milliseconds"))?;
            Ok((id.to_string(), Duration::from_millis(ms)))
        })
        .collect()
}

fn print_banner(options: &DemoOptions, running: &Running) {
    let hub = &running.hub_base;
    println!();
    println!("Concord demo is running: a region's shared care record in one process.");
    println!();
    let portal = hub.strip_suffix("/fhir").unwrap_or(hub);
    println!("  Portal (open this)     {portal}/portal/");
    println!("  Hub (FHIR R4)          {hub}");
    println!("  Neighbouring region    {}", running.neighbour_base);
    for (id, base) in &running.organisations {
        let note = if options.down.contains(id) {
            "  (down)"
        } else if options.slow.iter().any(|s| s.split('=').next() == Some(id)) {
            "  (slow)"
        } else {
            ""
        };
        println!("  {id:<22} {base}{note}");
    }
    println!();
    println!(
        "Portal sign-ins (password {} for all; the front page lists them):",
        accounts::PASSWORD
    );
    for account in accounts::sign_ins() {
        println!("  {:<18} {}", account.user, account.label);
    }
    println!();
    println!("A FHIR API token (a clinician at the GP practice), valid 12 hours:");
    println!("  export TOKEN={}", running.clinician_token);
    println!();
    println!("Try:");
    println!(
        "  curl -s -H \"Authorization: Bearer $TOKEN\" '{hub}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|NHSNUMBER'"
    );
    println!("  curl -s -H \"Authorization: Bearer $TOKEN\" '{hub}/Patient/ID/$summary'");
    println!("  curl -s -H \"Authorization: Bearer $TOKEN\" '{hub}/Patient/ID/$everything'");
    println!();
    println!("People to look for (NHS numbers are in the test range):");
    if let Ok(people) = std::fs::read_to_string(options.data.join("people.txt")) {
        for line in people.lines().take(12) {
            println!("  {line}");
        }
    }
    println!();
    println!("Data: {}   Stop with Ctrl-C.", options.data.display());
}
