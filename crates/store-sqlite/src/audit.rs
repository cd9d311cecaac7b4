//! The audit trail in SQLite: its own database file (for example `<data>/audit.db`), WAL, kept
//! apart from the resources so it can be backed up, retained and permissioned on its own.
//!
//! Owns the schema and SQL of [`AuditLog`]: `audit_entry` (one row per entry, numbered by `seq`,
//! with the columns it is searched by and the patients it touched), and searching it together
//! with the patient index (`audit_patient`, one row per patient per entry, so "who looked at my
//! record" is an index range). Appends are checked against the last entry inside the same
//! immediate transaction, so two writers can never fork the chain. There is no way to change or
//! remove an entry through this type. Does not hash or verify (the caller does), or fill the
//! patient index (`crate::audit_index` does).
//!
//! **The patient index trails the entries.** An append commits only `audit_entry`, whose rows
//! go at the end of its b-trees, and waits for the disk. "Who looked at my record" is served by
//! `audit_patient`, which lives in a file of its own and is filled behind the appends by a
//! background thread (`crate::audit_index` says why). A search by patient reads the index up to
//! its reach and the entries' own `patients` after it, in one statement, so it sees every entry
//! exactly once however far the index has got.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use concord_fhir::{Error, ErrorKind, RequestContext};
use concord_store::audit::GENESIS;
use concord_store::{AuditEntry, AuditLog, AuditQuery};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use crate::audit_index::{self, Indexer};
use crate::{StoreOpenError, db_error};

/// Bumped when the audit schema changes; checked at open. Version 2 keeps each entry's patients
/// on the entry and the patient index in its own file, filled behind the appends (version 1
/// filled `audit_patient` here in each append, with an `ord` column and a second index to read an
/// entry's patients back in order).
const AUDIT_SCHEMA_VERSION: i64 = 2;

const CREATE: &str = r"
CREATE TABLE audit_entry (
    seq          INTEGER PRIMARY KEY,
    recorded_ms  INTEGER NOT NULL,
    agent        TEXT    NOT NULL,
    organization TEXT,
    action       TEXT    NOT NULL,
    interaction  TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    patients     TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX audit_entry_agent ON audit_entry (agent, seq);
CREATE INDEX audit_entry_organization ON audit_entry (organization, seq);
CREATE INDEX audit_entry_recorded ON audit_entry (recorded_ms);
";

/// Version 1 to 2: each entry's patients move onto the entry (a JSON array, in the order they
/// were given), and the index rows move to the index file (attached as `idx`), which then
/// reaches the last entry. The two files commit separately: if the second commit is lost, the
/// index is rebuilt from the entries; if the first is, the migration runs again (`OR IGNORE`).
const MIGRATE_1_TO_2: &str = r"
ALTER TABLE audit_entry ADD COLUMN patients TEXT NOT NULL DEFAULT '[]';
UPDATE audit_entry SET patients = (
    SELECT json_group_array(p.patient ORDER BY p.ord) FROM audit_patient p WHERE p.seq = audit_entry.seq
) WHERE seq IN (SELECT seq FROM audit_patient);
INSERT OR IGNORE INTO idx.audit_patient (patient, seq) SELECT patient, seq FROM main.audit_patient;
UPDATE idx.index_info SET value = coalesce((SELECT max(seq) FROM main.audit_entry), 0)
    WHERE key = 'indexed_seq';
UPDATE idx.index_info SET value = coalesce((SELECT hash FROM main.audit_entry ORDER BY seq DESC LIMIT 1), '')
    WHERE key = 'indexed_hash';
DROP TABLE main.audit_patient;
UPDATE audit_info SET value = 2 WHERE key = 'schema_version';
";

const COLUMNS: &str = "e.seq, e.recorded_ms, e.agent, e.organization, e.action, e.interaction, \
                       e.outcome, e.prev_hash, e.hash, e.body, e.patients";

/// The SQLite audit trail.
pub struct SqliteAuditLog {
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
    /// The patient index's connections, shared with its thread.
    indexer: Arc<Mutex<Indexer>>,
    /// Tells the index thread how far the trail reaches; `None` when nothing indexes in the
    /// background (see [`SqliteAuditLog::open_without_background_index`]).
    appended: Option<audit_index::Progress>,
}

impl std::fmt::Debug for SqliteAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteAuditLog")
            .field("path", &self.path)
            .finish()
    }
}

