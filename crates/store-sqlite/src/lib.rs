//! The embedded resource store: SQLite in WAL mode (`concord serve` needs nothing installed).
//!
//! Owns: opening and migrating the database file, the connection handling (one writer behind a
//! mutex, a pool of readers), and the SQLite implementation of [`ResourceStore`]. Search
//! compilation lives in [`search`], index writes in [`write`]. Does not: validate, extract index
//! values or decide access; it stores what the service layer hands it.
//!
//! SQLite allows one writer at a time, so writes are serialised here rather than retried on
//! `SQLITE_BUSY`, and the units of work waiting together share one commit ([`group`]); readers
//! never block the writer in WAL mode.

mod audit;
mod audit_index;
mod checkpoint;
mod group;
mod messages;
mod read;
mod schema;
mod search;
mod write;

pub use audit::SqliteAuditLog;

use concord_fhir::{Error, RequestContext};
use concord_search::query::SearchQuery;
use concord_store::{
    CompartmentQuery, HistoryPage, HistoryQuery, ResourceStore, SearchPage, StoreTx, StoredVersion,
};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};

use crate::group::{GroupWriter, Kind, UnitError};

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Every commit is on disk before it returns (SQLite `FULL`).
    #[default]
    Full,
    /// Commits survive a process crash but the last ones may be lost on power failure (`NORMAL`).
    Normal,
}

/// Options for opening the store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file.
    pub path: PathBuf,
    /// How many reader connections to keep.
    pub readers: u32,
    pub synchronous: Synchronous,
}

impl SqliteOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: path.into(),
            readers: 8,
            synchronous: Synchronous::Full,
        }
    }
}

/// Creates the schema of a new store, migrates an older one in one transaction, and refuses a
/// store written by a newer build.
fn prepare_schema(writer: &Connection, path: &Path) -> Result<(), StoreOpenError> {
    let fail = |e: rusqlite::Error| open_error(path, &e);
    let has_info: bool = writer
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_info'",
            [],
            |r| r.get(0),
        )
        .map_err(fail)?;
    let version: Option<i64> = if has_info {
        writer
            .query_row(
                "SELECT value FROM schema_info WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(fail)?
    } else {
        None
    };
    match version {
        None => writer
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {} INSERT INTO schema_info (key, value) VALUES ('schema_version', {}); COMMIT;",
                schema::CREATE,
                schema::SCHEMA_VERSION
            ))
            .map_err(fail),
        Some(v) if v == schema::SCHEMA_VERSION => {
            writer.execute_batch(schema::CREATE).map_err(fail)
        }
        Some(v @ (2 | 3)) => {
            tracing::info!(path = %path.display(), from = v, to = schema::SCHEMA_VERSION, "migrating the store's schema");
            let migrate = || -> rusqlite::Result<()> {
                writer.execute_batch("BEGIN IMMEDIATE")?;
                if v == 2 {
                    writer.execute_batch(&schema::migrate_2_to_3())?;
                }
                write::reindex_phonetic(writer)?;
                writer.execute(
                    "UPDATE schema_info SET value = ?1 WHERE key = 'schema_version'",
                    [schema::SCHEMA_VERSION],
                )?;
                writer.execute_batch("COMMIT")
            };
            migrate().map_err(|e| {
                // Leave the store as it was: the transaction is rolled back whole.
                let _ = writer.execute_batch("ROLLBACK");
                fail(e)
            })
        }
        Some(v) => Err(StoreOpenError(format!(
            "{} has schema version {v}; this build reads version {}",
            path.display(),
            schema::SCHEMA_VERSION
        ))),
    }
}

/// The SQLite resource store.
pub struct SqliteStore {
    /// The one writer connection, committing the units of work waiting together (see [`group`]).
    writer: GroupWriter,
    readers: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// The writer checkpoints in its own commits only when the log is this long (80 MB of 4 KiB
/// frames): by then the background checkpoint ([`checkpoint`]) has copied nearly all of it, and
/// this lets a log that is written to without pause start again.
const WRITER_CHECKPOINT_FRAMES: i64 = 20_000;

fn synchronous_pragma(synchronous: Synchronous) -> &'static str {
    match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    }
}

