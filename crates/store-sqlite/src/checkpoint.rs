//! Checkpoints off the writer's path: a thread of its own copies what the writer committed to
//! the write-ahead log back into the database file.
//!
//! Owns the checkpoint connection and its thread. SQLite's own automatic checkpoint runs inside
//! the commit that crosses the threshold, on the one writer connection, so every unit of work
//! queued behind that commit waits while thousands of pages are copied and the database file is
//! synced (about 9% of the server's CPU during an import over HTTP, all of it on the serial
//! path). Here a `PASSIVE` checkpoint, which never waits for the writer or for readers, copies
//! the pages while the writer goes on. The log starts again from its beginning when a writer
//! finds every frame copied. Under writes without pause that moment may not come, so the
//! writer's own automatic checkpoint stays on, at a higher threshold: it copies the few frames
//! left, and the next writer starts the log again. (A `RESTART` checkpoint from here, which
//! holds writers off until the log is copied and the database file synced, cost MLLP ingest a
//! fifth of its throughput.)
//!
//! Does not: decide durability (commits are durable when they return, whatever this thread
//! does), or run while nothing is written: it wakes only when told that a batch committed.

use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use rusqlite::Connection;

/// At least this long between two checkpoints, so that pages a burst of commits rewrites are
/// copied once per pause rather than once per commit.
const PAUSE: Duration = Duration::from_millis(250);

/// Starts the checkpoint thread for the database at `path`; returns the sender the writer tells
/// of each commit. The thread ends when the sender is dropped (with the store).
pub(crate) fn spawn(path: &Path, synchronous: &str) -> rusqlite::Result<Sender<()>> {
    let conn = Connection::open(path)?;
    conn.execute_batch(&format!(
        "PRAGMA busy_timeout = 10000;
         PRAGMA synchronous = {synchronous};"
    ))?;
    let (committed, wake) = channel();
    std::thread::Builder::new()
        .name("concord-checkpoint".into())
        .spawn(move || run(&conn, &wake))
        .map_err(|e| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("cannot start the checkpoint thread: {e}")),
            )
        })?;
    Ok(committed)
}

fn run(conn: &Connection, wake: &Receiver<()>) {
    while wake.recv().is_ok() {
        // Every commit told of so far is covered by the checkpoint that follows.
        while wake.try_recv().is_ok() {}
        if let Err(e) = checkpoint(conn) {
            // The writer's own automatic checkpoint, set far higher, still bounds the log.
            tracing::warn!(error = %e, "a background checkpoint failed");
        }
        std::thread::sleep(PAUSE);
    }
}

/// One round: copies what can be copied, without waiting for the writer or for readers.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
