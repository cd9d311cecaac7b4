//! Writing versions and their index rows inside one SQLite transaction.
//!
//! Owns: the version check (a new version must follow the current one, which is what makes
//! `If-Match` and concurrent updates safe), marking the previous version superseded, and inserting
//! index rows, and the unit of work's view of the message log. Does not: compute index values or
//! `meta`; the service layer hands those in.

use concord_fhir::{Error, ErrorKind};
use concord_search::index::{IndexEntry, IndexValue};
use concord_search::query::SearchQuery;
use concord_store::{
    Appended, MessageStatus, NewMessage, NewVersion, OutcomeHook, SearchPage, StoreTx,
    StoredVersion,
};
use std::borrow::Cow;
use std::sync::OnceLock;

use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, params};

use crate::{db_error, read, search};

/// A unit of work on the writer connection, inside the batch's transaction.
pub(crate) struct SqliteTx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) request_id: &'a str,
    /// The unit's outcome hooks, run by the group writer (`crate::group`).
    pub(crate) hooks: &'a mut Vec<OutcomeHook>,
}

impl StoreTx for SqliteTx<'_> {
    fn read(&mut self, resource_type: &str, id: &str) -> Result<Option<StoredVersion>, Error> {
        read::current(self.conn, resource_type, id).map_err(|e| db_error(self.request_id, &e))
    }

    fn search(&mut self, query: &SearchQuery) -> Result<SearchPage, Error> {
        search::run(self.conn, query).map_err(|e| e.into_error(self.request_id))
    }

    fn append_message(&mut self, message: NewMessage) -> Result<Appended, Error> {
        crate::messages::append(self.conn, &message).map_err(|e| db_error(self.request_id, &e))
    }

    fn set_message_status(
        &mut self,
        seq: i64,
        status: MessageStatus,
        error: Option<&str>,
        ack_code: &str,
    ) -> Result<(), Error> {
        crate::messages::set_status(self.conn, seq, status, error, ack_code)
            .map_err(|e| db_error(self.request_id, &e))
    }

    fn attempt(
        &mut self,
        work: &mut dyn FnMut(&mut dyn StoreTx) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let request_id = self.request_id;
        let db = |e: rusqlite::Error| db_error(request_id, &e);
        self.conn.execute_batch("SAVEPOINT attempt").map_err(db)?;
        let registered = self.hooks.len();
        let mut inner = SqliteTx {
            conn: self.conn,
            request_id: self.request_id,
            hooks: &mut *self.hooks,
        };
        let result = work(&mut inner);
        let result = match result {
            Ok(()) => self.conn.execute_batch("RELEASE attempt").map_err(db),
            Err(error) => self
                .conn
                .execute_batch("ROLLBACK TO attempt; RELEASE attempt")
                .map_err(db)
                .and(Err(error)),
        };
        if result.is_err() {
            // The attempt's writes are gone (or the unit will fail): undo what it set up, newest
            // first.
            crate::group::run_hooks(self.hooks.drain(registered..).collect(), false);
        }
        result
    }

    fn on_outcome(&mut self, hook: OutcomeHook) {
        self.hooks.push(hook);
    }

    fn put(&mut self, version: NewVersion) -> Result<StoredVersion, Error> {
        put(self.conn, &version).map_err(|e| match e {
            PutError::Db(e) => db_error(self.request_id, &e),
            PutError::Version(err) => err,
        })
    }
}

enum PutError {
    Db(rusqlite::Error),
    Version(Error),
}

impl From<rusqlite::Error> for PutError {
    fn from(e: rusqlite::Error) -> Self {
        PutError::Db(e)
    }
}

fn put(tx: &Connection, version: &NewVersion) -> Result<StoredVersion, PutError> {
    let current: Option<(i64, i64)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT seq, version_id FROM resource_version
             WHERE resource_type = ?1 AND id = ?2 AND superseded_seq IS NULL",
        )?;
        let mut rows = stmt.query(params![version.resource_type, version.id])?;
        match rows.next()? {
            Some(row) => Some((row.get(0)?, row.get(1)?)),
            None => None,
        }
    };
    let expected = current.map_or(1, |(_, v)| v as u64 + 1);
    if version.version_id != expected {
        return Err(PutError::Version(Error::new(
            ErrorKind::Conflict,
            format!(
                "{}/{} was changed by someone else (version {} is current); read it again and retry",
                version.resource_type,
                version.id,
                expected - 1
            ),
        )));
    }
    tx.prepare_cached(
        "INSERT INTO resource_version (resource_type, id, version_id, last_updated, method, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        version.resource_type,
        version.id,
        version.version_id as i64,
        version.last_updated,
        version.method.as_str(),
        version.body,
    ])?;
    let seq = tx.last_insert_rowid();
    if let Some((previous, _)) = current {
        tx.prepare_cached("UPDATE resource_version SET superseded_seq = ?1 WHERE seq = ?2")?
            .execute(params![seq, previous])?;
    }
    if version.body.is_some() {
        insert_index(tx, seq, &version.resource_type, &version.index)?;
    }
    Ok(StoredVersion {
        resource_type: version.resource_type.clone(),
        id: version.id.clone(),
        version_id: version.version_id,
        last_updated: version.last_updated,
        seq,
        method: version.method,
        body: version.body.clone(),
    })
}

