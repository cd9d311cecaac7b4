//! The message log in SQLite: one append-only table, `message_log`, in the same database as the
//! resources, unique on (sender, control id).
//!
//! Owns the SQL of [`MessageLog`], also as used inside a unit of work (`StoreTx::append_message`,
//! so a message can be logged, applied and marked in one commit). Appends are units of work like
//! resource writes, so a message is committed (and durable under `synchronous = full`) before
//! `append` returns.

use concord_fhir::{Error, RequestContext};
use concord_store::{Appended, LoggedMessage, MessageLog, MessageStatus, NewMessage};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::group::{Kind, UnitError};
use crate::{SqliteStore, db_error};

const COLUMNS: &str =
    "seq, sender, control_id, message_type, received_at, raw, status, error, ack_code";

fn row_to_message(row: &Row<'_>) -> rusqlite::Result<LoggedMessage> {
    let status: String = row.get(6)?;
    Ok(LoggedMessage {
        seq: row.get(0)?,
        sender: row.get(1)?,
        control_id: row.get(2)?,
        message_type: row.get(3)?,
        received_at: row.get(4)?,
        raw: row.get(5)?,
        status: MessageStatus::parse(&status).unwrap_or(MessageStatus::Received),
        error: row.get(7)?,
        ack_code: row.get(8)?,
    })
}

/// Appends a message inside the current unit of work, unless the sender already sent its
/// control id.
pub(crate) fn append(conn: &Connection, message: &NewMessage) -> rusqlite::Result<Appended> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO message_log (sender, control_id, message_type, received_at, raw, status)
             VALUES (?1, ?2, ?3, ?4, ?5, 'received')
             ON CONFLICT (sender, control_id) DO NOTHING",
        )?
        .execute(params![
            message.sender,
            message.control_id,
            message.message_type,
            message.received_at,
            message.raw
        ])?;
    if inserted == 1 {
        return Ok(Appended::New(conn.last_insert_rowid()));
    }
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM message_log WHERE sender = ?1 AND control_id = ?2"
    ))?
    .query_row(params![message.sender, message.control_id], row_to_message)
    .map(Appended::Repeat)
}

/// Records what became of a message inside the current unit of work.
pub(crate) fn set_status(
    conn: &Connection,
    seq: i64,
    status: MessageStatus,
    error: Option<&str>,
    ack_code: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE message_log SET status = ?2, error = ?3, ack_code = ?4 WHERE seq = ?1",
    )?
    .execute(params![seq, status.as_str(), error, ack_code])
    .map(|_| ())
}

impl MessageLog for SqliteStore {
    fn append(&self, ctx: &RequestContext, message: NewMessage) -> Result<Appended, Error> {
        self.writer
            .unit(Kind::Isolated, |conn, _| append(conn, &message))
            .map_err(|e| match e {
                UnitError::Work(e) | UnitError::Db(e) => db_error(&ctx.request_id, &e),
                // An isolated unit is never undone by another's failure.
                UnitError::Undone => Error::internal(),
            })
    }

    fn set_status(
        &self,
        ctx: &RequestContext,
        seq: i64,
        status: MessageStatus,
        error: Option<&str>,
        ack_code: &str,
    ) -> Result<(), Error> {
        self.writer
            .unit(Kind::Isolated, |conn, _| {
                set_status(conn, seq, status, error, ack_code)
            })
            .map_err(|e| match e {
                UnitError::Work(e) | UnitError::Db(e) => db_error(&ctx.request_id, &e),
                // An isolated unit is never undone by another's failure.
                UnitError::Undone => Error::internal(),
            })
    }

    fn get(&self, ctx: &RequestContext, seq: i64) -> Result<Option<LoggedMessage>, Error> {
        let conn = self.reader(ctx)?;
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM message_log WHERE seq = ?1"))
            .and_then(|mut s| s.query_row(params![seq], row_to_message).optional())
            .map_err(|e| db_error(&ctx.request_id, &e))
    }

    fn list(
        &self,
        ctx: &RequestContext,
        status: MessageStatus,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LoggedMessage>, Error> {
        let conn = self.reader(ctx)?;
        conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM message_log WHERE status = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        ))
        .and_then(|mut s| {
            s.query_map(params![status.as_str(), after, limit], row_to_message)?
                .collect()
        })
        .map_err(|e| db_error(&ctx.request_id, &e))
    }
}
