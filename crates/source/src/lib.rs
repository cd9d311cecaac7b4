//! The source connector: how the hub asks one federated FHIR source (a GP system, an acute
//! trust, a region hub) for a patient's data, within a deadline, and reports what happened.
//!
//! Owns one [`Source`] per configured source: a pooled reqwest client over rustls (HTTP/2 when the
//! server offers it through ALPN), authentication (none, bearer, OAuth client credentials, SMART
//! Backend Services `private_key_jwt`, mutual TLS) with a token cache, a per-call deadline that
//! covers everything the call does (token fetch, retries, every page), one retry of a GET after a
//! connection error or a 502/503/504, a circuit breaker, the outbound `X-Request-Id`,
//! `X-Concord-Origin` and `X-Concord-Hops` headers, paging by `next` links that stay on the
//! source's origin, and a response size limit. Its calls never fail: they return a
//! [`SourceResult`] whose [`SourceStatus`] says what happened.
//!
//! Does not: merge, de-duplicate or tag resources (`concord-federation` does), decide which
//! sources to ask or enforce the hop limit (the hub does; it passes the hop count in
//! [`Outbound`]), read configuration or the environment (the binary builds [`SourceConfig`]),
//! or install a process-wide TLS crypto provider. Reasons, errors and logs never carry patient
//! data: no ids, no URLs with their queries, no bodies.
//!
//! Decisions:
//! - A 404 or 410 for the patient's own data is `Failed` ("the source has no record of this
//!   patient"): the record locator said the record is there, so its absence is worth a warning,
//!   not the quiet `Skipped`. It does not count against the breaker (the source is up). In
//!   [`FetchMode::Search`], a `Patient?_id=` search that finds no Patient means the same.
//! - Any 4xx (credentials, bad request) is `Failed` and leaves the breaker alone; 429, 5xx,
//!   connection errors, timeouts and invalid answers count as failures.
//! - When one of several parallel searches fails, the others' resources are still returned with
//!   the failure as the status, as a timeout returns what it had gathered: partial data with a
//!   warning serves a clinician better than none.
//! - Redirects are not followed and no proxy is used: a redirect could carry the credentials and
//!   the patient's id elsewhere, and proxy settings would come from the environment.

mod auth;
mod breaker;
mod bundle;
mod http;
mod tls;

use std::fmt;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::time::error::Elapsed;
use url::Url;

pub use breaker::BreakerState;
pub use concord_federation::{SourceInfo, SourceResult, SourceStatus};

use auth::Authenticator;
use breaker::{Breaker, Health, Permit};
use bundle::looks_like_type_name;
use http::{FHIR_JSON, Problem, X_CONCORD_HOPS, X_CONCORD_ORIGIN, X_REQUEST_ID};

/// How long a call may take unless configured otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(2500);
/// The largest response body read from a source.
pub const DEFAULT_RESPONSE_LIMIT: usize = 64 * 1024 * 1024;
/// The `_count` asked of a source per page.
pub const PAGE_SIZE: usize = 100;
/// The most patients [`Source::find_patients`] gathers: discovery by NHS number finds one or
/// two; more means the search was too loose to be useful.
pub const DISCOVERY_LIMIT: usize = 100;
/// The most pages one search follows; a source paging further is treated as broken.
const MAX_PAGES: usize = 1000;
/// Searched in [`FetchMode::Search`] when neither the caller nor the configuration names types:
/// the Patient and the clinical and care types a shared care record shows.
pub const DEFAULT_SEARCH_TYPES: &[&str] = &[
    "Patient",
    "AllergyIntolerance",
    "CarePlan",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "EpisodeOfCare",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
];

const NO_SUCH_PATIENT: &str = "the source has no record of this patient";
const NO_SUCH_SEARCH: &str = "the source does not support this search";

/// How a source authenticates the hub.
#[derive(Clone)]
pub enum Auth {
    None,
    /// A fixed bearer token.
    Bearer {
        token: String,
    },
    /// OAuth 2.0 client credentials, the secret sent as HTTP Basic (`client_secret_basic`).
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
    },
    /// SMART Backend Services: a client assertion signed with `key_pem` using `algorithm`
    /// (`ES384`, `RS384` or `ES256`). The key is PKCS#8 PEM (`BEGIN PRIVATE KEY`); an RSA key may
    /// also be PKCS#1 (`BEGIN RSA PRIVATE KEY`), but an EC key may not be SEC1
    /// (`BEGIN EC PRIVATE KEY`): jsonwebtoken does not read it.
    PrivateKeyJwt {
        token_url: String,
        client_id: String,
        key_pem: String,
        algorithm: String,
        kid: Option<String>,
        scope: Option<String>,
    },
    /// Mutual TLS: the client certificate chain and its private key, both PEM.
    MutualTls {
        cert_pem: String,
        key_pem: String,
    },
}