/// Re-extracts the rows of `phonetic` parameters for every version that has any (a schema 3
/// store's, which hold the names themselves) as the codes `concord-search` indexes now. Runs in
/// the caller's transaction, at open.
pub(crate) fn reindex_phonetic(conn: &Connection) -> rusqlite::Result<()> {
    // Naming the types lets SQLite find the rows through `idx_string_value` (resource_type,
    // param, ...) instead of reading the whole table.
    let types: Vec<String> = concord_search::registry::all()
        .iter()
        .filter(|def| def.code == "phonetic" && def.is_phonetic())
        .map(|def| format!("'{}'", def.base))
        .collect();
    let rows = format!(
        "FROM idx_string WHERE resource_type IN ({}) AND param = 'phonetic'",
        types.join(", ")
    );
    let versions: Vec<(i64, String, Option<String>)> = conn
        .prepare(&format!(
            "SELECT seq, resource_type, body FROM resource_version
             WHERE seq IN (SELECT res_seq {rows})"
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    conn.execute(&format!("DELETE {rows}"), [])?;
    let mut values = Vec::new();
    for (seq, resource_type, body) in versions {
        let Some(def) = concord_search::registry::lookup(&resource_type, "phonetic") else {
            continue;
        };
        let Some(resource) = body.and_then(|b| serde_json::from_str(&b).ok()) else {
            continue;
        };
        values.clear();
        concord_search::extract::param_values(def, &resource, &mut values);
        // `ord` only has to be unique within the version's rows of this parameter.
        let mut ord = 0;
        let mut rows = IndexRows::default();
        for value in &values {
            rows.push(
                seq,
                &mut ord,
                &resource_type,
                Cow::Borrowed("phonetic"),
                None,
                value,
            );
        }
        rows.insert(conn)?;
    }
    Ok(())
}

fn insert_index(
    tx: &Connection,
    seq: i64,
    resource_type: &str,
    entries: &[IndexEntry],
) -> rusqlite::Result<()> {
    let mut rows = IndexRows::default();
    let mut group = 0i64;
    // Numbers the rows of the version, which makes each table's key unique (see the schema).
    let mut ord = 0i64;
    for entry in entries {
        match &entry.value {
            IndexValue::Composite(components) => {
                group += 1;
                for (i, component) in components.iter().enumerate() {
                    let code = Cow::Owned(format!("{}${i}", entry.code));
                    rows.push(seq, &mut ord, resource_type, code, Some(group), component);
                }
            }
            value => rows.push(
                seq,
                &mut ord,
                resource_type,
                Cow::Borrowed(&entry.code),
                None,
                value,
            ),
        }
    }
    rows.insert(tx)
}

/// The index tables, their columns, and the most rows one `INSERT` carries.
const INDEX_TABLES: [(&str, &str); 7] = [
    (
        "idx_string",
        "res_seq, ord, resource_type, param, grp, normalized, exact",
    ),
    (
        "idx_token",
        "res_seq, ord, resource_type, param, grp, system, code, text",
    ),
    (
        "idx_date",
        "res_seq, ord, resource_type, param, grp, low, high",
    ),
    (
        "idx_number",
        "res_seq, ord, resource_type, param, grp, value, low, high",
    ),
    (
        "idx_quantity",
        "res_seq, ord, resource_type, param, grp, value, low, high, system, code, unit",
    ),
    (
        "idx_reference",
        "res_seq, ord, resource_type, param, grp, target_type, target_id, url, version, ident_system, ident_value",
    ),
    ("idx_uri", "res_seq, ord, resource_type, param, grp, value"),
];

/// Rows per `INSERT` at most; a table's rows go in chunks of 16, 8, 4, 2 and 1, so that each
/// table needs five statements in the connection's cache.
const MAX_ROWS_PER_INSERT: usize = 16;

/// The `INSERT` of `rows` rows into index table `slot`, written once.
fn insert_sql(slot: usize, rows: usize) -> &'static str {
    static SQL: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        INDEX_TABLES
            .iter()
            .map(|(table, columns)| {
                let width = columns.split(',').count();
                let row = format!("({})", vec!["?"; width].join(", "));
                (0..=MAX_ROWS_PER_INSERT.ilog2())
                    .map(|power| {
                        let values = vec![row.as_str(); 1 << power].join(", ");
                        format!("INSERT INTO {table} ({columns}) VALUES {values}")
                    })
                    .collect()
            })
            .collect()
    });
    &sql[slot][rows.ilog2() as usize]
}

