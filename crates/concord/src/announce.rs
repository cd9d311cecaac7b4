//! The identity feed's announcer: every person this edge stores is announced to the hub's master
//! patient index, with this edge's source id and the local id, and no person is missed while the
//! hub is down.
//!
//! Owns the outbox loop: the store's own version sequence is the log (read through
//! [`concord_hub::Hub::announcements`]), and a durable cursor (`announce.cursor` in the data
//! directory, replaced atomically) says how far the hub has acknowledged. Each change goes out as
//! a conditional update `PUT {hub}/Patient?identifier={source system}|{local id}` (a deletion as a
//! conditional `DELETE`), so sending one twice is harmless and the cursor only needs to be
//! at-least-once. What the hub answers decides what happens next: success moves on; an outage,
//! overload or refused token is retried with exponential back-off, forever, until shutdown; a
//! record the hub refuses (422, for example an invalid NHS number) is written to
//! `announce.rejected` beside the cursor, with only its position, local id, status and the
//! OperationOutcome's issue codes and paths, and the feed moves on.
//!
//! Does not: decide what the hub's copy holds (the hub crate's `announce` module does), read the
//! configuration (the caller builds [`AnnounceSettings`], so `concord demo` can run one announcer
//! per organisation in-process), or log patient data: logs carry store positions, statuses and
//! counts, never local ids, bodies or URLs with their query.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use concord_fhir::RequestContext;
use concord_hub::Hub;
use concord_hub::announce::{Announcement, Announcements, source_system};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The largest error body read from the hub: an OperationOutcome, never a record.
const MAX_OUTCOME_BYTES: usize = 1024 * 1024;

/// How the announcer runs. [`AnnounceSettings::new`] fills in the defaults; the fields are public
/// so a caller (tests, `concord demo`) can shorten the waits.
#[derive(Debug, Clone)]
pub struct AnnounceSettings {
    /// The hub's FHIR base URL, e.g. `https://hub.example/fhir`.
    pub hub_url: String,
    /// This edge's id at the hub (`[a-z0-9-]+`): the identifier system
    /// `https://concord.health/fhir/sid/source/{source_id}` carries the local ids under it.
    pub source_id: String,
    /// The bearer token the hub accepts from this edge.
    pub token: String,
    /// This edge's own FHIR base URL, sent as the copies' `meta.source`.
    pub base_url: String,
    /// How long to wait for new Patients once caught up (a [`AnnounceSettings::wake`] cuts it
    /// short).
    pub poll_interval: Duration,
    /// Store rows read per batch; the cursor is saved after each batch.
    pub batch_size: u32,
    /// The whole of one request to the hub, connecting included.
    pub request_timeout: Duration,
    /// The first wait after a failure; it doubles up to [`AnnounceSettings::backoff_max`].
    pub backoff_start: Duration,
    pub backoff_max: Duration,
    /// Notified to look for new Patients at once instead of at the next poll.
    pub wake: Arc<Notify>,
}

