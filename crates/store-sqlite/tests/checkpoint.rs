//! The background checkpoint (`checkpoint.rs`): what the writer commits reaches the database
//! file without the writer checkpointing in its own commits, and the store reads the same
//! before and after.

use std::time::{Duration, Instant};

use concord_fhir::RequestContext;
use concord_store::{Method, NewVersion, ResourceStore};
use concord_store_sqlite::{SqliteOptions, SqliteStore};

fn ctx() -> RequestContext {
    RequestContext::system("test", "checkpoint")
}

fn put(store: &SqliteStore, id: &str) {
    // A body of a few KiB, so a few hundred writes fill far more pages than the empty schema.
    let body = format!(
        r#"{{"resourceType":"Patient","id":"{id}","text":{{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>"}}}}"#,
        "x".repeat(3000)
    );
    store
        .write(&ctx(), &mut |tx| {
            tx.put(NewVersion {
                resource_type: "Patient".into(),
                id: id.into(),
                version_id: 1,
                last_updated: 1_600_000_000_000,
                method: Method::Post,
                body: Some(body.clone()),
                index: Vec::new(),
            })?;
            Ok(())
        })
        .expect("write succeeds");
}

#[test]
fn commits_reach_the_database_file_in_the_background() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("concord.db");
    let store = SqliteStore::open(&SqliteOptions::new(&path)).expect("store opens");
    let size_at_open = std::fs::metadata(&path).expect("database file").len();
    for i in 0..300 {
        put(&store, &format!("p{i}"));
    }
    // About 300 pages were committed to the log: far below the writer's own threshold (40,000
    // frames), so only the background thread copies them into the database file.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut size = size_at_open;
    while Instant::now() < deadline {
        size = std::fs::metadata(&path).expect("database file").len();
        if size > size_at_open + 300 * 3000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        size > size_at_open + 300 * 3000,
        "the database file grew from {size_at_open} to only {size} bytes"
    );
    for i in [0, 150, 299] {
        let read = store
            .read(&ctx(), "Patient", &format!("p{i}"))
            .expect("reads")
            .expect("written");
        assert_eq!(read.version_id, 1);
    }
    assert!(
        store
            .read(&ctx(), "Patient", "p300")
            .expect("reads")
            .is_none()
    );
}