impl fmt::Debug for Auth {
    /// Names the scheme and the non-secret settings only: configuration is logged at start-up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer { .. } => f.write_str("Bearer { .. }"),
            Auth::ClientCredentials {
                token_url,
                client_id,
                scope,
                ..
            } => f
                .debug_struct("ClientCredentials")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("scope", scope)
                .finish_non_exhaustive(),
            Auth::PrivateKeyJwt {
                token_url,
                client_id,
                algorithm,
                kid,
                scope,
                ..
            } => f
                .debug_struct("PrivateKeyJwt")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("algorithm", algorithm)
                .field("kid", kid)
                .field("scope", scope)
                .finish_non_exhaustive(),
            Auth::MutualTls { .. } => f.write_str("MutualTls { .. }"),
        }
    }
}

/// How a source is asked for one patient's data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FetchMode {
    /// `GET Patient/{id}/$everything`, following `next` links.
    #[default]
    Everything,
    /// One `GET {type}?patient={id}` per served type (`Patient?_id={id}` for the Patient), in
    /// parallel, each following `next` links: for sources without `$everything`.
    Search,
}

/// One source's settings.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub info: SourceInfo,
    pub auth: Auth,
    /// The whole call, token fetch, retries and paging included, ends by this.
    pub deadline: Duration,
    pub fetch: FetchMode,
    /// Trust anchors (PEM) for this source's server certificate; when set, only these are trusted.
    pub ca_pem: Option<String>,
}

impl SourceConfig {
    /// A configuration with the default deadline, `$everything`, and the platform's trust roots.
    pub fn new(info: SourceInfo, auth: Auth) -> Self {
        Self {
            info,
            auth,
            deadline: DEFAULT_DEADLINE,
            fetch: FetchMode::Everything,
            ca_pem: None,
        }
    }
}

/// When a source's circuit breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open it.
    pub failures: u32,
    /// How long it stays open before one trial call.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// Per-request facts sent on every outbound call, so a source (or a region hub) can trace the
/// request and refuse loops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// Sent as `X-Request-Id`.
    pub request_id: String,
    /// This hub's id, sent as `X-Concord-Origin`.
    pub origin: String,
    /// Sent as `X-Concord-Hops`, as given: the hub counts and limits hops.
    pub hops: u32,
    /// When the view this call serves began. The call's deadline counts from then, so however
    /// long the hub took before asking (access decision, record locator), a hanging source
    /// holds the view no longer than its deadline. `None`: from the call's own start.
    pub view_started: Option<Instant>,
}

/// A source that cannot be set up. Names the source and the setting, never secret material.
#[derive(Debug, thiserror::Error)]
pub enum SourceSetupError {
    #[error("source {source_id}: the base URL is not an http or https URL")]
    BaseUrl { source_id: String },
    #[error("source {source_id}: mutual TLS needs an https base URL")]
    MutualTlsWithoutHttps { source_id: String },
    #[error(
        "source {source_id}: unsupported private_key_jwt algorithm {algorithm} (use ES384, RS384 or ES256)"
    )]
    Algorithm {
        source_id: String,
        algorithm: String,
    },
    #[error("source {source_id}: {what}")]
    Credentials {
        source_id: String,
        what: &'static str,
    },
    #[error("source {source_id}: TLS set-up failed: {what}")]
    Tls { source_id: String, what: String },
    #[error("source {source_id}: the HTTP client could not be built")]
    Client { source_id: String },
}

/// One configured source: its client, credentials and breaker. Share it (e.g. in an `Arc`);
/// every method takes `&self` and calls may run concurrently.
pub struct Source {
    info: SourceInfo,
    base: Url,
    client: reqwest::Client,
    auth: Authenticator,
    deadline: Duration,
    fetch: FetchMode,
    breaker: Breaker,
    response_limit: usize,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("id", &self.info.id)
            .field("base_url", &self.info.base_url)
            .field("deadline", &self.deadline)
            .field("fetch", &self.fetch)
            .finish_non_exhaustive()
    }
}