impl AnnounceSettings {
    /// Settings with the default timings: a poll each second, batches of 100, 10 s per request,
    /// back-off from 200 ms doubling to 30 s.
    pub fn new(
        hub_url: impl Into<String>,
        source_id: impl Into<String>,
        token: impl Into<String>,
        base_url: impl Into<String>,
    ) -> AnnounceSettings {
        AnnounceSettings {
            hub_url: hub_url.into(),
            source_id: source_id.into(),
            token: token.into(),
            base_url: base_url.into(),
            poll_interval: Duration::from_secs(1),
            batch_size: 100,
            request_timeout: Duration::from_secs(10),
            backoff_start: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Checks what a typo would otherwise turn into an announcer that retries forever.
    pub fn check(&self) -> anyhow::Result<()> {
        hub_base(&self.hub_url)?;
        if !valid_source_id(&self.source_id) {
            bail!(
                "the announcer's source id must be lower-case letters, digits and hyphens, not {:?}",
                self.source_id
            );
        }
        if self.token.trim().is_empty() {
            bail!("the announcer needs a bearer token for the hub");
        }
        if self.batch_size == 0 {
            bail!("the announcer's batch size must be at least 1");
        }
        Ok(())
    }
}

/// `[a-z0-9-]+`: the source id becomes part of an identifier system URL.
pub fn valid_source_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The hub base as a URL that can take path segments.
fn hub_base(hub_url: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(hub_url.trim_end_matches('/'))
        .with_context(|| format!("the hub URL {hub_url:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        bail!("the hub URL {hub_url:?} must be an http(s) FHIR base URL");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bail!("the hub URL {hub_url:?} must not have a query or fragment");
    }
    Ok(url)
}

/// The rejected-record log that goes with a cursor file: `announce.rejected` beside
/// `announce.cursor`.
pub fn rejected_path(cursor_path: &Path) -> PathBuf {
    cursor_path.with_extension("rejected")
}

/// Runs the announcer until `shutdown` completes. Returns an error only when it cannot start
/// (bad settings, no TLS, an unreadable cursor); once running, every failure is retried.
pub async fn run(
    hub: Hub,
    settings: AnnounceSettings,
    cursor_path: PathBuf,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    settings.check()?;
    let announcer = Announcer::new(hub, settings, cursor_path)?;
    let mut cursor = load_cursor(&announcer.cursor_path).await?;
    tracing::info!(
        source_id = %announcer.settings.source_id,
        hub = %announcer.hub_base,
        position = cursor,
        "identity feed: announcing this node's Patients to the hub"
    );
    let shutdown = std::pin::pin!(shutdown);
    announcer.run(&mut cursor, shutdown).await;
    tracing::info!(source_id = %announcer.settings.source_id, position = cursor, "identity feed stopped");
    Ok(())
}

struct Announcer {
    hub: Hub,
    settings: AnnounceSettings,
    hub_base: url::Url,
    system: String,
    client: reqwest::Client,
    cursor_path: PathBuf,
    rejected_path: PathBuf,
}

/// What became of one announcement.
#[derive(Debug)]
enum Delivery {
    Acknowledged,
    /// The hub refused the record itself; retrying would get the same answer.
    Rejected(Rejection),
    /// The hub could not take it now (down, overloaded, refusing the token): try again later.
    Retry(String),
}

#[derive(Debug)]
struct Rejection {
    status: u16,
    /// Each issue's code and its expressions (element paths, never values).
    issues: Vec<(String, Vec<String>)>,
}

/// The outcome of waiting: carry on, or stop.
#[derive(Debug, PartialEq, Eq)]
enum Wait {
    Done,
    Stop,
}

impl Announcer {
    fn new(hub: Hub, settings: AnnounceSettings, cursor_path: PathBuf) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("cannot set up TLS for the announcer")?;
        let tls = rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier(tls)
            .context("cannot read the system's trusted certificates")?
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(5)))
            // A redirect would send the token and the record somewhere not configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the announcer's HTTP client")?;
        Ok(Announcer {
            hub,
            hub_base: hub_base(&settings.hub_url)?,
            system: source_system(&settings.source_id),
            client,
            rejected_path: rejected_path(&cursor_path),
            cursor_path,
            settings,
        })
    }

    async fn run(&self, cursor: &mut i64, mut shutdown: std::pin::Pin<&mut impl Future>) {
        let mut backoff = self.settings.backoff_start;
        let mut saved = *cursor;
        let mut rejected_total: u64 = 0;
        loop {
            let page = match self.fetch(*cursor).await {
                Ok(page) => page,
                Err(reason) => {
                    tracing::warn!(source_id = %self.settings.source_id, reason = %reason, wait_ms = backoff.as_millis(), "identity feed: cannot read this node's Patients; retrying");
                    if self.sleep(backoff, &mut shutdown).await == Wait::Stop {
                        break;
                    }
                    backoff = (backoff * 2).min(self.settings.backoff_max);
                    continue;
                }
            };
            backoff = self.settings.backoff_start;
            if page.items.is_empty() {
                *cursor = page.next_after.max(*cursor);
                self.save(cursor, &mut saved).await;
                let waited = tokio::select! {
                    () = tokio::time::sleep(self.settings.poll_interval) => Wait::Done,
                    () = self.settings.wake.notified() => Wait::Done,
                    _ = shutdown.as_mut() => Wait::Stop,
                };
                if waited == Wait::Stop {
                    break;
                }
                continue;
            }
            let count = page.items.len();
            let mut stopped = false;
            for item in &page.items {
                match self.deliver(item, cursor, &mut saved, &mut shutdown).await {
                    None => {
                        stopped = true;
                        break;
                    }
                    Some(Delivery::Rejected(_)) => {
                        rejected_total += 1;
                        tracing::warn!(source_id = %self.settings.source_id, seq = item.seq, rejected_total, "identity feed: the hub refused a record; it is listed in announce.rejected");
                    }
                    Some(_) => {}
                }
                *cursor = item.seq;
            }
            if stopped {
                break;
            }
            *cursor = page.next_after.max(*cursor);
            self.save(cursor, &mut saved).await;
            tracing::debug!(source_id = %self.settings.source_id, position = *cursor, count, "identity feed: batch acknowledged");
        }
        self.save(cursor, &mut saved).await;
    }

