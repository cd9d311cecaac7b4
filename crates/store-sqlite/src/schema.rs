//! The SQLite schema: one table of resource versions and one index table per search type.
//!
//! Every version keeps its own index rows (keyed by the version's `seq`), so a search can be run
//! as of any earlier snapshot: a version is visible at snapshot `S` when `seq <= S` and it was not
//! yet superseded at `S`. That is what keeps paging links stable while others write, without
//! storing result sets. Composite parameters store each component in its type's table under the
//! code `{code}${i}`, tied together by `grp`.
//!
//! The index tables are `WITHOUT ROWID`, clustered on `(res_seq, param, ord)`: the per-candidate
//! checks of a search find a version's rows of one parameter in the table itself, and the one
//! secondary index per table (from the value to `res_seq`) drives the searches. A row costs two
//! B-tree inserts, where a rowid table with its `(res_seq, ...)` index cost three; most of a
//! write's time is these inserts. `ord` only makes the key unique (a version can hold the same
//! value twice, in different composite groups).

/// Bumped when the schema changes; checked at open. Version 2 stores are migrated
/// ([`migrate_2_to_3`]), then version 3 stores (`crate::write::reindex_phonetic`: version 4 keeps
/// Soundex codes in the rows of `phonetic` parameters, where version 3 kept the names).
pub const SCHEMA_VERSION: i64 = 4;

pub const CREATE: &str = r#"
CREATE TABLE IF NOT EXISTS resource_version (
    seq            INTEGER PRIMARY KEY,
    resource_type  TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    version_id     INTEGER NOT NULL,
    last_updated   INTEGER NOT NULL,
    method         TEXT    NOT NULL,
    body           TEXT,
    superseded_seq INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS resource_version_key ON resource_version (resource_type, id, version_id);
CREATE INDEX IF NOT EXISTS resource_version_current ON resource_version (resource_type, seq) WHERE superseded_seq IS NULL;
CREATE INDEX IF NOT EXISTS resource_version_updated ON resource_version (last_updated);

CREATE TABLE IF NOT EXISTS idx_string (
    res_seq INTEGER NOT NULL, param TEXT NOT NULL, ord INTEGER NOT NULL, resource_type TEXT NOT NULL, grp INTEGER,
    normalized TEXT NOT NULL, exact TEXT NOT NULL,
    PRIMARY KEY (res_seq, param, ord)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_string_value ON idx_string (resource_type, param, normalized, res_seq);

CREATE TABLE IF NOT EXISTS idx_token (
    res_seq INTEGER NOT NULL, param TEXT NOT NULL, ord INTEGER NOT NULL, resource_type TEXT NOT NULL, grp INTEGER,
    system TEXT, code TEXT, text TEXT,
    PRIMARY KEY (res_seq, param, ord)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_token_value ON idx_token (resource_type, param, code, system, res_seq);

CREATE TABLE IF NOT EXISTS idx_date (
    res_seq INTEGER NOT NULL, param TEXT NOT NULL, ord INTEGER NOT NULL, resource_type TEXT NOT NULL, grp INTEGER,
    low INTEGER NOT NULL, high INTEGER NOT NULL,
    PRIMARY KEY (res_seq, param, ord)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_date_value ON idx_date (resource_type, param, low, high, res_seq);

CREATE TABLE IF NOT EXISTS idx_number (
    res_seq INTEGER NOT NULL, param TEXT NOT NULL, ord INTEGER NOT NULL, resource_type TEXT NOT NULL, grp INTEGER,
    value REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
    PRIMARY KEY (res_seq, param, ord)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_number_value ON idx_number (resource_type, param, value, res_seq);

CREATE TABLE IF NOT EXISTS idx_quantity (
    res_seq INTEGER NOT NULL, param TEXT NOT NULL, ord INTEGER NOT NULL, resource_type TEXT NOT NULL, grp INTEGER,
    value REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL, system TEXT, code TEXT, unit TEXT,
    PRIMARY KEY (res_seq, param, ord)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_quantity_value ON idx_quantity (resource_type, param, code, value, res_seq);

CREATE TABLE IF NOT EXISTS idx_reference (
    res_seq INTEGER NOT NULL, param TEXT NOT NULL, ord INTEGER NOT NULL, resource_type TEXT NOT NULL, grp INTEGER,
    target_type TEXT, target_id TEXT, url TEXT, version TEXT, ident_system TEXT, ident_value TEXT,
    PRIMARY KEY (res_seq, param, ord)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_reference_value ON idx_reference (resource_type, param, target_id, target_type, res_seq);
CREATE INDEX IF NOT EXISTS idx_reference_target ON idx_reference (target_type, target_id);

CREATE TABLE IF NOT EXISTS idx_uri (
    res_seq INTEGER NOT NULL, param TEXT NOT NULL, ord INTEGER NOT NULL, resource_type TEXT NOT NULL, grp INTEGER,
    value TEXT NOT NULL,
    PRIMARY KEY (res_seq, param, ord)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_uri_value ON idx_uri (resource_type, param, value, res_seq);

CREATE TABLE IF NOT EXISTS message_log (
    seq INTEGER PRIMARY KEY, sender TEXT NOT NULL, control_id TEXT NOT NULL,
    message_type TEXT NOT NULL, received_at INTEGER NOT NULL, raw BLOB NOT NULL,
    status TEXT NOT NULL, error TEXT, ack_code TEXT,
    UNIQUE (sender, control_id)
);
CREATE INDEX IF NOT EXISTS message_log_status ON message_log (status, seq);

CREATE TABLE IF NOT EXISTS schema_info (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"#;

/// The index tables and their value columns, as both schema versions name them.
const INDEX_TABLES: &[(&str, &str)] = &[
    ("idx_string", "normalized, exact"),
    ("idx_token", "system, code, text"),
    ("idx_date", "low, high"),
    ("idx_number", "value, low, high"),
    ("idx_quantity", "value, low, high, system, code, unit"),
    (
        "idx_reference",
        "target_type, target_id, url, version, ident_system, ident_value",
    ),
    ("idx_uri", "value"),
];

/// The SQL that migrates a version 2 store to version 3, to run in one transaction: the old index
/// tables are renamed (their indexes dropped first, as index names are global), the new ones
/// created by [`CREATE`], the rows copied with `ord` numbered per version and parameter, and the
/// old tables dropped.
pub fn migrate_2_to_3() -> String {
    let mut sql = String::from("DROP INDEX IF EXISTS idx_reference_target;\n");
    for (table, _) in INDEX_TABLES {
        sql.push_str(&format!(
            "DROP INDEX IF EXISTS {table}_value; DROP INDEX IF EXISTS {table}_res;
             ALTER TABLE {table} RENAME TO {table}_v2;\n"
        ));
    }
    sql.push_str(CREATE);
    for (table, columns) in INDEX_TABLES {
        sql.push_str(&format!(
            "INSERT INTO {table} (res_seq, param, ord, resource_type, grp, {columns})
             SELECT res_seq, param, row_number() OVER (PARTITION BY res_seq, param ORDER BY rowid),
                    resource_type, grp, {columns} FROM {table}_v2;
             DROP TABLE {table}_v2;\n"
        ));
    }
    sql
}
