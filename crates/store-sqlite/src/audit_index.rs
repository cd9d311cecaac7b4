//! The audit trail's patient index: "whose record did each entry touch", in a database file of
//! its own beside the trail (`audit.db` → `audit-patients.db`), filled behind the appends.
//!
//! Owns that file's schema, bringing it up to the trail's last entry in sorted batches, the
//! background thread that does so, and checking at open that the index belongs to the trail
//! beside it. Does not: append entries, or answer searches (`crate::audit` reads the index
//! through an `ATTACH`, together with the entries it has not reached yet).
//!
//! Why a file of its own, filled later. A row of the index goes wherever its patient's range
//! is, so indexing in each append wrote one more page per entry, at random, inside the commit
//! that the request waits for; it was the largest part of an audited read's cost
//! (docs/performance.md). In its own file the index has its own write lock, so a batch of
//! thousands of entries never holds an append up, and a person read many times in a batch costs
//! one page. Its commits do not wait for the disk (`synchronous = NORMAL`): everything in it can
//! be rebuilt from the entries, which are on disk before any request is answered. A lost or
//! unreadable file is rebuilt from the start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

/// Entries indexed in one transaction. Large, so that many reads of one person share a page.
pub(crate) const BATCH: usize = 8192;
/// How long the thread waits for a whole batch before indexing whatever has arrived, so an idle
/// trail is fully indexed soon after its last append.
const IDLE: Duration = Duration::from_millis(500);

const CREATE: &str = r"
CREATE TABLE IF NOT EXISTS index_info (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS audit_patient (
    patient TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (patient, seq)
) WITHOUT ROWID;
INSERT OR IGNORE INTO index_info (key, value) VALUES ('indexed_seq', 0), ('indexed_hash', '');
";

/// The index file for the trail at `trail`: `audit.db` → `audit-patients.db`.
pub(crate) fn index_path(trail: &Path) -> PathBuf {
    let stem = trail
        .file_stem()
        .map_or_else(|| "audit".into(), |s| s.to_string_lossy().into_owned());
    trail.with_file_name(format!("{stem}-patients.db"))
}

/// Opens the index file for writing, creating it if needed. A file that cannot be read as an
/// index is removed and created again: the index holds nothing that cannot be rebuilt.
pub(crate) fn open_index(path: &Path) -> rusqlite::Result<Connection> {
    match try_open_index(path) {
        Ok(conn) => Ok(conn),
        Err(e) => {
            tracing::warn!(error = %e, "the audit patient index could not be read; it is rebuilt from the trail");
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.as_os_str().to_owned();
                file.push(suffix);
                // A file that is not there needs no removing.
                let _ = std::fs::remove_file(PathBuf::from(file));
            }
            try_open_index(path)
        }
    }
}

/// Opens the file and reads how far it reaches, which fails on a file that is not an index.
/// There is deliberately no integrity check (`PRAGMA quick_check` reads the whole file, seconds
/// at every start for a large index); the WAL keeps a power loss from damaging it.
fn try_open_index(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 10000;",
    )?;
    conn.execute_batch(CREATE)?;
    reach(&conn)?;
    Ok(conn)
}

