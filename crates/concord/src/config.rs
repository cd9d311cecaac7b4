//! The one typed, layered configuration: built-in defaults (`config/defaults.toml`), then an
//! optional config file, then `CONCORD__SECTION__KEY` environment variables, then command-line
//! flags. Unknown keys are rejected and values are checked before anything starts.
//!
//! This is the only module that reads the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/defaults.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub store: Store,
    pub search: Search,
    pub identity: Identity,
    pub mllp: Mllp,
    pub feed: Feed,
    pub announce: Announce,
    pub federation: Federation,
    /// The source registry: the organisations' systems a hub federates.
    #[serde(default)]
    pub sources: Vec<SourceEntry>,
    pub auth: Auth,
    pub access: Access,
    pub log: Log,
}

/// The authorization server (docs/auth.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub access_token_seconds: i64,
    pub key_rotation_days: u64,
    pub key_retire_days: u64,
    #[serde(default)]
    pub external: Vec<ExternalIssuerEntry>,
}

/// An external OpenID Connect provider whose tokens are accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalIssuerEntry {
    pub issuer: String,
    pub audience: String,
    pub roles_claim: String,
    pub org_claim: String,
    #[serde(default)]
    pub role_map: std::collections::BTreeMap<String, String>,
    #[serde(default = "default_external_scope")]
    pub default_scope: String,
}

fn default_external_scope() -> String {
    "user/*.rs".into()
}

/// Access policy (docs/access.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    pub organization: String,
    pub relationship_recent_days: u32,
    pub break_glass_hours: u32,
    pub emergency_override_roles: Vec<String>,
    pub emergency_override_categories: Vec<String>,
    #[serde(default)]
    pub sensitive: std::collections::BTreeMap<String, Vec<String>>,
}

/// The identity feed to a hub (see `announce`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announce {
    pub hub_url: String,
    pub source_id: String,
    pub token: String,
    pub poll_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Federation {
    pub origin: String,
    pub name: String,
    pub ods_code: String,
    pub max_hops: u32,
    pub breaker_failures: u32,
    pub breaker_cool_down_ms: u64,
}

/// One `[[sources]]` entry. Secrets are never written here: `token_env`, `client_secret_env`
/// name environment variables, and keys and certificates are files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub ods_code: Option<String>,
    pub kind: String,
    pub base_url: String,
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// The resource types it serves; empty: all.
    #[serde(default)]
    pub resource_types: Vec<String>,
    /// "everything" (`Patient/[id]/$everything`) or "search" (one search per type).
    #[serde(default = "default_fetch")]
    pub fetch: String,
    /// "live", or "batch" for a source loaded by extracts.
    #[serde(default = "default_freshness")]
    pub freshness: String,
    /// Batch sources: when it was last loaded (an instant), and how old its data may get before
    /// views call it stale.
    #[serde(default)]
    pub last_load: Option<String>,
    #[serde(default = "default_max_age_hours")]
    pub max_age_hours: u64,
    #[serde(default)]
    pub auth: SourceAuth,
}

fn default_deadline_ms() -> u64 {
    2500
}
fn default_fetch() -> String {
    "search".into()
}
fn default_freshness() -> String {
    "live".into()
}
fn default_max_age_hours() -> u64 {
    24
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "kebab-case")]
pub enum SourceAuth {
    #[default]
    None,
    Bearer {
        token_env: String,
    },
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret_env: String,
        #[serde(default)]
        scope: Option<String>,
    },
    PrivateKeyJwt {
        token_url: String,
        client_id: String,
        key_file: PathBuf,
        #[serde(default = "default_algorithm")]
        algorithm: String,
        #[serde(default)]
        kid: Option<String>,
        #[serde(default)]
        scope: Option<String>,
    },
    MutualTls {
        cert_file: PathBuf,
        key_file: PathBuf,
    },
}

