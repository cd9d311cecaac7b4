//! Opening an audit trail written by an earlier build: a version 1 trail (patients only in
//! `audit_patient`, with their order in `ord`) is brought to version 2 in place, keeps its chain
//! and its entries' patients in order, answers the same searches and goes on taking appends; a
//! trail from a newer build is refused with its version named.

use concord_fhir::RequestContext;
use concord_store::{AuditEntry, AuditLog, AuditQuery};
use concord_store_sqlite::SqliteAuditLog;
use rusqlite::Connection;

/// The schema version 1 wrote, as it wrote it.
const VERSION_1: &str = r"
CREATE TABLE audit_info (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
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
    body         TEXT    NOT NULL
);
CREATE INDEX audit_entry_agent ON audit_entry (agent, seq);
CREATE INDEX audit_entry_organization ON audit_entry (organization, seq);
CREATE INDEX audit_entry_recorded ON audit_entry (recorded_ms);
CREATE TABLE audit_patient (
    patient TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    ord     INTEGER NOT NULL,
    PRIMARY KEY (patient, seq)
) WITHOUT ROWID;
CREATE INDEX audit_patient_entry ON audit_patient (seq, ord);
INSERT INTO audit_info (key, value) VALUES ('schema_version', 1);
";

fn hash(seq: u64) -> String {
    if seq == 0 {
        concord_store::audit::GENESIS.to_string()
    } else {
        format!("{seq:064x}")
    }
}

/// A version 1 trail of three entries: the first touched p1, the second p2 then p1 (in that
/// order), the third nobody.
fn version_1_trail(path: &std::path::Path) {
    let conn = Connection::open(path).expect("opens");
    conn.execute_batch(VERSION_1).expect("version 1 schema");
    for seq in 1..=3_i64 {
        conn.execute(
            "INSERT INTO audit_entry VALUES (?1, ?2, 'dr-a', 'RX1', 'R', 'read', 'success', ?3, ?4, ?5)",
            rusqlite::params![
                seq,
                seq * 1000,
                hash(seq as u64 - 1),
                hash(seq as u64),
                format!("{{\"n\":{seq}}}")
            ],
        )
        .expect("entry");
    }
    conn.execute_batch(
        "INSERT INTO audit_patient (patient, seq, ord) VALUES ('p1', 1, 0), ('p2', 2, 0), ('p1', 2, 1);",
    )
    .expect("patients");
}

fn ctx() -> RequestContext {
    RequestContext::system("migrate-test", "req-1")
}

fn seqs_of(log: &SqliteAuditLog, patient: &str) -> Vec<u64> {
    log.search(
        &ctx(),
        &AuditQuery {
            patient: Some(patient.into()),
            limit: 100,
            ..AuditQuery::default()
        },
    )
    .expect("search")
    .iter()
    .map(|e| e.seq)
    .collect()
}

#[test]
fn a_version_1_trail_is_migrated_and_keeps_its_patients_and_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    version_1_trail(&path);

    let log = SqliteAuditLog::open_without_background_index(&path).expect("migrates");
    let version: i64 = Connection::open(&path)
        .expect("opens")
        .query_row(
            "SELECT value FROM audit_info WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .expect("version");
    assert_eq!(version, 2);

    let entries = log.scan(&ctx(), 0, 10).expect("scan");
    let patients: Vec<Vec<String>> = entries.iter().map(|e| e.patients.clone()).collect();
    assert_eq!(
        patients,
        [
            vec!["p1".to_string()],
            vec!["p2".into(), "p1".into()],
            vec![]
        ],
        "each entry keeps its patients, in their order"
    );
    assert_eq!(
        entries.iter().map(|e| e.hash.clone()).collect::<Vec<_>>(),
        [hash(1), hash(2), hash(3)]
    );
    assert_eq!(seqs_of(&log, "p1"), [2, 1]);
    assert_eq!(seqs_of(&log, "p2"), [2]);

    // The migrated trail goes on: an append continues the chain and is found by patient before
    // and after it reaches the index.
    let next = AuditEntry {
        seq: 4,
        recorded_ms: 4000,
        patients: vec!["p2".into()],
        agent: "dr-b".into(),
        organization: None,
        action: "R".into(),
        interaction: "read".into(),
        outcome: "success".into(),
        prev_hash: hash(3),
        hash: hash(4),
        body: "{\"n\":4}".into(),
    };
    log.append(&ctx(), std::slice::from_ref(&next))
        .expect("appends");
    assert_eq!(seqs_of(&log, "p2"), [4, 2]);
    assert_eq!(log.index_patients(&ctx(), 100).expect("indexes"), 4);
    let indexed: i64 = Connection::open(dir.path().join("audit-patients.db"))
        .expect("opens")
        .query_row(
            "SELECT count(*) FROM audit_patient WHERE patient = 'p2'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(indexed, 2, "the migrated index and the new entry");
    assert_eq!(seqs_of(&log, "p2"), [4, 2]);
}

#[test]
fn an_audit_trail_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    drop(SqliteAuditLog::open(&path).expect("creates"));
    Connection::open(&path)
        .expect("opens")
        .execute(
            "UPDATE audit_info SET value = 99 WHERE key = 'schema_version'",
            [],
        )
        .expect("bumps");
    let error = SqliteAuditLog::open(&path).expect_err("refused");
    assert!(error.to_string().contains("version 99"), "{error}");
}
