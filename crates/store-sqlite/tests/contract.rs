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

/// A trail whose patient index is brought forward `step` entries after every append, so a search
/// sees some entries through the index and the rest through their own `patients`.
struct IndexedInSteps {
    log: concord_store_sqlite::SqliteAuditLog,
    step: usize,
}

impl concord_store::AuditLog for IndexedInSteps {
    fn append(
        &self,
        ctx: &concord_fhir::RequestContext,
        entries: &[concord_store::AuditEntry],
    ) -> Result<(), concord_fhir::Error> {
        self.log.append(ctx, entries)?;
        self.log.index_patients(ctx, self.step).map(|_| ())
    }
    fn last(
        &self,
        ctx: &concord_fhir::RequestContext,
    ) -> Result<Option<(u64, String)>, concord_fhir::Error> {
        self.log.last(ctx)
    }
    fn search(
        &self,
        ctx: &concord_fhir::RequestContext,
        query: &concord_store::AuditQuery,
    ) -> Result<Vec<concord_store::AuditEntry>, concord_fhir::Error> {
        self.log.search(ctx, query)
    }
    fn scan(
        &self,
        ctx: &concord_fhir::RequestContext,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<concord_store::AuditEntry>, concord_fhir::Error> {
        self.log.scan(ctx, after_seq, limit)
    }
}

/// The same contract against a trail indexed in the background (as served), one never indexed,
/// and ones indexed a few entries at a time, fully after each append or partly.
fn fresh_audit_logs() -> Vec<Box<dyn concord_store::AuditLog>> {
    let path = || {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        // The directory must outlive the log; leak it for the test's lifetime.
        std::mem::forget(dir);
        path
    };
    let stepped = |step| -> Box<dyn concord_store::AuditLog> {
        Box::new(IndexedInSteps {
            log: concord_store_sqlite::SqliteAuditLog::open_without_background_index(path())
                .expect("opens"),
            step,
        })
    };
    vec![
        Box::new(concord_store_sqlite::SqliteAuditLog::open(path()).expect("opens")),
        Box::new(
            concord_store_sqlite::SqliteAuditLog::open_without_background_index(path())
                .expect("opens"),
        ),
        stepped(4),
        stepped(1000),
    ]
}

#[test]
fn audit_log_appends_and_scans() {
    for log in fresh_audit_logs() {
        concord_store::contract::audit_log_appends_and_scans(log.as_ref());
    }
}

#[test]
fn audit_log_refuses_a_fork() {
    for log in fresh_audit_logs() {
        concord_store::contract::audit_log_refuses_a_fork(log.as_ref());
    }
}

#[test]
fn audit_log_search_filters_and_pages() {
    for log in fresh_audit_logs() {
        concord_store::contract::audit_log_search_filters_and_pages(log.as_ref());
    }
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

/// The SQLite store commits repeatable units without savepoints, so a failing unit undoes the
/// others of its batch, which run again: the contract's writers must have seen that happen.
#[test]
fn repeatable_units_that_were_undone_ran_again() {
    let store = fresh_store();
    let reruns = concord_store::contract::repeatable_units_are_stored_once_or_not_at_all(&*store);
    assert!(reruns > 0, "no unit was undone and run again");
}
