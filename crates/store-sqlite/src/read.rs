//! Reads by key: current version, one version, history, whole-type scans and compartments.
//!
//! Owns: the SQL for reads that are not searches. Does not: filter by access or consent.

use concord_store::{
    CompartmentQuery, HistoryPage, HistoryQuery, Method, SearchPage, StoredVersion,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

pub(crate) const VERSION_COLUMNS: &str =
    "seq, resource_type, id, version_id, last_updated, method, body";

pub(crate) fn row_to_version(row: &Row<'_>) -> rusqlite::Result<StoredVersion> {
    let method: String = row.get(5)?;
    Ok(StoredVersion {
        seq: row.get(0)?,
        resource_type: row.get(1)?,
        id: row.get(2)?,
        version_id: row.get::<_, i64>(3)? as u64,
        last_updated: row.get(4)?,
        method: Method::parse(&method).unwrap_or(Method::Put),
        body: row.get(6)?,
    })
}

pub(crate) fn current(
    conn: &Connection,
    resource_type: &str,
    id: &str,
) -> rusqlite::Result<Option<StoredVersion>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version
         WHERE resource_type = ?1 AND id = ?2 AND superseded_seq IS NULL"
    ))?;
    stmt.query_row(params![resource_type, id], row_to_version)
        .optional()
}

/// [`current`] with the store's last `seq`, in one statement and so one snapshot (a second
/// statement would cost a second read transaction: its locks and a trip to the pool).
pub(crate) fn current_with_last_seq(
    conn: &Connection,
    resource_type: &str,
    id: &str,
) -> rusqlite::Result<Option<(StoredVersion, i64)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS}, (SELECT MAX(seq) FROM resource_version) FROM resource_version
         WHERE resource_type = ?1 AND id = ?2 AND superseded_seq IS NULL"
    ))?;
    stmt.query_row(params![resource_type, id], |row| {
        Ok((row_to_version(row)?, row.get(7)?))
    })
    .optional()
}

pub(crate) fn version(
    conn: &Connection,
    resource_type: &str,
    id: &str,
    version_id: u64,
) -> rusqlite::Result<Option<StoredVersion>> {
    let Ok(version_id) = i64::try_from(version_id) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version
         WHERE resource_type = ?1 AND id = ?2 AND version_id = ?3"
    ))?;
    stmt.query_row(params![resource_type, id, version_id], row_to_version)
        .optional()
}

/// Current versions of one type after `after`, in `seq` order (the partial index
/// `resource_version_current` serves it).
pub(crate) fn scan(
    conn: &Connection,
    resource_type: &str,
    after: i64,
    limit: u32,
) -> rusqlite::Result<Vec<StoredVersion>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version
         WHERE resource_type = ?1 AND superseded_seq IS NULL AND seq > ?2 AND body IS NOT NULL
         ORDER BY seq LIMIT ?3"
    ))?;
    stmt.query_map(params![resource_type, after, limit], row_to_version)?
        .collect()
}

/// Like [`scan`] with deletions: a resource's current version, whatever it is. The partial index
/// on current versions serves both.
pub(crate) fn changes(
    conn: &Connection,
    resource_type: &str,
    after: i64,
    limit: u32,
) -> rusqlite::Result<Vec<StoredVersion>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version
         WHERE resource_type = ?1 AND superseded_seq IS NULL AND seq > ?2
         ORDER BY seq LIMIT ?3"
    ))?;
    stmt.query_map(params![resource_type, after, limit], row_to_version)?
        .collect()
}

pub(crate) fn max_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM resource_version")?
        .query_row([], |r| r.get(0))
}

pub(crate) fn history(conn: &Connection, query: &HistoryQuery) -> rusqlite::Result<HistoryPage> {
    let snapshot = match query.snapshot {
        Some(s) => s,
        None => max_seq(conn)?,
    };
    let mut conditions = vec!["seq <= ?1".to_string()];
    let mut values: Vec<rusqlite::types::Value> = vec![snapshot.into()];
    if let Some(t) = &query.resource_type {
        values.push(t.clone().into());
        conditions.push(format!("resource_type = ?{}", values.len()));
    }
    if let Some(id) = &query.id {
        values.push(id.clone().into());
        conditions.push(format!("id = ?{}", values.len()));
    }
    if let Some(since) = query.since {
        values.push(since.into());
        conditions.push(format!("last_updated >= ?{}", values.len()));
    }
    let filter = conditions.join(" AND ");
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM resource_version WHERE {filter}"
        ))?
        .query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?;
    values.push(i64::from(query.count).into());
    values.push(i64::from(query.offset).into());
    let n = values.len();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM resource_version WHERE {filter} ORDER BY seq DESC LIMIT ?{} OFFSET ?{n}",
        n - 1
    ))?;
    let versions = stmt
        .query_map(rusqlite::params_from_iter(values.iter()), row_to_version)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(HistoryPage {
        versions,
        total: total as u64,
        snapshot,
    })
}

pub(crate) fn compartment(
    conn: &Connection,
    query: &CompartmentQuery,
) -> rusqlite::Result<SearchPage> {
    let snapshot = match query.snapshot {
        Some(s) => s,
        None => max_seq(conn)?,
    };
    // A person's compartment is a few rows; the member list is looked through for each (a
    // federated view asks for several records' compartments, and building maps of the list for
    // each was more work than the rows).
    let is_member = |resource_type: &str, param: &str| {
        query
            .members
            .iter()
            .any(|(t, params)| t == resource_type && params.iter().any(|p| p == param))
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT r.resource_type, r.param, {}
         FROM idx_reference r JOIN resource_version s ON s.seq = r.res_seq
         WHERE r.target_type = ?1 AND r.target_id = ?2 AND s.body IS NOT NULL
           AND s.seq <= ?3 AND (s.superseded_seq IS NULL OR s.superseded_seq > ?3)
           AND s.last_updated >= ?4",
        VERSION_COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let mut found: Vec<StoredVersion> = Vec::new();
    let rows = stmt.query_map(
        params![
            query.owner_type,
            query.owner_id,
            snapshot,
            query.since.unwrap_or(i64::MIN)
        ],
        |row| {
            let resource_type: String = row.get(0)?;
            let param: String = row.get(1)?;
            // Shift the version columns by the two leading ones.
            let method: String = row.get(7)?;
            Ok((
                resource_type,
                param,
                StoredVersion {
                    seq: row.get(2)?,
                    resource_type: row.get(3)?,
                    id: row.get(4)?,
                    version_id: row.get::<_, i64>(5)? as u64,
                    last_updated: row.get(6)?,
                    method: Method::parse(&method).unwrap_or(Method::Put),
                    body: row.get(8)?,
                },
            ))
        },
    )?;
    for row in rows {
        let (resource_type, param, version) = row?;
        if is_member(&resource_type, &param) {
            found.push(version);
        }
    }
    // A resource that refers to the owner through two parameters is one match.
    found.sort_by_key(|v| v.seq);
    found.dedup_by_key(|v| v.seq);
    let total = found.len() as u64;
    let matches: Vec<StoredVersion> = found
        .into_iter()
        .skip(query.offset as usize)
        .take(query.count as usize)
        .collect();
    Ok(SearchPage {
        matches,
        included: Vec::new(),
        total: Some(total),
        snapshot,
    })
}
