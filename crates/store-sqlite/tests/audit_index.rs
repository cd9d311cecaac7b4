//! The audit trail's patient index (`audit-patients.db`): the background thread brings it up to
//! the last entry without being asked, an index that is not the trail's (a trail restored from an
//! older backup) or that SQLite cannot read is rebuilt, and searches by patient are right at every
//! point in between.

use std::time::{Duration, Instant};

use concord_fhir::RequestContext;
use concord_store::{AuditEntry, AuditLog, AuditQuery};
use concord_store_sqlite::SqliteAuditLog;
use rusqlite::Connection;

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