/// The writer's page cache, in KiB (as SQLite's negative `cache_size`). Small on purpose: after a
/// B-tree split reorders its new pages, SQLite's cache keeps a page number beyond the end of the
/// file (the split renames pages through a temporary number, `PENDING_BYTE` / page size + 1), and
/// the commit that follows then walks every page the cache holds to drop pages past the end
/// (`pcache1TruncateUnsafe`). With random index keys nearly every commit follows such a split. At
/// 64 MiB that walk, one cache miss a page, was 4.4% of the server's CPU under the MLLP feed, all
/// of it inside the single writer; at 8 MiB it was 0.5%, and reading back the pages no longer
/// cached cost about 1% (they are in the memory map, or the log in the OS's cache). Imports
/// were as fast as before (docs/performance.md, 2026-12-05, eleventh session).
const WRITER_CACHE_KIB: i64 = 8192;

fn configure(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    let sync = synchronous_pragma(synchronous);
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {sync};
         PRAGMA busy_timeout = 10000;
         PRAGMA cache_size = -{WRITER_CACHE_KIB};
         PRAGMA mmap_size = 268435456;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = OFF;
         PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_FRAMES};"
    ))?;
    stable_plans(conn)?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `options.path` and brings its schema up to date.
    pub fn open(options: &SqliteOptions) -> Result<SqliteStore, StoreOpenError> {
        if let Some(parent) = options.path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreOpenError(format!("cannot create {}: {e}", parent.display())))?;
        }
        let writer = Connection::open(&options.path).map_err(|e| open_error(&options.path, &e))?;
        configure(&writer, options.synchronous).map_err(|e| open_error(&options.path, &e))?;
        prepare_schema(&writer, &options.path)?;
        let synchronous = options.synchronous;
        let manager = SqliteConnectionManager::file(&options.path)
            .with_flags(
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .with_init(move |c| configure_reader(c, synchronous));
        let readers = r2d2::Pool::builder()
            .max_size(options.readers.max(1))
            // r2d2_sqlite checks a connection with `SELECT 1` at every checkout, a statement
            // parsed and run per request; a local file's connection does not go stale, and a
            // failing one reports its error on first use anyway.
            .test_on_check_out(false)
            .min_idle(Some(1))
            .build(manager)
            .map_err(|e| {
                StoreOpenError(format!(
                    "cannot open readers on {}: {e}",
                    options.path.display()
                ))
            })?;
        let on_commit = checkpoint::spawn(&options.path, synchronous_pragma(synchronous))
            .map_err(|e| open_error(&options.path, &e))?;
        Ok(SqliteStore {
            writer: GroupWriter::new(writer, Some(on_commit)),
            readers,
            path: options.path.clone(),
        })
    }

    fn unit(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>,
    ) -> Result<(), UnitError<Error>> {
        self.writer.unit(kind, |conn, hooks| {
            work(&mut write::SqliteTx {
                conn,
                request_id: &ctx.request_id,
                hooks,
            })
        })
    }

    /// Checks that the database answers (for `/readyz`).
    pub fn ping(&self) -> bool {
        self.readers
            .get()
            .is_ok_and(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).is_ok())
    }

    fn reader(
        &self,
        ctx: &RequestContext,
    ) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, Error> {
        self.readers.get().map_err(|e| {
            tracing::error!(request_id = %ctx.request_id, error = %e, "no reader connection");
            Error::new(
                concord_fhir::ErrorKind::Unavailable,
                "The store is busy; try again.",
            )
        })
    }
}

fn configure_reader(conn: &mut Connection, _synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA busy_timeout = 10000;
         PRAGMA cache_size = -16384;
         PRAGMA mmap_size = 268435456;
         PRAGMA temp_store = MEMORY;",
    )?;
    stable_plans(conn)?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(())
}

/// Turns on SQLite's query planner stability guarantee. Without it a cached statement whose plan
/// might depend on a bound value is re-parsed and re-planned on the next step after a rebind,
/// which profiles showed on every search; search SQL is shaped so one plan serves all values.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map(|_| ())
}

/// The database could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOpenError(pub String);

impl std::fmt::Display for StoreOpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreOpenError {}

