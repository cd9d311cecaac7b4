//! The resource store port (<https://hl7.org/fhir/R4/http.html> needs versioned storage).
//!
//! Owns: the [`ResourceStore`] trait that the service layer calls and every backend (SQLite now,
//! PostgreSQL later) implements, its value types, the [`MessageLog`] of raw inbound messages, and
//! [`contract`], the tests every backend must pass. Does not: validate, index-extract, set
//! `meta`, read a clock or decide access; the service layer does all of that and hands the store
//! finished versions with their index entries.
//!
//! Every call takes the [`RequestContext`] first, so a backend can log and trace by request id.
//! The trait is synchronous: the embedded backend is synchronous, and the service layer runs store
//! calls on blocking threads.

pub mod audit;
pub mod contract;
pub mod messages;

pub use audit::{AuditEntry, AuditLog, AuditQuery};
pub use messages::{Appended, LoggedMessage, MessageLog, MessageStatus, NewMessage};

use concord_fhir::{Error, RequestContext};
use concord_search::index::IndexEntry;
use concord_search::query::SearchQuery;

/// One stored version of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVersion {
    pub resource_type: String,
    pub id: String,
    /// `meta.versionId`: 1, 2, 3 ... per resource.
    pub version_id: u64,
    /// `meta.lastUpdated` as milliseconds since the epoch.
    pub last_updated: i64,
    /// The store-wide sequence number of this version: a monotonic clock for snapshots and paging.
    pub seq: i64,
    /// The HTTP verb that made this version, for history `Bundle.entry.request`.
    pub method: Method,
    /// The resource JSON with `meta` already set; `None` when this version is a deletion.
    pub body: Option<String>,
}

impl StoredVersion {
    pub fn is_deleted(&self) -> bool {
        self.body.is_none()
    }
}

/// The interaction that created a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
}

/// A new version to write. The store checks that `version_id` follows the current version.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub resource_type: String,
    pub id: String,
    pub version_id: u64,
    pub last_updated: i64,
    pub method: Method,
    /// The JSON with `meta` set, or `None` for a deletion.
    pub body: Option<String>,
    /// What the version is found under in searches (empty for a deletion).
    pub index: Vec<IndexEntry>,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchPage {
    /// The matches on this page, in order.
    pub matches: Vec<StoredVersion>,
    /// Resources added by `_include` / `_revinclude`.
    pub included: Vec<StoredVersion>,
    /// The number of matches in the whole result, when computed.
    pub total: Option<u64>,
    /// The snapshot the page was read at; later pages pass it back in `SearchQuery::snapshot`.
    pub snapshot: i64,
}

/// Which history to list (<https://hl7.org/fhir/R4/http.html#history>).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryQuery {
    /// `None` for system history.
    pub resource_type: Option<String>,
    /// `Some` for instance history (requires `resource_type`).
    pub id: Option<String>,
    /// `_since`: only versions with lastUpdated at or after this instant (ms).
    pub since: Option<i64>,
    /// `_at`-like bound: only versions with `seq <= snapshot` (for stable paging).
    pub snapshot: Option<i64>,
    pub count: u32,
    pub offset: u32,
}

/// A page of history, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistoryPage {
    pub versions: Vec<StoredVersion>,
    pub total: u64,
    pub snapshot: i64,
}

/// Which resources of a compartment to list (for `Patient/$everything`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompartmentQuery {
    /// The compartment's owner, e.g. `Patient` and its id.
    pub owner_type: String,
    pub owner_id: String,
    /// For each member resource type, the reference parameters that tie it to the owner.
    pub members: Vec<(String, Vec<String>)>,
    /// `_since`: only resources last updated at or after this instant (ms).
    pub since: Option<i64>,
    pub count: u32,
    pub offset: u32,
    pub snapshot: Option<i64>,
}

