//! The audit trail's patient index (`audit-patients.db`) and its schema: the background thread
//! brings the index up to the last entry without being asked, an index that is not the trail's (a
//! trail restored from an older backup) or that SQLite cannot read is rebuilt, and searches by
//! patient are right at every point in between. A version 1 trail (patients only in
//! `audit_patient`, with their order in `ord`) is brought to version 2 in place, keeps its chain
//! and its entries' patients in order, answers the same searches and goes on taking appends; a
//! trail from a newer build is refused with its version named.

use std::time::{Duration, Instant};

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
    RequestContext::system("index-test", "req-1")
}

fn hash(seq: u64) -> String {
    if seq == 0 {
        concord_store::audit::GENESIS.to_string()
    } else {
        format!("{seq:064x}")
    }
}

/// Entries `from..=to`, each touching `p{seq % 3}`.
fn entries(from: u64, to: u64) -> Vec<AuditEntry> {
    (from..=to)
        .map(|seq| AuditEntry {
            seq,
            recorded_ms: i64::try_from(seq).unwrap_or(0),
            patients: vec![format!("p{}", seq % 3)],
            agent: "dr-a".into(),
            organization: None,
            action: "R".into(),
            interaction: "read".into(),
            outcome: "success".into(),
            prev_hash: hash(seq - 1),
            hash: hash(seq),
            body: format!("{{\"n\":{seq}}}"),
        })
        .collect()
}

fn seqs_of(log: &SqliteAuditLog, patient: &str) -> Vec<u64> {
    log.search(
        &ctx(),
        &AuditQuery {
            patient: Some(patient.into()),
            limit: 1000,
            ..AuditQuery::default()
        },
    )
    .expect("search")
    .iter()
    .map(|e| e.seq)
    .collect()
}

/// The index file's reach and row count.
fn index_state(dir: &std::path::Path) -> (i64, i64) {
    let conn = Connection::open(dir.join("audit-patients.db")).expect("opens");
    conn.query_row(
        "SELECT (SELECT value FROM index_info WHERE key = 'indexed_seq'),
                (SELECT count(*) FROM audit_patient)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("state")
}

#[test]
fn the_background_thread_indexes_every_entry_without_being_asked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = SqliteAuditLog::open(dir.path().join("audit.db")).expect("opens");
    log.append(&ctx(), &entries(1, 30)).expect("appends");
    let deadline = Instant::now() + Duration::from_secs(20);
    while index_state(dir.path()) != (30, 30) {
        assert!(
            Instant::now() < deadline,
            "the index stopped at {:?}",
            index_state(dir.path())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seqs_of(&log, "p1").len(), 10);
    assert_eq!(seqs_of(&log, "p1")[0], 28);
}

#[test]
fn an_index_that_is_not_the_trails_is_rebuilt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    let backup = dir.path().join("backup.db");
    {
        let log = SqliteAuditLog::open_without_background_index(&path).expect("opens");
        log.append(&ctx(), &entries(1, 3)).expect("appends");
        // A backup of the trail with three entries; the index goes on to six.
        Connection::open(&path)
            .expect("opens")
            .execute("VACUUM INTO ?1", [backup.to_string_lossy().as_ref()])
            .expect("backs up");
        log.append(&ctx(), &entries(4, 6)).expect("appends");
        assert_eq!(log.index_patients(&ctx(), 100).expect("indexes"), 6);
    }
    // The trail is restored from the backup and goes on differently: entry 6 now touches p2.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::rename(&backup, &path).expect("restores");
    let log = SqliteAuditLog::open_without_background_index(&path).expect("opens");
    let mut different = entries(4, 6);
    different[2].patients = vec!["p2".into()];
    log.append(&ctx(), &different).expect("appends");
    assert_eq!(index_state(dir.path()), (0, 0), "the old index was emptied");
    assert_eq!(seqs_of(&log, "p0"), [3], "entry 6 no longer touches p0");
    assert_eq!(seqs_of(&log, "p2"), [6, 5, 2]);
    assert_eq!(log.index_patients(&ctx(), 100).expect("indexes"), 6);
    assert_eq!(seqs_of(&log, "p0"), [3]);
    assert_eq!(seqs_of(&log, "p2"), [6, 5, 2]);
}

#[test]
fn an_index_sqlite_cannot_read_is_rebuilt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    {
        let log = SqliteAuditLog::open_without_background_index(&path).expect("opens");
        log.append(&ctx(), &entries(1, 4)).expect("appends");
        log.index_patients(&ctx(), 100).expect("indexes");
    }
    let index = dir.path().join("audit-patients.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", index.display()));
    }
    std::fs::write(&index, b"this is not a database, it is a sentence").expect("damages");
    let log = SqliteAuditLog::open_without_background_index(&path).expect("opens");
    assert_eq!(index_state(dir.path()), (0, 0));
    assert_eq!(seqs_of(&log, "p1"), [4, 1]);
    assert_eq!(log.index_patients(&ctx(), 100).expect("indexes"), 4);
    assert_eq!(seqs_of(&log, "p1"), [4, 1]);
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
