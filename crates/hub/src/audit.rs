//! The audit trail service: records every audited request durably, as a hash-chained IHE BALP
//! AuditEvent, and answers privacy officers' searches and a person's "who looked at my record".
//!
//! An entry stores the record in its compact form (`concord_audit::stored_body`); the AuditEvent
//! is built when the trail is read, with the entry's number as its id.
//!
//! Owns numbering and chaining entries (one background thread does it, so the chain has one
//! writer per trail), group commit (what arrives while a batch is being written goes into the next
//! batch, one store append each, so a durable commit is shared by many requests), the person's view
//! of the trail and verifying it. Does not: decide what is audited or when (the transport and use
//! cases build the [`AuditRecord`]), read the clock (the record carries its time), or log patient
//! ids (they live only in the trail itself).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::mpsc;

use concord_audit::{Agent, AuditRecord, ChainBreak, ChainVerifier, ChainedEntry, Outcome};
use concord_fhir::context::Actor;
use concord_fhir::{Error, ErrorKind, RequestContext};
use concord_store::{AuditEntry, AuditLog, AuditQuery};
use serde_json::Value;

/// At most this many records go into one append; a bound on one transaction's size.
const MAX_BATCH: usize = 1000;
/// How many times a batch is re-chained after another writer appended first.
const CONFLICT_RETRIES: usize = 3;
/// Page size when reading the whole trail to verify it.
const VERIFY_PAGE: usize = 1000;

/// The audit trail of one node. Cheap to clone; every clone feeds the same writer thread, which
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct AuditTrail {
    inner: Arc<Inner>,
}

struct Inner {
    log: Arc<dyn AuditLog>,
    observer: String,
    jobs: mpsc::Sender<Job>,
}

struct Job {
    record: AuditRecord,
    /// A oneshot, so an async caller awaits the commit without holding a blocking thread.
    reply: tokio::sync::oneshot::Sender<Result<u64, Error>>,
}

impl fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditTrail")
            .field("observer", &self.inner.observer)
            .finish()
    }
}

/// One line of a person's "who looked at my record": organisation, role, when, why and what, and
/// deliberately not the individual user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// When (ms since the epoch).
    pub recorded_ms: i64,
    /// The organisation (ODS code) of whoever made the request.
    pub organization: Option<String>,
    /// Their role, e.g. `clinician`.
    pub role: Option<String>,
    /// Why: the v3 PurposeOfUse code, e.g. `TREAT`.
    pub purpose: String,
    /// What: the interaction (`read`, `search-type`, `operation`, `break-glass`, ...).
    pub interaction: String,
    pub operation: Option<String>,
    /// The type of resource the request was about, when it named one.
    pub resource_type: Option<String>,
    pub outcome: Outcome,
    /// Whether it was emergency access (break-glass).
    pub break_glass: bool,
}

/// Why the trail could not be shown intact: it is broken, or it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreakError {
    /// The first place the chain is broken.
    Broken(ChainBreak),
    /// The store failed while reading the trail.
    Store(Error),
}

impl fmt::Display for ChainBreakError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreakError::Broken(b) => write!(f, "the audit trail is broken: {b}"),
            ChainBreakError::Store(e) => write!(f, "the audit trail could not be read: {e}"),
        }
    }
}

impl std::error::Error for ChainBreakError {}

/// The audit agent for a request's actor: a user's subject, first role, organisation and app, or
/// a system's name.
pub fn agent_of(actor: &Actor) -> Agent {
    match actor {
        Actor::User {
            id,
            roles,
            organization,
            client_id,
            ..
        } => Agent {
            subject: id.clone(),
            kind: "user".into(),
            role: roles.first().cloned(),
            organization: organization.clone(),
            client_id: client_id.clone(),
        },
        Actor::System { name, .. } => Agent {
            subject: name.clone(),
            kind: "system".into(),
            role: None,
            organization: None,
            client_id: None,
        },
    }
}