/// What one call has gathered so far. Futures write into it as pages arrive, so when the
/// deadline drops them the pages already read are still here.
#[derive(Debug, Default)]
struct Gathered {
    resources: Vec<concord_federation::Resource>,
    issues: Vec<Value>,
}

/// The facts every request of one call shares.
struct Call {
    headers: HeaderMap,
    request_id: Option<HeaderValue>,
    /// When the call's deadline passes; a retry is only started before it.
    until: Instant,
    /// The start of a reason for a 404 or 410.
    not_found: &'static str,
}

impl Source {
    pub fn new(config: SourceConfig, breaker: BreakerConfig) -> Result<Self, SourceSetupError> {
        let SourceConfig {
            info,
            auth,
            deadline,
            fetch,
            ca_pem,
        } = config;
        let source_id = info.id.clone();
        let base = Url::parse(&info.base_url)
            .ok()
            .filter(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && !url.cannot_be_a_base()
            })
            .ok_or_else(|| SourceSetupError::BaseUrl {
                source_id: source_id.clone(),
            })?;
        let identity = match &auth {
            Auth::MutualTls { cert_pem, key_pem } => {
                if base.scheme() != "https" {
                    return Err(SourceSetupError::MutualTlsWithoutHttps { source_id });
                }
                Some((cert_pem.as_str(), key_pem.as_str()))
            }
            _ => None,
        };
        let tls = tls::client_config(&source_id, ca_pem.as_deref(), identity)?;
        let authenticator = Authenticator::new(&source_id, &auth)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("concord/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|_| SourceSetupError::Client { source_id })?;
        Ok(Self {
            info,
            base,
            client,
            auth: authenticator,
            deadline,
            fetch,
            breaker: Breaker::new(breaker.failures, breaker.cool_down),
            response_limit: DEFAULT_RESPONSE_LIMIT,
        })
    }