fn open_error(path: &Path, e: &dyn std::fmt::Display) -> StoreOpenError {
    StoreOpenError(format!(
        "cannot open the audit trail at {}: {e}",
        path.display()
    ))
}

impl SqliteAuditLog {
    /// Opens (creating if needed, or bringing a version 1 trail up to date) the audit database at
    /// `path`, and its patient index beside it. Appends commit with `synchronous = FULL`: an
    /// audited request is on disk before it is answered. Callers batch appends to keep that
    /// cheap. A background thread keeps the patient index close behind the appends (see the
    /// module doc); it stops when the trail is dropped.
    pub fn open(path: impl Into<PathBuf>) -> Result<SqliteAuditLog, StoreOpenError> {
        let mut log = SqliteAuditLog::open_without_background_index(path)?;
        let last = last_of(
            &log.writer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .map_err(|e| open_error(&log.path, &e))?
        .map_or(0, |(seq, _)| seq);
        let progress =
            audit_index::spawn(log.indexer.clone(), last).map_err(|e| open_error(&log.path, &e))?;
        log.appended = Some(progress);
        Ok(log)
    }

    /// [`SqliteAuditLog::open`] with no background thread: the patient index moves only when
    /// [`SqliteAuditLog::index_patients`] is called (tests use it to search a trail that is
    /// indexed up to a known point).
    pub fn open_without_background_index(
        path: impl Into<PathBuf>,
    ) -> Result<SqliteAuditLog, StoreOpenError> {
        let path = path.into();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreOpenError(format!("cannot create {}: {e}", parent.display())))?;
        }
        let index_path = audit_index::index_path(&path);
        // Opened first: migrating a version 1 trail moves its index rows into it.
        let index =
            audit_index::open_index(&index_path).map_err(|e| open_error(&index_path, &e))?;
        let mut conn = Connection::open(&path).map_err(|e| open_error(&path, &e))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 10000;",
        )
        .map_err(|e| open_error(&path, &e))?;
        prepare_schema(&mut conn, &index_path).map_err(|why| open_error(&path, &why))?;
        let mut indexer = Indexer::new(&path, index).map_err(|e| open_error(&path, &e))?;
        audit_index::check_belongs(&mut indexer.index, &conn)
            .map_err(|e| open_error(&index_path, &e))?;
        let attach = index_path.clone();
        let manager = SqliteConnectionManager::file(&path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(move |c| {
                c.execute_batch("PRAGMA busy_timeout = 10000;")?;
                c.execute(
                    "ATTACH DATABASE ?1 AS idx",
                    [attach.to_string_lossy().as_ref()],
                )
                .map(|_| ())
            });
        let readers = r2d2::Pool::builder()
            .max_size(4)
            .min_idle(Some(1))
            // No `SELECT 1` at each checkout, as for the store's readers.
            .test_on_check_out(false)
            .build(manager)
            .map_err(|e| open_error(&path, &e))?;
        Ok(SqliteAuditLog {
            writer: Mutex::new(conn),
            readers,
            path,
            indexer: Arc::new(Mutex::new(indexer)),
            appended: None,
        })
    }

    /// Brings the patient index up to the trail's last entry, or `limit` entries past its
    /// reach, whichever is nearer; returns its new reach. The background thread does this on
    /// its own; this is for tests and tools that need to know where the index stands.
    pub fn index_patients(&self, ctx: &RequestContext, limit: usize) -> Result<u64, Error> {
        let mut indexer = self
            .indexer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Indexer { index, trail } = &mut *indexer;
        let reach = audit_index::index_next(index, trail, limit)
            .map_err(|e| db_error(&ctx.request_id, &e))?;
        Ok(u64::try_from(reach).unwrap_or(0))
    }

    fn reader(
        &self,
        ctx: &RequestContext,
    ) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, Error> {
        self.readers.get().map_err(|e| {
            tracing::error!(request_id = %ctx.request_id, error = %e, "no audit reader connection");
            Error::new(
                ErrorKind::Unavailable,
                "The audit trail is busy; try again.",
            )
        })
    }
}