    /// Reads the next batch of changes on a blocking thread (the store is synchronous).
    async fn fetch(&self, after: i64) -> Result<Announcements, String> {
        let hub = self.hub.clone();
        let source_id = self.settings.source_id.clone();
        let base_url = self.settings.base_url.clone();
        let limit = self.settings.batch_size;
        let ctx = RequestContext::system(
            "concord-announce",
            format!("announce-{source_id}-after-{after}"),
        );
        tokio::task::spawn_blocking(move || {
            hub.announcements(&ctx, &source_id, &base_url, after, limit)
        })
        .await
        .map_err(|_| "the store read was cancelled".to_string())?
        .map_err(|e| e.to_string())
    }

    /// Sends one announcement until the hub acknowledges or rejects it. `None` when shutdown came
    /// first; the announcement is then sent again at the next start.
    async fn deliver(
        &self,
        item: &Announcement,
        cursor: &i64,
        saved: &mut i64,
        shutdown: &mut std::pin::Pin<&mut impl Future>,
    ) -> Option<Delivery> {
        let mut backoff = self.settings.backoff_start;
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            let delivery = tokio::select! {
                d = self.send(item) => d,
                _ = shutdown.as_mut() => return None,
            };
            let delivery = match delivery {
                Delivery::Rejected(rejection) => {
                    match self.record_rejection(item, &rejection).await {
                        Ok(()) => Delivery::Rejected(rejection),
                        // A refused record is never passed over unrecorded.
                        Err(e) => Delivery::Retry(format!("cannot write announce.rejected: {e}")),
                    }
                }
                other => other,
            };
            match delivery {
                Delivery::Retry(reason) => {
                    // What the hub has acknowledged so far survives a restart during the outage.
                    self.save(cursor, saved).await;
                    tracing::warn!(source_id = %self.settings.source_id, seq = item.seq, attempts, reason = %reason, wait_ms = backoff.as_millis(), "identity feed: the hub did not take a record; retrying");
                    if self.sleep(backoff, shutdown).await == Wait::Stop {
                        return None;
                    }
                    backoff = (backoff * 2).min(self.settings.backoff_max);
                }
                done => {
                    if attempts > 1 {
                        tracing::info!(source_id = %self.settings.source_id, seq = item.seq, attempts, "identity feed: the hub answered again");
                    }
                    return Some(done);
                }
            }
        }
    }

    /// One attempt.
    async fn send(&self, item: &Announcement) -> Delivery {
        let url = patient_url(&self.hub_base, &self.system, &item.local_id);
        let request = match &item.patient {
            Some(patient) => match serde_json::to_vec(patient) {
                Ok(body) => self
                    .client
                    .put(url)
                    .header(CONTENT_TYPE, "application/fhir+json")
                    .body(body),
                Err(_) => return Delivery::Retry("cannot serialise the record".into()),
            },
            None => self.client.delete(url),
        };
        let request = request
            .bearer_auth(&self.settings.token)
            .header(ACCEPT, "application/fhir+json")
            .header("prefer", "return=minimal")
            // Stable across retries, so the hub's logs show one announcement's attempts together.
            .header(
                "x-request-id",
                format!("announce-{}-{}", self.settings.source_id, item.seq),
            );
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Delivery::Retry(error_chain(e)),
        };
        let status = response.status();
        match classify(status, item.patient.is_none()) {
            Class::Acknowledged => Delivery::Acknowledged,
            Class::Retry(why) => Delivery::Retry(format!("HTTP {}: {why}", status.as_u16())),
            Class::Rejected => {
                let outcome = read_limited(response, MAX_OUTCOME_BYTES).await;
                Delivery::Rejected(Rejection {
                    status: status.as_u16(),
                    issues: outcome.map(|o| issue_paths(&o)).unwrap_or_default(),
                })
            }
        }
    }

    /// Appends one line to `announce.rejected` and makes it durable before the cursor can pass
    /// the record.
    async fn record_rejection(
        &self,
        item: &Announcement,
        rejection: &Rejection,
    ) -> std::io::Result<()> {
        let line = json!({
            "at": concord_fhir::primitive::format_instant(now_ms()),
            "seq": item.seq,
            "local_id": item.local_id,
            "method": if item.patient.is_some() { "PUT" } else { "DELETE" },
            "status": rejection.status,
            "issues": rejection.issues.iter().map(|(code, expression)| {
                json!({"code": code, "expression": expression})
            }).collect::<Vec<_>>(),
        })
        .to_string();
        let path = self.rejected_path.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(format!("{line}\n").as_bytes())?;
            file.sync_data()
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Saves the cursor when it moved. A failure is logged and retried at the next save: the
    /// worst it can cause is announcing again what the hub already has, which is harmless.
    async fn save(&self, cursor: &i64, saved: &mut i64) {
        if *cursor == *saved {
            return;
        }
        let (path, position) = (self.cursor_path.clone(), *cursor);
        let result = tokio::task::spawn_blocking(move || write_cursor(&path, position))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        match result {
            Ok(()) => *saved = *cursor,
            Err(e) => {
                tracing::error!(source_id = %self.settings.source_id, error = %e, "identity feed: cannot save announce.cursor");
            }
        }
    }

    async fn sleep(&self, wait: Duration, shutdown: &mut std::pin::Pin<&mut impl Future>) -> Wait {
        tokio::select! {
            () = tokio::time::sleep(wait) => Wait::Done,
            _ = shutdown.as_mut() => Wait::Stop,
        }
    }
}