impl AuditTrail {
    /// Opens the trail over a log, continuing from its last entry, and starts the writer thread.
    /// `observer` is this node's id (`AuditEvent.source.observer`).
    pub fn open(log: Arc<dyn AuditLog>, observer: &str) -> Result<AuditTrail, Error> {
        let ctx = RequestContext::system("concord-audit", "audit-open");
        let last = log.last(&ctx)?;
        let (jobs, queue) = mpsc::channel();
        let writer = Writer {
            log: log.clone(),
            last: last.unwrap_or_else(|| (0, concord_audit::GENESIS.to_string())),
        };
        std::thread::Builder::new()
            .name("concord-audit".into())
            .spawn(move || writer.run(&queue))
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start the audit writer");
                Error::internal()
            })?;
        Ok(AuditTrail {
            inner: Arc::new(Inner {
                log,
                observer: observer.to_string(),
                jobs,
            }),
        })
    }

    /// This node's id, as the trail's AuditEvents name it.
    pub fn observer(&self) -> &str {
        &self.inner.observer
    }

    /// Records one event durably before returning its sequence number. The writer thread commits
    /// whatever has arrived together in one append, so concurrent callers share a commit; each
    /// caller blocks until its batch is committed (async code awaits [`AuditTrail::record_async`]).
    pub fn record(&self, record: AuditRecord) -> Result<u64, Error> {
        let answer = self.submit(record)?;
        answer.blocking_recv().map_err(|_| stopped())?
    }

    /// [`AuditTrail::record`] for async callers: the writer thread wakes the task when the batch
    /// holding the record has committed. A request then costs two thread hand-offs (to the
    /// writer and back), not four through a blocking thread.
    pub async fn record_async(&self, record: AuditRecord) -> Result<u64, Error> {
        let answer = self.submit(record)?;
        answer.await.map_err(|_| stopped())?
    }

    fn submit(
        &self,
        record: AuditRecord,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<u64, Error>>, Error> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.inner
            .jobs
            .send(Job { record, reply })
            .map_err(|_| stopped())?;
        Ok(answer)
    }

    /// The AuditEvents matching a query, newest first (for privacy officers).
    pub fn search(&self, ctx: &RequestContext, query: &AuditQuery) -> Result<Vec<Value>, Error> {
        let entries = self.inner.log.search(ctx, query)?;
        entries
            .iter()
            .map(|entry| {
                concord_audit::event_of_body(entry.seq, &entry.body).ok_or_else(|| {
                    tracing::error!(request_id = %ctx.request_id, seq = entry.seq, "an audit entry could not be read");
                    Error::internal()
                })
            })
            .collect()
    }

    /// Who looked at the record of a person with these hub Patient ids, newest first, at most
    /// `limit`: organisation, role, when, why and what, without the individual user.
    pub fn access_log(
        &self,
        ctx: &RequestContext,
        patient_ids: &[String],
        limit: usize,
    ) -> Result<Vec<AccessLogEntry>, Error> {
        // One search per id, merged by seq: an entry that touched two of the ids appears once.
        let mut found: BTreeMap<u64, AuditEntry> = BTreeMap::new();
        for patient in patient_ids {
            let query = AuditQuery {
                patient: Some(patient.clone()),
                limit,
                ..AuditQuery::default()
            };
            for entry in self.inner.log.search(ctx, &query)? {
                found.insert(entry.seq, entry);
            }
        }
        let mut out = Vec::new();
        for entry in found.into_values().rev().take(limit) {
            let Some(record) = concord_audit::record_of_body(&entry.body) else {
                // Verification reports damaged entries; the person's view shows the rest.
                tracing::warn!(request_id = %ctx.request_id, seq = entry.seq, "an audit entry could not be read");
                continue;
            };
            out.push(AccessLogEntry {
                recorded_ms: record.recorded_ms,
                organization: record.agent.organization,
                role: record.agent.role,
                purpose: record.purpose,
                interaction: record.interaction,
                operation: record.operation,
                resource_type: record.resource_type,
                outcome: record.outcome,
                break_glass: record.break_glass.is_some(),
            });
        }
        Ok(out)
    }

    /// Reads the whole trail in order and verifies its chain; returns how many entries it holds.
    pub fn verify(&self, ctx: &RequestContext) -> Result<u64, ChainBreakError> {
        let mut verifier = ChainVerifier::new();
        let mut after = 0;
        loop {
            let page = self
                .inner
                .log
                .scan(ctx, after, VERIFY_PAGE)
                .map_err(ChainBreakError::Store)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for entry in page {
                verifier
                    .push(&ChainedEntry {
                        seq: entry.seq,
                        prev_hash: entry.prev_hash,
                        hash: entry.hash,
                        body: entry.body,
                    })
                    .map_err(ChainBreakError::Broken)?;
            }
        }
        Ok(verifier.checked())
    }
}

fn stopped() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "The audit trail is not accepting records.",
    )
}

/// The one writer of a trail: numbers, chains and appends batches.
struct Writer {
    log: Arc<dyn AuditLog>,
    /// The last committed entry's seq and hash.
    last: (u64, String),
}

impl Writer {
    fn run(mut self, queue: &mpsc::Receiver<Job>) {
        // Ends when every AuditTrail clone (and so every sender) is gone.
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let result = self.commit(&batch);
            for (i, job) in batch.into_iter().enumerate() {
                let answer = match &result {
                    Ok(first_seq) => Ok(first_seq + i as u64),
                    Err(e) => Err(e.clone()),
                };
                // A caller that gave up waiting has nothing to tell.
                let _ = job.reply.send(answer);
            }
        }
    }

    /// Appends the batch after the last entry; returns the first entry's seq. If another writer
    /// appended first (another process on the same file), re-reads the end and chains again.
    fn commit(&mut self, batch: &[Job]) -> Result<u64, Error> {
        let ctx = RequestContext::system("concord-audit", "audit-append");
        let mut attempt = 0;
        loop {
            let entries = self.chain(batch);
            match self.log.append(&ctx, &entries) {
                Ok(()) => {
                    let first = self.last.0 + 1;
                    if let Some(last) = entries.last() {
                        self.last = (last.seq, last.hash.clone());
                    }
                    return Ok(first);
                }
                Err(e) => {
                    // The end of the trail may have moved; whatever happened, chain from what is
                    // really there next time.
                    if let Ok(last) = self.log.last(&ctx) {
                        self.last = last.unwrap_or_else(|| (0, concord_audit::GENESIS.to_string()));
                    }
                    attempt += 1;
                    if e.kind != ErrorKind::Conflict || attempt > CONFLICT_RETRIES {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn chain(&self, batch: &[Job]) -> Vec<AuditEntry> {
        let (mut seq, mut prev) = self.last.clone();
        batch
            .iter()
            .map(|job| {
                seq += 1;
                let record = &job.record;
                let body = concord_audit::stored_body(record);
                let link = ChainedEntry::new(&prev, seq, body);
                prev.clone_from(&link.hash);
                AuditEntry {
                    seq,
                    recorded_ms: record.recorded_ms,
                    patients: record.patients.clone(),
                    agent: record.agent.subject.clone(),
                    organization: record.agent.organization.clone(),
                    action: record.action.code().to_string(),
                    interaction: record.interaction.clone(),
                    outcome: record.outcome.as_str().to_string(),
                    prev_hash: link.prev_hash,
                    hash: link.hash,
                    body: link.body,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_store_and_the_audit_crate_agree_on_the_chain_start() {
        assert_eq!(concord_store::audit::GENESIS, concord_audit::GENESIS);
    }
}