fn to_sql_seq(seq: u64) -> Result<i64, Error> {
    i64::try_from(seq).map_err(|_| Error::new(ErrorKind::Invalid, "Audit sequence out of range."))
}

fn conflict(why: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!("The audit append does not continue the trail: {why}."),
    )
}

fn row_to_entry(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let seq: i64 = row.get(0)?;
    let patients: String = row.get(10)?;
    Ok(AuditEntry {
        seq: u64::try_from(seq).unwrap_or(0),
        recorded_ms: row.get(1)?,
        // The column is written only by `append`, from a list of strings.
        patients: serde_json::from_str(&patients).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(10, rusqlite::types::Type::Text, Box::new(e))
        })?,
        agent: row.get(2)?,
        organization: row.get(3)?,
        action: row.get(4)?,
        interaction: row.get(5)?,
        outcome: row.get(6)?,
        prev_hash: row.get(7)?,
        hash: row.get(8)?,
        body: row.get(9)?,
    })
}

/// Creates the schema in a new file, or brings an older one up to date, in one transaction.
fn prepare_schema(conn: &mut Connection, index_path: &Path) -> Result<(), String> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS audit_info (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    )
    .map_err(|e| e.to_string())?;
    let version: Option<i64> = tx
        .query_row(
            "SELECT value FROM audit_info WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    match version {
        None => {
            tx.execute_batch(CREATE).map_err(|e| e.to_string())?;
            tx.execute(
                "INSERT INTO audit_info (key, value) VALUES ('schema_version', ?1)",
                [AUDIT_SCHEMA_VERSION],
            )
            .map_err(|e| e.to_string())?;
        }
        Some(1) => {
            // ATTACH cannot run inside a transaction: this one is only a read so far, so it ends
            // here and the migration takes its own.
            drop(tx);
            return migrate_1_to_2(conn, index_path);
        }
        Some(v) if v == AUDIT_SCHEMA_VERSION => {}
        Some(v) => {
            return Err(format!(
                "it has audit schema version {v}; this build reads version {AUDIT_SCHEMA_VERSION}"
            ));
        }
    }
    tx.commit().map_err(|e| e.to_string())
}

/// Version 1 to 2, with the index file attached for the length of it.
fn migrate_1_to_2(conn: &mut Connection, index_path: &Path) -> Result<(), String> {
    conn.execute(
        "ATTACH DATABASE ?1 AS idx",
        [index_path.to_string_lossy().as_ref()],
    )
    .map_err(|e| e.to_string())?;
    let migrated = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .and_then(|tx| {
            tx.execute_batch(MIGRATE_1_TO_2)?;
            tx.commit()
        })
        .map_err(|e| e.to_string());
    let detached = conn
        .execute_batch("DETACH DATABASE idx")
        .map_err(|e| e.to_string());
    migrated.and(detached)?;
    // The migration rewrote every entry into the WAL; copied back now, at open, rather than by
    // the first append that crosses the checkpoint threshold while requests wait on it.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| e.to_string())
}

