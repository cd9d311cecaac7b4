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
use rusqlite::{CachedStatement, Connection, params};

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
    let mut rows = IndexRows::new(conn);
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
        for value in &values {
            rows.insert(seq, &mut ord, &resource_type, "phonetic", None, value)?;
        }
    }
    Ok(())
}

fn insert_index(
    tx: &Connection,
    seq: i64,
    resource_type: &str,
    entries: &[IndexEntry],
) -> rusqlite::Result<()> {
    let mut rows = IndexRows::new(tx);
    let mut group = 0i64;
    // Numbers the rows of the version, which makes each table's key unique (see the schema).
    let mut ord = 0i64;
    for entry in entries {
        match &entry.value {
            IndexValue::Composite(components) => {
                group += 1;
                for (i, component) in components.iter().enumerate() {
                    let code = format!("{}${i}", entry.code);
                    rows.insert(seq, &mut ord, resource_type, &code, Some(group), component)?;
                }
            }
            value => rows.insert(seq, &mut ord, resource_type, &entry.code, None, value)?,
        }
    }
    Ok(())
}

/// The statements that insert index rows, each prepared (taken from the connection's cache) at
/// its first use and kept for the rows that follow. Taking a statement from rusqlite's cache
/// hashes its SQL text, and putting it back hashes it again: with one statement per row that was
/// 6% of the HL7 v2 feed writer's instructions (docs/performance.md).
struct IndexRows<'c> {
    conn: &'c Connection,
    statements: [Option<CachedStatement<'c>>; 7],
}

impl<'c> IndexRows<'c> {
    fn new(conn: &'c Connection) -> Self {
        IndexRows {
            conn,
            statements: Default::default(),
        }
    }

    /// Statement `slot` (one per index table), prepared from `sql` the first time.
    fn statement(&mut self, slot: usize, sql: &str) -> rusqlite::Result<&mut CachedStatement<'c>> {
        match &mut self.statements[slot] {
            Some(statement) => Ok(statement),
            empty => Ok(empty.insert(self.conn.prepare_cached(sql)?)),
        }
    }

    /// Inserts one row of `seq`'s index (a composite's components as rows of one group), numbered
    /// by `ord`.
    #[allow(clippy::too_many_arguments, reason = "one column each of an index row")]
    fn insert(
        &mut self,
        seq: i64,
        ord: &mut i64,
        resource_type: &str,
        code: &str,
        grp: Option<i64>,
        value: &IndexValue,
    ) -> rusqlite::Result<()> {
        *ord += 1;
        let row = *ord;
        match value {
            IndexValue::String { normalized, exact } => {
                self.statement(0, "INSERT INTO idx_string (res_seq, ord, resource_type, param, grp, normalized, exact) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![seq, row, resource_type, code, grp, normalized, exact])?;
            }
            IndexValue::Token {
                system,
                code: token_code,
                text,
            } => {
                self.statement(1, "INSERT INTO idx_token (res_seq, ord, resource_type, param, grp, system, code, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![seq, row, resource_type, code, grp, system, token_code, text])?;
            }
            IndexValue::Date { low, high } => {
                self.statement(2, "INSERT INTO idx_date (res_seq, ord, resource_type, param, grp, low, high) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![seq, row, resource_type, code, grp, low, high])?;
            }
            IndexValue::Number { value, low, high } => {
                self.statement(3, "INSERT INTO idx_number (res_seq, ord, resource_type, param, grp, value, low, high) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![seq, row, resource_type, code, grp, value, low, high])?;
            }
            IndexValue::Quantity {
                value,
                low,
                high,
                system,
                code: unit_code,
                unit,
            } => {
                self.statement(4, "INSERT INTO idx_quantity (res_seq, ord, resource_type, param, grp, value, low, high, system, code, unit)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![seq, row, resource_type, code, grp, value, low, high, system, unit_code, unit])?;
            }
            IndexValue::Reference {
                resource_type: target_type,
                id,
                url,
                version,
                identifier,
            } => {
                let (ident_system, ident_value) = match identifier {
                    Some((s, v)) => (s.as_deref(), Some(v.as_str())),
                    None => (None, None),
                };
                self.statement(5, "INSERT INTO idx_reference (res_seq, ord, resource_type, param, grp, target_type, target_id, url, version, ident_system, ident_value)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![seq, row, resource_type, code, grp, target_type, id, url, version, ident_system, ident_value])?;
            }
            IndexValue::Uri(uri) => {
                self.statement(6, "INSERT INTO idx_uri (res_seq, ord, resource_type, param, grp, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                    .execute(params![seq, row, resource_type, code, grp, uri])?;
            }
            IndexValue::Composite(components) => {
                // Nested composites do not occur in R4; store the components flat under this group.
                for (i, component) in components.iter().enumerate() {
                    self.insert(
                        seq,
                        ord,
                        resource_type,
                        &format!("{code}${i}"),
                        grp,
                        component,
                    )?;
                }
            }
        }
        Ok(())
    }
}
