-- The schema of version 2 stores (before the index tables became WITHOUT ROWID), kept to test
-- the migration to version 3.

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
    res_seq INTEGER NOT NULL, resource_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER,
    normalized TEXT NOT NULL, exact TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_string_value ON idx_string (resource_type, param, normalized, res_seq);
CREATE INDEX IF NOT EXISTS idx_string_res ON idx_string (res_seq, param, normalized);

CREATE TABLE IF NOT EXISTS idx_token (
    res_seq INTEGER NOT NULL, resource_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER,
    system TEXT, code TEXT, text TEXT
);
CREATE INDEX IF NOT EXISTS idx_token_value ON idx_token (resource_type, param, code, system, res_seq);
CREATE INDEX IF NOT EXISTS idx_token_res ON idx_token (res_seq, param, code, system);

CREATE TABLE IF NOT EXISTS idx_date (
    res_seq INTEGER NOT NULL, resource_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER,
    low INTEGER NOT NULL, high INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_date_value ON idx_date (resource_type, param, low, high, res_seq);
CREATE INDEX IF NOT EXISTS idx_date_res ON idx_date (res_seq, param, low, high);

CREATE TABLE IF NOT EXISTS idx_number (
    res_seq INTEGER NOT NULL, resource_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER,
    value REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_number_value ON idx_number (resource_type, param, value, res_seq);
CREATE INDEX IF NOT EXISTS idx_number_res ON idx_number (res_seq, param, value);

CREATE TABLE IF NOT EXISTS idx_quantity (
    res_seq INTEGER NOT NULL, resource_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER,
    value REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL, system TEXT, code TEXT, unit TEXT
);
CREATE INDEX IF NOT EXISTS idx_quantity_value ON idx_quantity (resource_type, param, code, value, res_seq);
CREATE INDEX IF NOT EXISTS idx_quantity_res ON idx_quantity (res_seq, param, value, code, system);

CREATE TABLE IF NOT EXISTS idx_reference (
    res_seq INTEGER NOT NULL, resource_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER,
    target_type TEXT, target_id TEXT, url TEXT, version TEXT, ident_system TEXT, ident_value TEXT
);
CREATE INDEX IF NOT EXISTS idx_reference_value ON idx_reference (resource_type, param, target_id, target_type, res_seq);
CREATE INDEX IF NOT EXISTS idx_reference_target ON idx_reference (target_type, target_id);
CREATE INDEX IF NOT EXISTS idx_reference_res ON idx_reference (res_seq, param, target_type, target_id);

CREATE TABLE IF NOT EXISTS idx_uri (
    res_seq INTEGER NOT NULL, resource_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_uri_value ON idx_uri (resource_type, param, value, res_seq);
CREATE INDEX IF NOT EXISTS idx_uri_res ON idx_uri (res_seq, param, value);

CREATE TABLE IF NOT EXISTS message_log (
    seq INTEGER PRIMARY KEY, sender TEXT NOT NULL, control_id TEXT NOT NULL,
    message_type TEXT NOT NULL, received_at INTEGER NOT NULL, raw BLOB NOT NULL,
    status TEXT NOT NULL, error TEXT, ack_code TEXT,
    UNIQUE (sender, control_id)
);
CREATE INDEX IF NOT EXISTS message_log_status ON message_log (status, seq);

CREATE TABLE IF NOT EXISTS schema_info (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