fn default_algorithm() -> String {
    "ES384".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mllp {
    pub listen: String,
    pub allowed_peers: Vec<String>,
    pub max_message_bytes: usize,
    pub idle_timeout_seconds: u64,
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    pub source: String,
    pub local_time: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub invalid_nhs_number: String,
    pub link_threshold: f64,
    pub review_threshold: f64,
    pub candidates: usize,
    pub master_index: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: String,
    pub base_url: String,
    pub max_body_bytes: usize,
    /// 0: [`Server::blocking_pool_size`] picks.
    pub blocking_threads: usize,
}

impl Server {
    /// The most threads the async runtime keeps for blocking (store) work: the setting, or two per
    /// core and at least 4. Fewer threads than concurrent requests is deliberate: a queued task is
    /// picked up by a thread that has just finished one, where a large pool wakes a sleeping
    /// thread for each task and its threads contend for the queue's lock.
    pub fn blocking_pool_size(&self) -> usize {
        match self.blocking_threads {
            0 => std::thread::available_parallelism()
                .map_or(2, std::num::NonZeroUsize::get)
                .saturating_mul(2)
                .max(4),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub data_dir: PathBuf,
    pub synchronous: String,
    pub readers: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Search {
    pub default_count: u32,
    pub max_count: u32,
    pub max_bundle_entries: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub format: String,
    pub level: String,
}

/// Overrides from command-line flags, applied last.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub mllp: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads and checks the configuration.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(file) = file {
            if !file.exists() {
                bail!("the config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("CONCORD__").split("__").lowercase(true));
        let mut config: Config = figment
            .extract()
            .context("the configuration is not valid")?;
        if let Some(listen) = &overrides.listen {
            config.server.listen = listen.clone();
        }
        if let Some(mllp) = &overrides.mllp {
            config.mllp.listen = mllp.clone();
        }
        if let Some(dir) = &overrides.data_dir {
            config.store.data_dir = dir.clone();
        }
        config.check()?;
        Ok(config)
    }

    /// The access policy, checked: known roles and categories, well-formed codes.
    pub fn access_policy(&self) -> anyhow::Result<concord_access::Policy> {
        let access = &self.access;
        let mut policy = concord_access::Policy::default();
        policy.relationship.recent_days = access.relationship_recent_days;
        policy.emergency.roles = access
            .emergency_override_roles
            .iter()
            .map(|r| {
                concord_access::Role::parse(r).with_context(|| {
                    format!("access.emergency_override_roles: {r:?} is not a role")
                })
            })
            .collect::<anyhow::Result<_>>()?;
        for name in access
            .emergency_override_categories
            .iter()
            .chain(access.sensitive.keys())
        {
            if !concord_access::consent::SENSITIVE_CATEGORIES.contains(&name.as_str()) {
                bail!(
                    "access: {name:?} is not a sensitive category; use one of {}",
                    concord_access::consent::SENSITIVE_CATEGORIES.join(", ")
                );
            }
        }
        policy.emergency.categories = access
            .emergency_override_categories
            .iter()
            .cloned()
            .collect();
        for (name, codes) in &access.sensitive {
            let list = codes
                .iter()
                .map(|code| {
                    let (system, code) = code
                        .split_once('|')
                        .filter(|(s, c)| !s.is_empty() && !c.is_empty())
                        .with_context(|| {
                            format!("access.sensitive.{name}: {code:?} must be \"system|code\"")
                        })?;
                    Ok(concord_access::CodeMatch::new(system, code))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            policy.sensitive.0.insert(name.clone(), list);
        }
        Ok(policy)
    }

    /// The organisation that runs this node: `access.organization`, else a hub's own ODS code.
    pub fn node_organization(&self) -> Option<String> {
        [&self.access.organization, &self.federation.ods_code]
            .into_iter()
            .find(|o| !o.trim().is_empty())
            .map(|o| o.trim().to_string())
    }

    /// The authorization server's settings: tokens are issued for (and must name)
    /// `server.base_url` when it is set.
    pub fn auth_config(&self) -> concord_auth::AuthConfig {
        let base = (!self.server.base_url.is_empty()).then_some(self.server.base_url.as_str());
        let mut auth = concord_auth::AuthConfig::for_base(base);
        auth.access_token_seconds = self.auth.access_token_seconds;
        auth.key_rotation_days = self.auth.key_rotation_days;
        auth.key_retire_days = self.auth.key_retire_days;
        auth.external = self
            .auth
            .external
            .iter()
            .map(|e| concord_auth::ExternalIssuer {
                issuer: e.issuer.clone(),
                audience: e.audience.clone(),
                roles_claim: e.roles_claim.clone(),
                org_claim: e.org_claim.clone(),
                role_map: e.role_map.clone(),
                default_scope: e.default_scope.clone(),
            })
            .collect();
        auth
    }

    fn check_auth(&self) -> anyhow::Result<()> {
        let auth = &self.auth;
        if !(60..=86_400).contains(&auth.access_token_seconds) {
            bail!("auth.access_token_seconds must be between 60 and 86400");
        }
        if auth.key_rotation_days == 0 || auth.key_retire_days == 0 {
            bail!("auth.key_rotation_days and auth.key_retire_days must be at least 1");
        }
        for (i, e) in auth.external.iter().enumerate() {
            let at = format!("auth.external[{i}]");
            if !e.issuer.starts_with("https://") && !e.issuer.starts_with("http://") {
                bail!("{at}.issuer must be the provider's http(s) issuer URL");
            }
            if e.audience.trim().is_empty() {
                bail!("{at}.audience must name this node as the provider's tokens do");
            }
            for role in e.role_map.values() {
                if concord_access::Role::parse(role).is_none() {
                    bail!("{at}.role_map: {role:?} is not a Concord role");
                }
            }
        }
        Ok(())
    }

    fn check(&self) -> anyhow::Result<()> {
        self.check_auth()?;
        if !(1..=24).contains(&self.access.break_glass_hours) {
            bail!("access.break_glass_hours must be between 1 and 24");
        }
        self.access_policy()?;
        self.listen_addr()?;
        if !matches!(self.store.synchronous.as_str(), "full" | "normal") {
            bail!(
                "store.synchronous must be \"full\" or \"normal\", not {:?}",
                self.store.synchronous
            );
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!(
                "log.format must be \"text\" or \"json\", not {:?}",
                self.log.format
            );
        }
        if self.server.max_body_bytes < 1024 {
            bail!("server.max_body_bytes must be at least 1024");
        }
        if self.search.default_count == 0 || self.search.default_count > self.search.max_count {
            bail!("search.default_count must be between 1 and search.max_count");
        }
        if !matches!(self.identity.invalid_nhs_number.as_str(), "reject" | "flag") {
            bail!(
                "identity.invalid_nhs_number must be \"reject\" or \"flag\", not {:?}",
                self.identity.invalid_nhs_number
            );
        }
        let (link, review) = (self.identity.link_threshold, self.identity.review_threshold);
        if !(0.0 < review && review < link && link <= 1.0) {
            bail!("identity thresholds must satisfy 0 < review_threshold < link_threshold <= 1");
        }
        self.mllp_addr()?;
        self.mllp_peers()?;
        if self.mllp.max_connections == 0 {
            bail!("mllp.max_connections must be at least 1");
        }
        if self.mllp.max_message_bytes < 1024 {
            bail!("mllp.max_message_bytes must be at least 1024");
        }
        if self.feed.source.trim().is_empty() {
            bail!("feed.source must name the sending organisation");
        }
        self.feed_local_time()?;
        if let Some(settings) = self.announce_settings() {
            if !crate::announce::valid_source_id(&settings.source_id) {
                bail!(
                    "announce.source_id must be set when announce.hub_url is: lower-case letters, digits and hyphens, such as \"gp-a\", not {:?}",
                    settings.source_id
                );
            }
            if settings.token.is_empty() {
                bail!(
                    "announce.token must be set when announce.hub_url is (use CONCORD__ANNOUNCE__TOKEN)"
                );
            }
            settings.check().context("announce.hub_url is not valid")?;
        }
        if self.announce.poll_interval_ms == 0 {
            bail!("announce.poll_interval_ms must be at least 1");
        }
        self.check_sources()?;
        if self.identity.candidates == 0 {
            bail!("identity.candidates must be at least 1");
        }
        if self.store.readers == 0 {
            bail!("store.readers must be at least 1");
        }
        if !self.server.base_url.is_empty() && !self.server.base_url.starts_with("http") {
            bail!("server.base_url must be an http(s) URL or empty");
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.server.listen.parse().with_context(|| {
            format!(
                "server.listen {:?} is not an address such as 127.0.0.1:8080",
                self.server.listen
            )
        })
    }

    /// The MLLP listener's address; `None` when it is off.
    pub fn mllp_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        if self.mllp.listen.is_empty() {
            return Ok(None);
        }
        self.mllp.listen.parse().map(Some).with_context(|| {
            format!(
                "mllp.listen {:?} is not an address such as 127.0.0.1:2575",
                self.mllp.listen
            )
        })
    }

    pub fn mllp_peers(&self) -> anyhow::Result<Vec<std::net::IpAddr>> {
        self.mllp
            .allowed_peers
            .iter()
            .map(|p| {
                p.parse()
                    .with_context(|| format!("mllp.allowed_peers: {p:?} is not an IP address"))
            })
            .collect()
    }

    /// `feed.local_time` as the mapping's rule for v2 times that carry no UTC offset.
    pub fn feed_local_time(&self) -> anyhow::Result<concord_v2fhir::LocalTime> {
        use concord_v2fhir::LocalTime;
        let text = self.feed.local_time.trim();
        match text {
            "europe-london" => Ok(LocalTime::EuropeLondon),
            "unknown" => Ok(LocalTime::Unknown),
            _ => {
                let bad = || {
                    anyhow::anyhow!(
                        "feed.local_time must be \"europe-london\", \"unknown\" or an offset such as \"+01:00\", not {text:?}"
                    )
                };
                let (sign, rest) = match text.as_bytes().first() {
                    Some(b'+') => (1, &text[1..]),
                    Some(b'-') => (-1, &text[1..]),
                    _ => return Err(bad()),
                };
                let (h, m) = rest.split_once(':').ok_or_else(bad)?;
                let (h, m): (i32, i32) =
                    (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
                if h > 14 || m > 59 {
                    return Err(bad());
                }
                Ok(LocalTime::FixedOffset(sign * (h * 60 + m)))
            }
        }
    }

    /// The identity feed's settings; `None` when `announce.hub_url` is empty (no feed). The
    /// copies' `meta.source` is `server.base_url`, or the listen address when that is empty.
    pub fn announce_settings(&self) -> Option<crate::announce::AnnounceSettings> {
        if self.announce.hub_url.trim().is_empty() {
            return None;
        }
        let base_url = if self.server.base_url.is_empty() {
            format!("http://{}/fhir", self.server.listen)
        } else {
            self.server.base_url.trim_end_matches('/').to_string()
        };
        let mut settings = crate::announce::AnnounceSettings::new(
            self.announce.hub_url.trim(),
            self.announce.source_id.trim(),
            self.announce.token.trim(),
            base_url,
        );
        settings.poll_interval = std::time::Duration::from_millis(self.announce.poll_interval_ms);
        Some(settings)
    }

    /// A secret named by an environment variable in the config (`token_env = "GP_TOKEN"`).
    #[expect(
        clippy::disallowed_methods,
        reason = "this module is the one reader of the environment; a source's secret is named in the config and read here, never written to it"
    )]
    pub fn secret(variable: &str) -> anyhow::Result<String> {
        std::env::var(variable).with_context(|| {
            format!("the environment variable {variable} (a source's secret) is not set")
        })
    }

    fn check_sources(&self) -> anyhow::Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            let at = format!("sources[{i}]");
            if source.id.is_empty()
                || !source
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                bail!(
                    "{at}.id must be lower-case letters, digits and '-', not {:?}",
                    source.id
                );
            }
            if !seen.insert(source.id.as_str()) {
                bail!("{at}.id {:?} is listed twice", source.id);
            }
            if concord_federation::SourceKind::parse(&source.kind).is_none() {
                bail!(
                    "{at}.kind must be one of gp, acute, mental-health, community, ambulance, social-care, hospice, region; not {:?}",
                    source.kind
                );
            }
            if !(source.base_url.starts_with("http://") || source.base_url.starts_with("https://"))
            {
                bail!("{at}.base_url must be an http(s) URL");
            }
            if source.deadline_ms == 0 || source.deadline_ms > 60_000 {
                bail!("{at}.deadline_ms must be between 1 and 60000");
            }
            if !matches!(source.fetch.as_str(), "everything" | "search") {
                bail!(
                    "{at}.fetch must be \"everything\" or \"search\", not {:?}",
                    source.fetch
                );
            }
            match source.freshness.as_str() {
                "live" => {}
                "batch" => {
                    if let Some(at_text) = &source.last_load
                        && concord_fhir::primitive::date_range(at_text).is_none()
                    {
                        bail!("{at}.last_load {at_text:?} is not a date or instant");
                    }
                }
                other => bail!("{at}.freshness must be \"live\" or \"batch\", not {other:?}"),
            }
            for t in &source.resource_types {
                if !concord_fhir::resource::is_resource_type(t) {
                    bail!("{at}.resource_types: {t:?} is not a FHIR R4 resource type");
                }
            }
        }
        if !self.sources.is_empty() && self.federation.origin.is_empty() {
            bail!("federation.origin must name this hub when sources are configured");
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.store.data_dir.join("concord.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_flags_win() {
        let config = Config::load(
            None,
            &Overrides {
                listen: Some("127.0.0.1:9999".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9999");
        assert_eq!(config.server.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(config.server.blocking_threads, 0, "0 picks from the cores");
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        assert_eq!(config.server.blocking_pool_size(), (cores * 2).max(4));
        let mut server = config.server.clone();
        server.blocking_threads = 3;
        assert_eq!(
            server.blocking_pool_size(),
            3,
            "a setting is taken as given"
        );
    }

    #[test]
    fn access_and_external_issuers_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            r#"
[access]
organization = "Y09341"
emergency_override_categories = ["mental-health"]
[access.sensitive]
hiv = ["http://snomed.info/sct|86406008"]
[[auth.external]]
issuer = "https://idp.example.nhs.uk"
audience = "concord"
roles_claim = "roles"
org_claim = "org"
role_map = { "R8000" = "clinician" }
"#,
        )
        .unwrap();
        let config = Config::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(config.node_organization().as_deref(), Some("Y09341"));
        let policy = config.access_policy().unwrap();
        assert!(policy.emergency.categories.contains("mental-health"));
        assert_eq!(policy.sensitive.0["hiv"].len(), 1);
        let auth = config.auth_config();
        assert_eq!(auth.external[0].role_map["R8000"], "clinician");
        assert_eq!(auth.external[0].default_scope, "user/*.rs");

        for (bad, named) in [
            (
                "[access]\nemergency_override_roles = [\"wizard\"]\n",
                "wizard",
            ),
            ("[access.sensitive]\nastrology = [\"x|y\"]\n", "astrology"),
            ("[access.sensitive]\nhiv = [\"no-bar\"]\n", "system|code"),
            (
                "[[auth.external]]\nissuer = \"https://idp\"\naudience = \"a\"\nroles_claim = \"r\"\norg_claim = \"o\"\nrole_map = { x = \"wizard\" }\n",
                "wizard",
            ),
        ] {
            std::fs::write(&file, bad).unwrap();
            let err = format!(
                "{:#}",
                Config::load(Some(&file), &Overrides::default()).unwrap_err()
            );
            assert!(err.contains(named), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nlisen = \"x\"\n").unwrap();
        let err = format!(
            "{:#}",
            Config::load(Some(&file), &Overrides::default()).unwrap_err()
        );
        assert!(err.contains("lisen"), "{err}");
        std::fs::write(&file, "[store]\nsynchronous = \"sometimes\"\n").unwrap();
        let err = format!(
            "{:#}",
            Config::load(Some(&file), &Overrides::default()).unwrap_err()
        );
        assert!(err.contains("synchronous"), "{err}");
        std::fs::write(&file, "[mllp]\nmax_connections = 0\n").unwrap();
        let err = format!(
            "{:#}",
            Config::load(Some(&file), &Overrides::default()).unwrap_err()
        );
        assert!(err.contains("mllp.max_connections"), "{err}");
        assert!(
            Config::load(
                Some(&dir.path().join("missing.toml")),
                &Overrides::default()
            )
            .is_err()
        );
    }
}
