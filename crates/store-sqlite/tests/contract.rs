//! Runs the store contract (`concord_store::contract`) against the SQLite backend, each check on
//! a fresh database file in a temporary directory.

use concord_store::ResourceStore;
use concord_store_sqlite::{SqliteOptions, SqliteStore};

fn fresh_store() -> Box<dyn ResourceStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        SqliteStore::open(&SqliteOptions::new(dir.path().join("concord.db"))).expect("store opens");
    // The directory must outlive the store; leak it for the test's lifetime.
    std::mem::forget(dir);
    Box::new(store)
}

concord_store::contract_tests!(fresh_store());

#[test]
fn message_log_dedupes_and_tracks_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        SqliteStore::open(&SqliteOptions::new(dir.path().join("concord.db"))).expect("store opens");
    concord_store::contract::message_log_dedupes_and_tracks_status(&store);
}

fn fresh_audit_log() -> concord_store_sqlite::SqliteAuditLog {
    let dir = tempfile::tempdir().expect("temp dir");
    let log =
        concord_store_sqlite::SqliteAuditLog::open(dir.path().join("audit.db")).expect("opens");
    // The directory must outlive the log; leak it for the test's lifetime.
    std::mem::forget(dir);
    log
}

#[test]
fn audit_log_appends_and_scans() {
    concord_store::contract::audit_log_appends_and_scans(&fresh_audit_log());
}

#[test]
fn audit_log_refuses_a_fork() {
    concord_store::contract::audit_log_refuses_a_fork(&fresh_audit_log());
}

#[test]
fn audit_log_search_filters_and_pages() {
    concord_store::contract::audit_log_search_filters_and_pages(&fresh_audit_log());
}

#[test]
fn the_audit_trail_survives_reopening() {
    use concord_store::AuditLog;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    let ctx = concord_fhir::RequestContext::system("contract-test", "req-1");
    {
        let log = concord_store_sqlite::SqliteAuditLog::open(&path).expect("opens");
        concord_store::contract::audit_log_refuses_a_fork(&log);
    }
    let log = concord_store_sqlite::SqliteAuditLog::open(&path).expect("reopens");
    assert_eq!(log.last(&ctx).expect("last").map(|(seq, _)| seq), Some(2));
}