/// The versioned resource store.
pub trait ResourceStore: Send + Sync {
    /// The current version of a resource (which may be a deletion), or `None` if it never existed.
    fn read(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredVersion>, Error>;

    /// One version of a resource.
    fn vread(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        version_id: u64,
    ) -> Result<Option<StoredVersion>, Error>;

    /// Runs a search, at `query.snapshot` when given, else at the latest state.
    fn search(&self, ctx: &RequestContext, query: &SearchQuery) -> Result<SearchPage, Error>;

    /// The `seq` of the latest committed version (0 for an empty store). Every write moves it
    /// forward (versions are never removed, so it never moves back), so what was read from the
    /// store can be cached under it and reused while it stays put.
    fn last_seq(&self, ctx: &RequestContext) -> Result<i64, Error>;

    /// [`ResourceStore::read`] with [`ResourceStore::last_seq`] as of the same moment: what a read
    /// that the access rules then decide needs (the facts they read about the person are cached
    /// under `last_seq`). A store that can answer both in one trip overrides this; the default
    /// reads `last_seq` first, so it is never newer than the version read.
    fn read_with_last_seq(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<(StoredVersion, i64)>, Error> {
        let last_seq = self.last_seq(ctx)?;
        Ok(self
            .read(ctx, resource_type, id)?
            .map(|version| (version, last_seq)))
    }

    /// Lists versions, newest first.
    fn history(&self, ctx: &RequestContext, query: &HistoryQuery) -> Result<HistoryPage, Error>;

    /// The current, not deleted resources of one type in the order they were last written,
    /// starting after the store position `after` (a `seq`; 0 for the start), at most `limit`.
    /// Keyset paging, so reading a whole type is linear however large it is (the hub loads its
    /// master patient index this way at start).
    fn scan(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, Error>;

    /// Like [`ResourceStore::scan`], but a resource whose current version is a deletion is listed
    /// too (as that deletion), so a reader that follows a type by `seq` learns of deletions as
    /// well as writes. Only current versions are listed: a superseded one is left out, because
    /// the version that superseded it has a later `seq`. The identity feed announces an edge's
    /// Patients to the hub this way, with its position in the sequence as a durable cursor.
    fn changes(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, Error>;

    /// Lists the current resources in a compartment (not including the owner itself).
    fn compartment(
        &self,
        ctx: &RequestContext,
        query: &CompartmentQuery,
    ) -> Result<SearchPage, Error>;

    /// Runs `work` as one atomic unit: every write it makes lands, or none does. Reads inside
    /// see the unit's own writes. Writers are serialised, so a read-check-write in `work` is safe.
    fn write(
        &self,
        ctx: &RequestContext,
        work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>,
    ) -> Result<(), Error>;

    /// [`ResourceStore::write`] for work that can run again from the start: a store may commit
    /// it with other units without isolating it from them, and if one of those fails, roll it
    /// back and call `work` again (everything the first call did to the store, and every
    /// outcome hook it registered, is undone first). `work` must leave what it captures ready
    /// for a second call. Stores that do not need this run it as `write` does.
    fn write_repeatable(
        &self,
        ctx: &RequestContext,
        work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.write(ctx, work)
    }
}

/// What [`StoreTx::on_outcome`] runs when a unit of work has committed (`true`) or been rolled
/// back (`false`).
pub type OutcomeHook = Box<dyn FnOnce(bool) + Send>;

/// Reads and writes inside one atomic unit of work.
pub trait StoreTx {
    fn read(&mut self, resource_type: &str, id: &str) -> Result<Option<StoredVersion>, Error>;

    /// Searches the state as of this unit's writes so far (for conditional interactions).
    fn search(&mut self, query: &SearchQuery) -> Result<SearchPage, Error>;

    /// Writes a new version. Fails with a conflict if `version_id` is not the current version + 1
    /// (or 1 for a new resource).
    fn put(&mut self, version: NewVersion) -> Result<StoredVersion, Error>;

    /// Logs an inbound message as part of this unit of work (what [`MessageLog::append`] does,
    /// committed with the rest of the unit), so a message can be logged, applied and marked in
    /// one commit. A store without a message log refuses.
    fn append_message(&mut self, message: NewMessage) -> Result<Appended, Error> {
        let _ = message;
        Err(Error::not_supported("this store keeps no message log"))
    }

    /// Runs `work` so that when it fails its writes are undone and the unit goes on without
    /// them (a nested savepoint); the unit can still commit. For work whose failure must not
    /// fail the unit: linking a Patient the unit wrote to its golden person. A store that cannot
    /// nest refuses, and the caller does the work in a unit of its own.
    fn attempt(
        &mut self,
        work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let _ = work;
        Err(Error::not_supported(
            "this store cannot nest a unit of work",
        ))
    }

    /// Runs `hook` once the fate of this unit of work is known: with `true` after the commit
    /// that holds it, with `false` once it has been rolled back (the unit itself failed, or the
    /// commit did). Hooks run in the order they were registered on commit and in reverse order
    /// on rollback, while the store still holds its writer, so the next unit of work sees their
    /// effects. That makes them the place to publish, or undo, state kept in memory beside the
    /// store (the hub's links of records to golden persons). A hook must be quick and must not
    /// write to the store. Registered inside a failed [`StoreTx::attempt`], it runs with `false`
    /// when the attempt is rolled back.
    fn on_outcome(&mut self, hook: OutcomeHook);

    /// Records what became of a message as part of this unit of work.
    fn set_message_status(
        &mut self,
        seq: i64,
        status: MessageStatus,
        error: Option<&str>,
        ack_code: &str,
    ) -> Result<(), Error> {
        let _ = (seq, status, error, ack_code);
        Err(Error::not_supported("this store keeps no message log"))
    }
}
