//! The audit log port: the append-only, hash-chained trail of AuditEvents.
//!
//! Owns the [`AuditLog`] trait and its value types. The caller (the hub's audit trail) numbers the
//! entries and computes their chain hashes; a backend stores them, refuses an append that does not
//! continue the chain it holds (so two writers can never fork it), indexes who, whose record, when
//! and what for search, and offers no way to change or remove an entry. Does not: build
//! AuditEvents, hash or verify (concord-audit does), or decide who may read the trail.

use concord_fhir::{Error, RequestContext};

/// The `prev_hash` of the first entry (64 zeros), the same value as `concord_audit::GENESIS`; the
/// store checks the first append against it without depending on the audit crate.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the trail: the AuditEvent JSON plus the columns it is searched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the trail: 1, 2, 3 ... with no gaps.
    pub seq: u64,
    /// When the audited request happened, milliseconds since the epoch.
    pub recorded_ms: i64,
    /// The hub Patient ids whose data the request touched.
    pub patients: Vec<String>,
    /// The requesting user's or system's subject.
    pub agent: String,
    /// The agent's organisation (ODS code).
    pub organization: Option<String>,
    /// `AuditEvent.action`: `C`, `R`, `U`, `D` or `E`.
    pub action: String,
    /// The interaction (`read`, `search-type`, `break-glass`, ...).
    pub interaction: String,
    /// `success`, `denied` or `failed`.
    pub outcome: String,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// This entry's chain hash.
    pub hash: String,
    /// What the hash covers: the audited record in its stored form (`concord_audit::stored_body`),
    /// or, in entries written before that form, the whole AuditEvent JSON.
    pub body: String,
}

/// A search of the trail. Every filter that is set must match; results are newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditQuery {
    /// Entries that touched this hub Patient id.
    pub patient: Option<String>,
    pub agent: Option<String>,
    pub organization: Option<String>,
    /// `success`, `denied` or `failed`.
    pub outcome: Option<String>,
    /// `C`, `R`, `U`, `D` or `E`.
    pub action: Option<String>,
    pub interaction: Option<String>,
    /// Recorded at or after (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Recorded before (ms since the epoch, exclusive).
    pub until_ms: Option<i64>,
    /// Paging: only entries numbered below this one (the last `seq` of the previous page).
    pub before_seq: Option<u64>,
    /// At most this many entries.
    pub limit: usize,
}

/// The durable audit trail.
pub trait AuditLog: Send + Sync {
    /// Appends entries whose `seq`, `prev_hash` and `hash` the caller computed, in one
    /// transaction, committed when this returns. Fails with `Conflict` (appending nothing) unless
    /// the first entry's `seq` is the last one's plus one and its `prev_hash` the last one's hash
    /// ([`GENESIS`] and 1 on an empty trail), and each further entry follows the one before it.
    fn append(&self, ctx: &RequestContext, entries: &[AuditEntry]) -> Result<(), Error>;

    /// The last entry's `seq` and hash, or `None` on an empty trail.
    fn last(&self, ctx: &RequestContext) -> Result<Option<(u64, String)>, Error>;

    /// The entries matching a query, newest first.
    fn search(&self, ctx: &RequestContext, query: &AuditQuery) -> Result<Vec<AuditEntry>, Error>;

    /// Entries numbered above `after_seq`, oldest first, at most `limit` (for verification).
    fn scan(
        &self,
        ctx: &RequestContext,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, Error>;
}