    /// Sets the largest response body read (default [`DEFAULT_RESPONSE_LIMIT`]); a larger answer
    /// is `Invalid`.
    #[must_use]
    pub fn with_response_limit(mut self, bytes: usize) -> Self {
        self.response_limit = bytes;
        self
    }

    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// The circuit breaker's state now, for health and status pages.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state(Instant::now())
    }

    /// All of one patient's data at this source, as resources. Never errors: the status says what
    /// happened. `types` narrows the resource types (those the source does not serve are
    /// dropped; if none is left the call is `Skipped`); `since` asks only for what changed since
    /// that instant (`_since`, or `_lastUpdated=ge` in [`FetchMode::Search`]).
    pub async fn patient_data(
        &self,
        out: &Outbound,
        local_patient_id: &str,
        types: Option<&[String]>,
        since: Option<&str>,
    ) -> SourceResult {
        let started = Instant::now();
        let types = match self.requested_types(types) {
            Ok(types) => types,
            Err(reason) => return self.skipped(started, reason),
        };
        let Some(permit) = self.breaker.admit(started) else {
            return self.finish(started, SourceStatus::BreakerOpen, Gathered::default());
        };
        let call = self.call(out, started, NO_SUCH_PATIENT);
        let mut gathered = Gathered::default();
        let outcome = match self.fetch {
            FetchMode::Everything => {
                let url = self.everything_url(local_patient_id, types.as_deref(), since);
                let work = self.follow(&call, url, usize::MAX, &mut gathered);
                tokio::time::timeout_at(call.until.into(), work).await
            }
            FetchMode::Search => {
                let types = types.unwrap_or_else(|| self.default_search_types());
                let mut parts: Vec<Gathered> = types.iter().map(|_| Gathered::default()).collect();
                let work = self.search_each(&call, local_patient_id, &types, since, &mut parts);
                let outcome = tokio::time::timeout_at(call.until.into(), work).await;
                for part in parts {
                    gathered.resources.extend(part.resources);
                    gathered.issues.extend(part.issues);
                }
                outcome
            }
        };
        self.conclude(permit, started, outcome, gathered)
    }

    /// A search at this source (type + params, e.g. `Observation?patient=X&code=Y`), following
    /// `next` links until `limit` resources are gathered. `_count` is added unless given.
    pub async fn search(
        &self,
        out: &Outbound,
        resource_type: &str,
        params: &[(String, String)],
        limit: usize,
    ) -> SourceResult {
        let started = Instant::now();
        if !looks_like_type_name(resource_type) {
            return self.skipped(
                started,
                "the search names no FHIR resource type".to_string(),
            );
        }
        if !self.serves(resource_type) {
            return self.skipped(
                started,
                format!("the source does not serve {resource_type}"),
            );
        }
        if limit == 0 {
            return self.finish(started, SourceStatus::Ok, Gathered::default());
        }
        let url = self.search_url(resource_type, params, limit.min(PAGE_SIZE));
        self.gather(started, out, url, limit, NO_SUCH_SEARCH).await
    }

    /// Patient discovery (cross-region): `Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|X`,
    /// or demographic parameters. Gathers at most [`DISCOVERY_LIMIT`] patients.
    pub async fn find_patients(&self, out: &Outbound, params: &[(String, String)]) -> SourceResult {
        let started = Instant::now();
        let url = self.search_url("Patient", params, PAGE_SIZE);
        self.gather(started, out, url, DISCOVERY_LIMIT, NO_SUCH_SEARCH)
            .await
    }

    async fn gather(
        &self,
        started: Instant,
        out: &Outbound,
        url: Url,
        limit: usize,
        not_found: &'static str,
    ) -> SourceResult {
        let Some(permit) = self.breaker.admit(started) else {
            return self.finish(started, SourceStatus::BreakerOpen, Gathered::default());
        };
        let call = self.call(out, started, not_found);
        let mut gathered = Gathered::default();
        let work = self.follow(&call, url, limit, &mut gathered);
        let outcome = tokio::time::timeout_at(call.until.into(), work).await;
        self.conclude(permit, started, outcome, gathered)
    }

    /// Runs one search per type in parallel, each into its own part.
    async fn search_each(
        &self,
        call: &Call,
        patient_id: &str,
        types: &[String],
        since: Option<&str>,
        parts: &mut [Gathered],
    ) -> Result<(), Problem> {
        let searches = types
            .iter()
            .zip(parts.iter_mut())
            .map(|(resource_type, part)| {
                let url = self.patient_search_url(resource_type, patient_id, since);
                self.follow(call, url, usize::MAX, part)
            });
        let results = join_all(searches).await;
        if let Some(problem) = results.into_iter().find_map(Result::err) {
            return Err(problem);
        }
        let patient_found = types
            .iter()
            .zip(parts.iter())
            .find(|(resource_type, _)| *resource_type == "Patient")
            .is_none_or(|(_, part)| {
                part.resources
                    .iter()
                    .any(|resource| resource.get_str("resourceType") == Some("Patient"))
            });
        if patient_found {
            Ok(())
        } else {
            Err(Problem::Refused(NO_SUCH_PATIENT.to_string()))
        }
    }

    /// Fetches `first` and the pages its `next` links lead to, until there is no `next` link or
    /// `limit` resources are gathered.
    async fn follow(
        &self,
        call: &Call,
        first: Url,
        limit: usize,
        into: &mut Gathered,
    ) -> Result<(), Problem> {
        let mut visited = std::collections::HashSet::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            if visited.len() >= MAX_PAGES {
                return Err(Problem::Invalid(format!(
                    "the answer runs to more than {MAX_PAGES} pages"
                )));
            }
            if !visited.insert(url.to_string()) {
                return Err(Problem::Invalid(
                    "the Bundle's next links go round in a loop".to_string(),
                ));
            }
            let page = self.get_page(call, &url).await?;
            into.issues.extend(page.issues);
            let room = limit.saturating_sub(into.resources.len());
            let full = page.resources.len() >= room;
            into.resources.extend(page.resources.into_iter().take(room));
            if full {
                return Ok(());
            }
            next = page.next;
        }
        Ok(())
    }

    /// One GET of one page, with the call's headers and credentials. Retried once after a
    /// connection error or a 502/503/504, and once with a fresh token when a cached one is
    /// refused with 401.
    async fn get_page(&self, call: &Call, url: &Url) -> Result<bundle::Page, Problem> {
        let mut may_retry = true;
        let mut may_renew_token = true;
        loop {
            let credential = self
                .auth
                .credential(&self.client, call.request_id.as_ref())
                .await?;
            let mut request = self.client.get(url.clone()).headers(call.headers.clone());
            if let Some(credential) = &credential {
                request = request.header(AUTHORIZATION, credential.header.clone());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    if may_retry && http::is_retryable(&error) && Instant::now() < call.until {
                        may_retry = false;
                        continue;
                    }
                    return Err(Problem::Unavailable(http::describe("the source", &error)));
                }
            };
            let status = response.status();
            if matches!(
                status,
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ) && may_retry
                && Instant::now() < call.until
            {
                may_retry = false;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED
                && may_renew_token
                && let Some(credential) = credential.as_ref().filter(|c| c.from_cache)
            {
                self.auth.forget(&credential.header).await;
                may_renew_token = false;
                continue;
            }
            if !status.is_success() {
                return Err(status_problem(status, call.not_found));
            }
            let body = http::read_limited(response, self.response_limit, "the source").await?;
            return bundle::parse_page(body, url, &self.base).map_err(Problem::Invalid);
        }
    }

    fn conclude(
        &self,
        permit: Permit<'_>,
        started: Instant,
        outcome: Result<Result<(), Problem>, Elapsed>,
        gathered: Gathered,
    ) -> SourceResult {
        let (status, health) = match outcome {
            Err(_) => (
                SourceStatus::Timeout {
                    after_ms: millis(self.deadline),
                },
                Health::Down,
            ),
            Ok(Ok(())) => (SourceStatus::Ok, Health::Up),
            Ok(Err(problem)) => {
                let health = problem.health();
                let status = match problem {
                    Problem::Unavailable(reason) | Problem::Refused(reason) => {
                        SourceStatus::Failed { reason }
                    }
                    Problem::Invalid(reason) => SourceStatus::Invalid { reason },
                };
                (status, health)
            }
        };
        let now = Instant::now();
        permit.record(health, now);
        if health == Health::Down && self.breaker.state(now) == BreakerState::Open {
            tracing::warn!(source = %self.info.id, "circuit breaker open");
        }
        self.finish(started, status, gathered)
    }

    fn skipped(&self, started: Instant, reason: String) -> SourceResult {
        self.finish(
            started,
            SourceStatus::Skipped { reason },
            Gathered::default(),
        )
    }

    fn finish(&self, started: Instant, status: SourceStatus, gathered: Gathered) -> SourceResult {
        let elapsed = started.elapsed();
        let elapsed_ms = millis(elapsed);
        let resources = gathered.resources.len();
        // Operators watch their sources by these; the labels are the registry's id and the status
        // code, never anything about the person asked for.
        metrics::counter!("concord_source_calls_total", "source" => self.info.id.clone(), "status" => status.code())
            .increment(1);
        metrics::histogram!("concord_source_call_duration_seconds", "source" => self.info.id.clone())
            .record(elapsed.as_secs_f64());
        match &status {
            SourceStatus::Ok | SourceStatus::Skipped { .. } | SourceStatus::BreakerOpen => {
                tracing::debug!(source = %self.info.id, status = ?status, elapsed_ms, resources, "source call finished");
            }
            _ => {
                tracing::warn!(source = %self.info.id, status = ?status, elapsed_ms, resources, "source call did not complete");
            }
        }
        SourceResult {
            source: self.info.clone(),
            status,
            resources: gathered.resources,
            elapsed_ms,
            forwarded_issues: gathered.issues,
        }
    }

    fn call(&self, out: &Outbound, started: Instant, not_found: &'static str) -> Call {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(FHIR_JSON));
        headers.insert(
            HeaderName::from_static(X_CONCORD_HOPS),
            HeaderValue::from(out.hops),
        );
        // Both come from this hub (its configuration, or its own request id), so an invalid one
        // is a local bug: the call goes ahead without it rather than failing the clinician's read.
        let request_id = HeaderValue::from_str(&out.request_id).ok();
        match &request_id {
            Some(value) => {
                headers.insert(HeaderName::from_static(X_REQUEST_ID), value.clone());
            }
            None => {
                tracing::warn!(source = %self.info.id, "request id is not a valid header value; not sent")
            }
        }
        match HeaderValue::from_str(&out.origin) {
            Ok(value) => {
                headers.insert(HeaderName::from_static(X_CONCORD_ORIGIN), value);
            }
            Err(_) => {
                tracing::warn!(source = %self.info.id, "origin is not a valid header value; not sent")
            }
        }
        Call {
            headers,
            request_id,
            until: out.view_started.unwrap_or(started).min(started) + self.deadline,
            not_found,
        }
    }

    /// The requested types this source serves: `Ok(None)` for "all", `Err` when none is left.
    fn requested_types(&self, types: Option<&[String]>) -> Result<Option<Vec<String>>, String> {
        let Some(types) = types else {
            return Ok(None);
        };
        let served: Vec<String> = types
            .iter()
            .filter(|t| looks_like_type_name(t) && self.serves(t))
            .cloned()
            .collect();
        if served.is_empty() {
            Err("the source serves none of the requested resource types".to_string())
        } else {
            Ok(Some(served))
        }
    }

    fn serves(&self, resource_type: &str) -> bool {
        self.info.resource_types.is_empty()
            || self.info.resource_types.iter().any(|t| t == resource_type)
    }

    fn default_search_types(&self) -> Vec<String> {
        if self.info.resource_types.is_empty() {
            DEFAULT_SEARCH_TYPES
                .iter()
                .map(|t| (*t).to_string())
                .collect()
        } else {
            self.info
                .resource_types
                .iter()
                .filter(|t| looks_like_type_name(t))
                .cloned()
                .collect()
        }
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment (so an id
    /// cannot climb the path).
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn everything_url(
        &self,
        patient_id: &str,
        types: Option<&[String]>,
        since: Option<&str>,
    ) -> Url {
        let mut url = self.endpoint(&["Patient", patient_id, "$everything"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("_count", &PAGE_SIZE.to_string());
            if let Some(types) = types {
                query.append_pair("_type", &types.join(","));
            }
            if let Some(since) = since {
                query.append_pair("_since", since);
            }
        }
        url
    }

    fn patient_search_url(
        &self,
        resource_type: &str,
        patient_id: &str,
        since: Option<&str>,
    ) -> Url {
        let mut url = self.endpoint(&[resource_type]);
        {
            let mut query = url.query_pairs_mut();
            if resource_type == "Patient" {
                query.append_pair("_id", patient_id);
            } else {
                query.append_pair("patient", patient_id);
            }
            query.append_pair("_count", &PAGE_SIZE.to_string());
            if let Some(since) = since {
                query.append_pair("_lastUpdated", &format!("ge{since}"));
            }
        }
        url
    }

    fn search_url(&self, resource_type: &str, params: &[(String, String)], count: usize) -> Url {
        let mut url = self.endpoint(&[resource_type]);
        {
            let mut query = url.query_pairs_mut();
            query.extend_pairs(params);
            if !params.iter().any(|(name, _)| name == "_count") {
                query.append_pair("_count", &count.to_string());
            }
        }
        url
    }
}

/// The problem a non-success HTTP status stands for.
fn status_problem(status: StatusCode, not_found: &str) -> Problem {
    let code = status.as_u16();
    match code {
        404 | 410 => Problem::Refused(format!("{not_found} (HTTP {code})")),
        401 | 403 => Problem::Refused(format!("the source refused our credentials (HTTP {code})")),
        429 => Problem::Unavailable(format!("the source is overloaded (HTTP {code})")),
        300..=399 => Problem::Refused(format!(
            "the source answered with a redirect (HTTP {code}), which is not followed"
        )),
        400..=499 => Problem::Refused(format!("the source rejected the request (HTTP {code})")),
        500..=599 => Problem::Unavailable(format!("the source answered HTTP {code}")),
        _ => Problem::Invalid(format!("the source answered HTTP {code}")),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_problems_that_name_no_patient() {
        assert_eq!(
            status_problem(StatusCode::NOT_FOUND, NO_SUCH_PATIENT),
            Problem::Refused("the source has no record of this patient (HTTP 404)".to_string())
        );
        assert_eq!(
            status_problem(StatusCode::FORBIDDEN, NO_SUCH_PATIENT).health(),
            Health::Up
        );
        assert_eq!(
            status_problem(StatusCode::INTERNAL_SERVER_ERROR, NO_SUCH_PATIENT).health(),
            Health::Down
        );
        assert_eq!(
            status_problem(StatusCode::TOO_MANY_REQUESTS, NO_SUCH_PATIENT).health(),
            Health::Down
        );
    }

    #[test]
    fn the_debug_form_of_auth_hides_secrets() {
        let auth = Auth::ClientCredentials {
            token_url: "https://auth.example/token".to_string(),
            client_id: "concord".to_string(),
            client_secret: "s3cret".to_string(),
            scope: None,
        };
        let text = format!("{auth:?}");
        assert!(
            text.contains("concord") && !text.contains("s3cret"),
            "{text}"
        );
        let text = format!(
            "{:?}",
            Auth::Bearer {
                token: "tok".to_string()
            }
        );
        assert!(!text.contains("tok"));
    }
}