/// How far the index reaches: every entry up to this seq is in it.
pub(crate) fn reach(index: &Connection) -> rusqlite::Result<(i64, String)> {
    index
        .prepare_cached(
            "SELECT (SELECT value FROM index_info WHERE key = 'indexed_seq'),
                    (SELECT value FROM index_info WHERE key = 'indexed_hash')",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
}

/// Empties the index unless the entry it last reached is in the trail with the hash it had (a
/// trail restored from an older backup, or replaced, would otherwise be searched through
/// another trail's index).
pub(crate) fn check_belongs(index: &mut Connection, trail: &Connection) -> rusqlite::Result<()> {
    let (seq, hash) = reach(index)?;
    if seq == 0 {
        return Ok(());
    }
    let found: Option<String> = trail
        .query_row("SELECT hash FROM audit_entry WHERE seq = ?1", [seq], |r| {
            r.get(0)
        })
        .optional()?;
    if found.as_deref() != Some(hash.as_str()) {
        tracing::warn!("the audit patient index is not this trail's; it is rebuilt from the trail");
        let tx = index.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "DELETE FROM audit_patient;
             UPDATE index_info SET value = 0 WHERE key = 'indexed_seq';
             UPDATE index_info SET value = '' WHERE key = 'indexed_hash';",
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// Adds up to `limit` entries after the index's reach to it, in one transaction, and returns
/// the new reach. The rows go in sorted, so each page of the index is written once.
/// `INSERT OR IGNORE` keeps this harmless if another process indexed the same entries.
pub(crate) fn index_next(
    index: &mut Connection,
    trail: &Connection,
    limit: usize,
) -> rusqlite::Result<i64> {
    let tx = index.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (from, _) = reach(&tx)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows: Vec<(String, i64)> = Vec::new();
    let mut last: Option<(i64, String)> = None;
    {
        let mut stmt = trail.prepare_cached(
            "SELECT seq, hash, patients FROM audit_entry WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let mut found = stmt.query(params![from, limit])?;
        while let Some(row) = found.next()? {
            let seq: i64 = row.get(0)?;
            let patients: String = row.get(2)?;
            let patients: Vec<String> = serde_json::from_str(&patients).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?;
            rows.extend(patients.into_iter().map(|patient| (patient, seq)));
            last = Some((seq, row.get(1)?));
        }
    }
    let Some((seq, hash)) = last else {
        return Ok(from);
    };
    rows.sort_unstable();
    rows.dedup();
    {
        let mut insert = tx
            .prepare_cached("INSERT OR IGNORE INTO audit_patient (patient, seq) VALUES (?1, ?2)")?;
        for (patient, seq) in &rows {
            insert.execute(params![patient, seq])?;
        }
    }
    tx.execute(
        "UPDATE index_info SET value = ?1 WHERE key = 'indexed_seq'",
        [seq],
    )?;
    tx.execute(
        "UPDATE index_info SET value = ?1 WHERE key = 'indexed_hash'",
        [hash],
    )?;
    tx.commit()?;
    Ok(seq)
}

/// The two connections indexing needs: the index to write, the trail to read.
pub(crate) struct Indexer {
    pub index: Connection,
    pub trail: Connection,
}

impl Indexer {
    /// The indexer over an index opened with [`open_index`] and a read-only connection of its
    /// own to the trail.
    pub(crate) fn new(trail_path: &Path, index: Connection) -> rusqlite::Result<Indexer> {
        let trail = Connection::open_with_flags(
            trail_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        trail.execute_batch("PRAGMA busy_timeout = 10000;")?;
        Ok(Indexer { index, trail })
    }

    /// Indexes batches until the index reaches `last_seq` (or the trail's end); returns the reach.
    pub(crate) fn catch_up(&mut self, last_seq: i64) -> rusqlite::Result<i64> {
        let mut reached = reach(&self.index)?.0;
        while reached < last_seq {
            let next = index_next(&mut self.index, &self.trail, BATCH)?;
            if next == reached {
                break;
            }
            reached = next;
        }
        Ok(reached)
    }
}

/// How far the trail reaches, as the appends tell the index thread. An append stores its last
/// entry's seq and wakes the thread only when a whole batch waits: waking it at every append
/// (a futex call, and a thread that ran only to go back to sleep) cost about 4% of the server's
/// CPU during reads. Anything less is picked up at the thread's next pause.
pub(crate) struct Progress {
    last_seq: Arc<AtomicI64>,
    woken_at: AtomicI64,
    wake: Sender<()>,
}

impl Progress {
    /// Tells of an append whose last entry is `seq`.
    pub(crate) fn appended(&self, seq: i64) {
        self.last_seq.fetch_max(seq, Ordering::SeqCst);
        let batch = i64::try_from(BATCH).unwrap_or(i64::MAX);
        if seq - self.woken_at.load(Ordering::SeqCst) >= batch {
            self.woken_at.store(seq, Ordering::SeqCst);
            // The thread is gone only if it panicked; the entries stay searchable unindexed.
            let _ = self.wake.send(());
        }
    }
}

/// Starts the index thread; `last_seq` is the trail's last entry now, so entries a crash left
/// unindexed are indexed in its first round. The thread ends, after a last catch-up, when the
/// returned [`Progress`] is dropped (with the trail).
pub(crate) fn spawn(indexer: Arc<Mutex<Indexer>>, last_seq: i64) -> std::io::Result<Progress> {
    let shared = Arc::new(AtomicI64::new(last_seq));
    let (wake, woken) = channel();
    let progress = Progress {
        last_seq: shared.clone(),
        woken_at: AtomicI64::new(last_seq),
        wake,
    };
    std::thread::Builder::new()
        .name("concord-audit-index".into())
        .spawn(move || run(&indexer, &woken, &shared))?;
    Ok(progress)
}

/// The background thread's loop: a whole batch waiting is indexed when the appends say so; less
/// is indexed at the next pause.
fn run(indexer: &Arc<Mutex<Indexer>>, woken: &Receiver<()>, appended: &AtomicI64) {
    let mut reached = 0;
    loop {
        let done = matches!(
            woken.recv_timeout(IDLE),
            Err(RecvTimeoutError::Disconnected)
        );
        let last_seq = appended.load(Ordering::SeqCst);
        if last_seq > reached {
            // A poisoned lock only means a caller of `index_patients` panicked; the connections
            // are intact and SQLite rolled back whatever it was doing.
            let mut indexer = indexer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match indexer.catch_up(last_seq) {
                Ok(seq) => reached = seq.max(reached),
                Err(e) => {
                    // The entries stay searchable through their own `patients`. The next round
                    // tries again, after a pause: a failure that lasts (a full disk) must not be
                    // retried, and logged, at every append.
                    tracing::warn!(error = %e, "the audit patient index was not brought up to date");
                    drop(indexer);
                    std::thread::sleep(IDLE);
                }
            }
        }
        if done {
            break;
        }
    }
}