fn last_of(conn: &Connection) -> rusqlite::Result<Option<(i64, String)>> {
    conn.prepare_cached("SELECT seq, hash FROM audit_entry ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

impl AuditLog for SqliteAuditLog {
    fn append(&self, ctx: &RequestContext, entries: &[AuditEntry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        // A poisoned lock only means another writer panicked; SQLite rolled its transaction back.
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_error(&ctx.request_id, &e))?;
        let (mut last_seq, mut last_hash) =
            match last_of(&tx).map_err(|e| db_error(&ctx.request_id, &e))? {
                Some((seq, hash)) => (seq, hash),
                None => (0, GENESIS.to_string()),
            };
        for entry in entries {
            let seq = to_sql_seq(entry.seq)?;
            if seq != last_seq + 1 {
                return Err(conflict("the entry number does not follow the last one"));
            }
            if entry.prev_hash != last_hash {
                return Err(conflict("the entry does not link to the last one"));
            }
            let patients = serde_json::to_string(&entry.patients).map_err(|e| {
                tracing::error!(request_id = %ctx.request_id, error = %e, "an audit entry's patients could not be written");
                Error::internal()
            })?;
            tx.prepare_cached(
                "INSERT INTO audit_entry (seq, recorded_ms, agent, organization, action, interaction,
                                          outcome, prev_hash, hash, body, patients)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    seq,
                    entry.recorded_ms,
                    entry.agent,
                    entry.organization,
                    entry.action,
                    entry.interaction,
                    entry.outcome,
                    entry.prev_hash,
                    entry.hash,
                    entry.body,
                    patients
                ])
            })
            .map_err(|e| db_error(&ctx.request_id, &e))?;
            last_seq = seq;
            last_hash.clone_from(&entry.hash);
        }
        // Returning early above drops the transaction, which rolls the whole batch back.
        tx.commit().map_err(|e| db_error(&ctx.request_id, &e))?;
        if let Some(appended) = &self.appended {
            appended.appended(last_seq);
        }
        Ok(())
    }

    fn last(&self, ctx: &RequestContext) -> Result<Option<(u64, String)>, Error> {
        let conn = self.reader(ctx)?;
        let last = last_of(&conn).map_err(|e| db_error(&ctx.request_id, &e))?;
        Ok(last.map(|(seq, hash)| (u64::try_from(seq).unwrap_or(0), hash)))
    }

    fn search(&self, ctx: &RequestContext, query: &AuditQuery) -> Result<Vec<AuditEntry>, Error> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut args: Vec<SqlValue> = Vec::new();
        let mut arg = |value: SqlValue| {
            args.push(value);
            format!("?{}", args.len())
        };
        // The filters on the entry's own columns.
        let mut filters = String::new();
        let text = |s: &Option<String>| s.clone().map(SqlValue::Text);
        for (column, value) in [
            ("e.agent =", text(&query.agent)),
            ("e.organization =", text(&query.organization)),
            ("e.outcome =", text(&query.outcome)),
            ("e.action =", text(&query.action)),
            ("e.interaction =", text(&query.interaction)),
            ("e.recorded_ms >=", query.since_ms.map(SqlValue::Integer)),
            ("e.recorded_ms <", query.until_ms.map(SqlValue::Integer)),
            // A seq beyond SQLite's range is above every entry, so it excludes nothing.
            (
                "e.seq <",
                query
                    .before_seq
                    .map(|before| SqlValue::Integer(i64::try_from(before).unwrap_or(i64::MAX))),
            ),
        ] {
            if let Some(value) = value {
                filters.push_str(&format!(" AND {column} {}", arg(value)));
            }
        }
        let sql = match &query.patient {
            // The patient index up to its reach, and the entries after it by their own
            // `patients`: one statement, so both parts see the same reach. Only entry numbers
            // come out of the union, and SQLite keeps them sorted, so the newest are read first
            // and reading stops at the limit however many entries the person has.
            Some(patient) => {
                let patient = arg(SqlValue::Text(patient.clone()));
                format!(
                    "SELECT {COLUMNS} FROM audit_entry e WHERE e.seq IN (
                         SELECT p.seq FROM idx.audit_patient p WHERE p.patient = {patient}
                         UNION ALL
                         SELECT t.seq FROM audit_entry t
                         WHERE t.seq > (SELECT value FROM idx.index_info WHERE key = 'indexed_seq')
                           AND EXISTS (SELECT 1 FROM json_each(t.patients) WHERE json_each.value = {patient})
                     ){filters} ORDER BY e.seq DESC LIMIT "
                )
            }
            None => format!(
                "SELECT {COLUMNS} FROM audit_entry e WHERE 1 = 1{filters} ORDER BY e.seq DESC LIMIT "
            ),
        };
        let sql = sql
            + &arg(SqlValue::Integer(
                i64::try_from(query.limit).unwrap_or(i64::MAX),
            ));
        let conn = self.reader(ctx)?;
        let entries = conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(rusqlite::params_from_iter(args.iter()), row_to_entry)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| db_error(&ctx.request_id, &e))?;
        Ok(entries)
    }

    fn scan(
        &self,
        ctx: &RequestContext,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, Error> {
        let Ok(after) = i64::try_from(after_seq) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.reader(ctx)?;
        conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_entry e WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
        ))
        .and_then(|mut s| {
            s.query_map(params![after, limit], row_to_entry)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| db_error(&ctx.request_id, &e))
    }
}