fn open_error(path: &Path, e: &rusqlite::Error) -> StoreOpenError {
    StoreOpenError(format!("cannot open the store at {}: {e}", path.display()))
}

/// A unit of work's own error as it was, or the database's as the generic internal error.
pub(crate) fn unit_error(request_id: &str, e: UnitError<Error>) -> Error {
    match e {
        UnitError::Work(e) => e,
        UnitError::Db(e) => db_error(request_id, &e),
        UnitError::Undone => {
            // Only a repeatable unit is undone, and its caller runs it again instead.
            tracing::error!(request_id = %request_id, "a unit of work was undone and not run again");
            Error::internal()
        }
    }
}

/// Logs a database failure with the request id and returns the generic internal error.
pub(crate) fn db_error(ctx_request_id: &str, e: &rusqlite::Error) -> Error {
    tracing::error!(request_id = %ctx_request_id, error = %e, "store failure");
    Error::internal()
}

impl ResourceStore for SqliteStore {
    fn read(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<StoredVersion>, Error> {
        let conn = self.reader(ctx)?;
        read::current(&conn, resource_type, id).map_err(|e| db_error(&ctx.request_id, &e))
    }

    fn read_with_last_seq(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<(StoredVersion, i64)>, Error> {
        let conn = self.reader(ctx)?;
        read::current_with_last_seq(&conn, resource_type, id)
            .map_err(|e| db_error(&ctx.request_id, &e))
    }

    fn vread(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        version_id: u64,
    ) -> Result<Option<StoredVersion>, Error> {
        let conn = self.reader(ctx)?;
        read::version(&conn, resource_type, id, version_id)
            .map_err(|e| db_error(&ctx.request_id, &e))
    }

    fn last_seq(&self, ctx: &RequestContext) -> Result<i64, Error> {
        let conn = self.reader(ctx)?;
        read::max_seq(&conn).map_err(|e| db_error(&ctx.request_id, &e))
    }

    fn search(&self, ctx: &RequestContext, query: &SearchQuery) -> Result<SearchPage, Error> {
        let mut conn = self.reader(ctx)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| db_error(&ctx.request_id, &e))?;
        let page = search::run(&tx, query).map_err(|e| e.into_error(&ctx.request_id))?;
        tx.finish().map_err(|e| db_error(&ctx.request_id, &e))?;
        Ok(page)
    }

    fn history(&self, ctx: &RequestContext, query: &HistoryQuery) -> Result<HistoryPage, Error> {
        let mut conn = self.reader(ctx)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| db_error(&ctx.request_id, &e))?;
        let page = read::history(&tx, query).map_err(|e| db_error(&ctx.request_id, &e))?;
        tx.finish().map_err(|e| db_error(&ctx.request_id, &e))?;
        Ok(page)
    }

    fn scan(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, Error> {
        let conn = self.reader(ctx)?;
        read::scan(&conn, resource_type, after, limit).map_err(|e| db_error(&ctx.request_id, &e))
    }

    fn changes(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredVersion>, Error> {
        let conn = self.reader(ctx)?;
        read::changes(&conn, resource_type, after, limit).map_err(|e| db_error(&ctx.request_id, &e))
    }

    fn compartment(
        &self,
        ctx: &RequestContext,
        query: &CompartmentQuery,
    ) -> Result<SearchPage, Error> {
        let mut conn = self.reader(ctx)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| db_error(&ctx.request_id, &e))?;
        let page = read::compartment(&tx, query).map_err(|e| db_error(&ctx.request_id, &e))?;
        tx.finish().map_err(|e| db_error(&ctx.request_id, &e))?;
        Ok(page)
    }

    fn write(
        &self,
        ctx: &RequestContext,
        work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.unit(ctx, Kind::Isolated, work)
            .map_err(|e| unit_error(&ctx.request_id, e))
    }

    fn write_repeatable(
        &self,
        ctx: &RequestContext,
        work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>,
    ) -> Result<(), Error> {
        match self.unit(ctx, Kind::Repeatable, work) {
            // Run again isolated, which no other unit can undo, so it runs twice at most.
            Err(UnitError::Undone) => self.unit(ctx, Kind::Isolated, work),
            other => other,
        }
        .map_err(|e| unit_error(&ctx.request_id, e))
    }
}