/// A request error and its causes ("error sending request: client error (Connect): tcp connect
/// error: Connection refused"), without the URL: its query names the local id.
fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `{hub}/Patient?identifier={system}|{local id}`, the query form-encoded.
fn patient_url(base: &url::Url, system: &str, local_id: &str) -> url::Url {
    let mut url = base.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push("Patient");
    }
    url.query_pairs_mut()
        .append_pair("identifier", &format!("{system}|{local_id}"));
    url
}

#[derive(Debug, PartialEq, Eq)]
enum Class {
    Acknowledged,
    Retry(&'static str),
    Rejected,
}

/// What an HTTP status from the hub means for one announcement. Only answers about the record
/// itself reject it; anything that says the hub, the token or the address is wrong is retried, so
/// a misconfiguration delays the feed instead of dropping every person in it.
fn classify(status: StatusCode, delete: bool) -> Class {
    match status.as_u16() {
        200..=299 => Class::Acknowledged,
        // Deleting what the hub does not have (a server that answers so) is done.
        404 | 410 if delete => Class::Acknowledged,
        408 => Class::Retry("the hub timed out"),
        429 => Class::Retry("the hub is overloaded"),
        401 | 403 => Class::Retry("the hub refused this edge's token"),
        404 | 405 => Class::Retry("the hub URL does not name a FHIR server"),
        406 | 415 => Class::Retry("the hub does not accept FHIR JSON"),
        409 => Class::Retry("a concurrent change at the hub"),
        300..=399 => Class::Retry("the hub redirected; set the hub URL to where it points"),
        400..=499 => Class::Rejected,
        500..=599 => Class::Retry("the hub failed"),
        _ => Class::Retry("an unexpected answer"),
    }
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Option<Value> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        if body.len() + chunk.len() > limit {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).ok()
}

/// Each issue's code and its expressions, keeping only expressions that are plain element paths
/// (`Patient.identifier[0].value`): a FHIRPath with a `where(...)` could quote a value.
fn issue_paths(outcome: &Value) -> Vec<(String, Vec<String>)> {
    let Some(issues) = outcome["issue"].as_array() else {
        return Vec::new();
    };
    issues
        .iter()
        .map(|issue| {
            let code = issue["code"]
                .as_str()
                .filter(|c| c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
                .unwrap_or("unknown")
                .to_string();
            let expressions = issue["expression"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .filter(|e| is_plain_path(e))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (code, expressions)
        })
        .collect()
}

fn is_plain_path(expression: &str) -> bool {
    expression.len() <= 200
        && expression.starts_with(|c: char| c.is_ascii_alphabetic())
        && expression
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'[' | b']' | b'_'))
}

/// Reads the cursor; a missing file is the start of the log.
async fn load_cursor(path: &Path) -> anyhow::Result<i64> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|p| *p >= 0)
                .with_context(|| {
                    format!(
                        "{} is not a store position; remove it to announce every Patient again",
                        path.display()
                    )
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    })
    .await?
}

/// Replaces the cursor file atomically: a temporary file, synced, renamed over it, and the
/// directory synced, so a crash leaves the old position or the new one, never a torn file.
fn write_cursor(path: &Path, position: i64) -> std::io::Result<()> {
    let tmp = path.with_extension("cursor.tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(format!("{position}\n").as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
