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