/// A version's index rows, gathered per table and inserted with one statement for up to
/// [`MAX_ROWS_PER_INSERT`] rows. A statement per row paid SQLite's cost of starting and ending a
/// statement (opening the table's cursors, binding, halting) for each of the 92 rows of an ADT
/// message, and rusqlite's statement cache lookup too (docs/performance.md).
#[derive(Default)]
struct IndexRows<'v> {
    /// Per table (in [`INDEX_TABLES`] order), its rows' values one after another.
    values: [Vec<ToSqlOutput<'v>>; 7],
}

impl<'v> IndexRows<'v> {
    /// Adds one row of `seq`'s index (a composite's components as rows of one group), numbered
    /// by `ord`.
    fn push(
        &mut self,
        seq: i64,
        ord: &mut i64,
        resource_type: &'v str,
        code: Cow<'v, str>,
        grp: Option<i64>,
        value: &'v IndexValue,
    ) {
        *ord += 1;
        let key = |slot: usize, values: &mut [Vec<ToSqlOutput<'v>>; 7]| {
            let row = &mut values[slot];
            row.push(integer(seq));
            row.push(integer(*ord));
            row.push(text(resource_type));
            row.push(match &code {
                Cow::Borrowed(code) => text(code),
                Cow::Owned(code) => ToSqlOutput::Owned(SqlValue::Text(code.clone())),
            });
            row.push(grp.map_or(ToSqlOutput::Owned(SqlValue::Null), integer));
            slot
        };
        let values = &mut self.values;
        match value {
            IndexValue::String { normalized, exact } => {
                let slot = key(0, values);
                values[slot].extend([text(normalized), text(exact)]);
            }
            IndexValue::Token {
                system,
                code: token_code,
                text: token_text,
            } => {
                let slot = key(1, values);
                values[slot].extend([optional(system), optional(token_code), optional(token_text)]);
            }
            IndexValue::Date { low, high } => {
                let slot = key(2, values);
                values[slot].extend([integer(*low), integer(*high)]);
            }
            IndexValue::Number { value, low, high } => {
                let slot = key(3, values);
                values[slot].extend([real(*value), real(*low), real(*high)]);
            }
            IndexValue::Quantity {
                value,
                low,
                high,
                system,
                code: unit_code,
                unit,
            } => {
                let slot = key(4, values);
                values[slot].extend([
                    real(*value),
                    real(*low),
                    real(*high),
                    optional(system),
                    optional(unit_code),
                    optional(unit),
                ]);
            }
            IndexValue::Reference {
                resource_type: target_type,
                id,
                url,
                version,
                identifier,
            } => {
                let (ident_system, ident_value) = match identifier {
                    Some((system, value)) => (optional(system), text(value)),
                    None => (null(), null()),
                };
                let slot = key(5, values);
                values[slot].extend([
                    optional(target_type),
                    optional(id),
                    optional(url),
                    optional(version),
                    ident_system,
                    ident_value,
                ]);
            }
            IndexValue::Uri(uri) => {
                let slot = key(6, values);
                values[slot].push(text(uri));
            }
            IndexValue::Composite(components) => {
                // Nested composites do not occur in R4; store the components flat under this group.
                for (i, component) in components.iter().enumerate() {
                    let code = Cow::Owned(format!("{code}${i}"));
                    self.push(seq, ord, resource_type, code, grp, component);
                }
            }
        }
    }

    /// Inserts every row added, and forgets them.
    fn insert(&mut self, tx: &Connection) -> rusqlite::Result<()> {
        for (slot, values) in self.values.iter_mut().enumerate() {
            let width = INDEX_TABLES[slot].1.split(',').count();
            let mut rows = values.len() / width;
            let mut at = 0;
            while rows > 0 {
                let chunk = 1 << rows.min(MAX_ROWS_PER_INSERT).ilog2();
                let mut statement = tx.prepare_cached(insert_sql(slot, chunk))?;
                for (i, value) in values[at..at + chunk * width].iter().enumerate() {
                    statement.raw_bind_parameter(i + 1, value)?;
                }
                statement.raw_execute()?;
                at += chunk * width;
                rows -= chunk;
            }
            values.clear();
        }
        Ok(())
    }
}

fn integer<'v>(value: i64) -> ToSqlOutput<'v> {
    ToSqlOutput::Owned(SqlValue::Integer(value))
}

fn real<'v>(value: f64) -> ToSqlOutput<'v> {
    ToSqlOutput::Owned(SqlValue::Real(value))
}

fn text(value: &str) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::Text(value.as_bytes()))
}

fn null<'v>() -> ToSqlOutput<'v> {
    ToSqlOutput::Owned(SqlValue::Null)
}

fn optional(value: &Option<String>) -> ToSqlOutput<'_> {
    value.as_deref().map_or_else(null, text)
}
