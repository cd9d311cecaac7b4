//! The audit trail in SQLite: its own database file (for example `<data>/audit.db`), WAL, kept
//! apart from the resources so it can be backed up, retained and permissioned on its own.
//!
//! Owns the schema and SQL of [`AuditLog`]: `audit_entry` (one row per entry, numbered by `seq`,
//! with the columns it is searched by) and `audit_patient` (one row per patient per entry, so "who
//! looked at my record" is an index range). Appends are checked against the last entry inside the
//! same immediate transaction, so two writers can never fork the chain. There is no way to change
//! or remove an entry through this type. Does not hash or verify (the caller does).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use concord_fhir::{Error, ErrorKind, RequestContext};
use concord_store::audit::GENESIS;
use concord_store::{AuditEntry, AuditLog, AuditQuery};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use crate::{StoreOpenError, db_error};

/// Bumped when the audit schema changes; checked at open.
const AUDIT_SCHEMA_VERSION: i64 = 1;

const CREATE: &str = r"
CREATE TABLE IF NOT EXISTS audit_info (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit_entry (
    seq          INTEGER PRIMARY KEY,
    recorded_ms  INTEGER NOT NULL,
    agent        TEXT    NOT NULL,
    organization TEXT,
    action       TEXT    NOT NULL,
    interaction  TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL,
    body         TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_entry_agent ON audit_entry (agent, seq);
CREATE INDEX IF NOT EXISTS audit_entry_organization ON audit_entry (organization, seq);
CREATE INDEX IF NOT EXISTS audit_entry_recorded ON audit_entry (recorded_ms);
CREATE TABLE IF NOT EXISTS audit_patient (
    patient TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    ord     INTEGER NOT NULL,
    PRIMARY KEY (patient, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_patient_entry ON audit_patient (seq, ord);
";

const COLUMNS: &str = "e.seq, e.recorded_ms, e.agent, e.organization, e.action, e.interaction, \
                       e.outcome, e.prev_hash, e.hash, e.body";

/// The SQLite audit trail.
pub struct SqliteAuditLog {
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
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
    /// Opens (creating if needed) the audit database at `path`. Commits are `synchronous = FULL`:
    /// an audited request is on disk before it is answered. Callers batch appends to keep that
    /// cheap.
    pub fn open(path: impl Into<PathBuf>) -> Result<SqliteAuditLog, StoreOpenError> {
        let path = path.into();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreOpenError(format!("cannot create {}: {e}", parent.display())))?;
        }
        let writer = Connection::open(&path).map_err(|e| open_error(&path, &e))?;
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA busy_timeout = 10000;",
            )
            .map_err(|e| open_error(&path, &e))?;
        writer
            .execute_batch(CREATE)
            .map_err(|e| open_error(&path, &e))?;
        let version: Option<i64> = writer
            .query_row(
                "SELECT value FROM audit_info WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| open_error(&path, &e))?;
        match version {
            None => {
                writer
                    .execute(
                        "INSERT INTO audit_info (key, value) VALUES ('schema_version', ?1)",
                        [AUDIT_SCHEMA_VERSION],
                    )
                    .map_err(|e| open_error(&path, &e))?;
            }
            Some(v) if v == AUDIT_SCHEMA_VERSION => {}
            Some(v) => {
                return Err(StoreOpenError(format!(
                    "{} has audit schema version {v}; this build reads version {AUDIT_SCHEMA_VERSION}",
                    path.display()
                )));
            }
        }
        let manager = SqliteConnectionManager::file(&path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| c.execute_batch("PRAGMA busy_timeout = 10000;"));
        let readers = r2d2::Pool::builder()
            .max_size(4)
            .min_idle(Some(1))
            .build(manager)
            .map_err(|e| open_error(&path, &e))?;
        Ok(SqliteAuditLog {
            writer: Mutex::new(writer),
            readers,
            path,
        })
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
    Ok(AuditEntry {
        seq: u64::try_from(seq).unwrap_or(0),
        recorded_ms: row.get(1)?,
        patients: Vec::new(),
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

/// Fills in each entry's patients, in the order they were given.
fn with_patients(
    conn: &Connection,
    mut entries: Vec<AuditEntry>,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt =
        conn.prepare_cached("SELECT patient FROM audit_patient WHERE seq = ?1 ORDER BY ord")?;
    for entry in &mut entries {
        let seq = i64::try_from(entry.seq).unwrap_or(i64::MAX);
        entry.patients = stmt
            .query_map([seq], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(entries)
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
            tx.prepare_cached(
                "INSERT INTO audit_entry (seq, recorded_ms, agent, organization, action, interaction,
                                          outcome, prev_hash, hash, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
                    entry.body
                ])
            })
            .map_err(|e| db_error(&ctx.request_id, &e))?;
            let mut insert_patient = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO audit_patient (patient, seq, ord) VALUES (?1, ?2, ?3)",
                )
                .map_err(|e| db_error(&ctx.request_id, &e))?;
            for (ord, patient) in entry.patients.iter().enumerate() {
                insert_patient
                    .execute(params![
                        patient,
                        seq,
                        i64::try_from(ord).unwrap_or(i64::MAX)
                    ])
                    .map_err(|e| db_error(&ctx.request_id, &e))?;
            }
            last_seq = seq;
            last_hash.clone_from(&entry.hash);
        }
        // Returning early above drops the transaction, which rolls the whole batch back.
        tx.commit().map_err(|e| db_error(&ctx.request_id, &e))
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
        let mut sql = String::new();
        let mut args: Vec<SqlValue> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, value: SqlValue| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        // With a patient, the patient index drives: it is ordered by seq for that patient.
        if let Some(patient) = &query.patient {
            sql.push_str(&format!(
                "SELECT {COLUMNS} FROM audit_patient p JOIN audit_entry e ON e.seq = p.seq WHERE "
            ));
            arg(&mut sql, "p.patient = ?", SqlValue::Text(patient.clone()));
        } else {
            sql.push_str(&format!("SELECT {COLUMNS} FROM audit_entry e WHERE 1 = 1"));
        }
        let text = |s: &Option<String>| s.clone().map(SqlValue::Text);
        for (clause, value) in [
            (" AND e.agent = ?", text(&query.agent)),
            (" AND e.organization = ?", text(&query.organization)),
            (" AND e.outcome = ?", text(&query.outcome)),
            (" AND e.action = ?", text(&query.action)),
            (" AND e.interaction = ?", text(&query.interaction)),
            (
                " AND e.recorded_ms >= ?",
                query.since_ms.map(SqlValue::Integer),
            ),
            (
                " AND e.recorded_ms < ?",
                query.until_ms.map(SqlValue::Integer),
            ),
        ] {
            if let Some(value) = value {
                arg(&mut sql, clause, value);
            }
        }
        if let Some(before) = query.before_seq {
            // A seq beyond SQLite's range is above every entry, so it excludes nothing.
            let before = i64::try_from(before).unwrap_or(i64::MAX);
            arg(&mut sql, " AND e.seq < ?", SqlValue::Integer(before));
        }
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        arg(
            &mut sql,
            " ORDER BY e.seq DESC LIMIT ?",
            SqlValue::Integer(limit),
        );
        let conn = self.reader(ctx)?;
        let entries = conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(rusqlite::params_from_iter(args.iter()), row_to_entry)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .and_then(|entries| with_patients(&conn, entries))
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
        .and_then(|entries| with_patients(&conn, entries))
        .map_err(|e| db_error(&ctx.request_id, &e))
    }
}
