//! Group commit: the one writer connection, shared by every unit of work, with one commit (and,
//! under `synchronous = full`, one fsync) for all the units that were waiting at that moment.
//!
//! Owns the writer connection, its open transaction and the numbering of batches. A unit runs
//! inside a savepoint of the batch's transaction, so a unit that fails leaves no trace while the
//! others of its batch stand. After its work a unit commits the batch itself when no other unit is
//! queued for the connection (or the batch is full); otherwise it leaves the transaction open for
//! the next one and waits until that batch has committed. Either way a unit returns only once
//! its writes are durable (or have failed with the batch), so callers see the same promise as
//! with one commit per unit. Does not know what a unit writes.
//!
//! A unit may register outcome hooks ([`concord_store::StoreTx::on_outcome`]): the batch keeps
//! them and runs them under the connection's lock once it has committed (in order) or failed (in
//! reverse order), and a unit that fails alone runs its own at once, so in-memory state beside the
//! store is published or undone before the next unit can see it.
//!
//! A unit must not wait for anything another unit's caller may hold while it waits for the
//! commit; in this crate units only run SQL.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex, PoisonError};

use concord_store::OutcomeHook;
use rusqlite::Connection;

/// Units in one batch at most, so a steady stream of writers still commits now and then.
const MAX_UNITS: usize = 256;

/// How a unit ended, before the batch's commit.
pub(crate) enum UnitError<E> {
    /// The unit's own work failed; it was rolled back to its savepoint.
    Work(E),
    /// SQLite failed around the unit (savepoint, commit): nothing of its batch was stored.
    Db(rusqlite::Error),
}

struct Conn {
    conn: Connection,
    /// The batch whose transaction is open, if one is.
    open: Option<u64>,
    /// Units in the open batch.
    units: usize,
    /// The outcome hooks of the open batch's units that succeeded, in the order registered.
    hooks: Vec<OutcomeHook>,
    /// The number the next batch gets.
    next: u64,
}

/// Which batches are finished and which of them failed.
struct Outcomes {
    /// Every batch up to this number has committed or failed.
    done: u64,
    /// Batches that failed, with the error to report (kept only for recent batches).
    failed: Vec<(u64, String)>,
}

pub(crate) struct GroupWriter {
    conn: Mutex<Conn>,
    /// Told of every commit (the background checkpoint, `crate::checkpoint`).
    on_commit: Option<Sender<()>>,
    /// Threads waiting for the connection to add a unit.
    queued: AtomicUsize,
    outcomes: Mutex<Outcomes>,
    committed: Condvar,
}

impl GroupWriter {
    pub(crate) fn new(conn: Connection, on_commit: Option<Sender<()>>) -> Self {
        GroupWriter {
            on_commit,
            conn: Mutex::new(Conn {
                conn,
                open: None,
                units: 0,
                hooks: Vec::new(),
                next: 1,
            }),
            queued: AtomicUsize::new(0),
            outcomes: Mutex::new(Outcomes {
                done: 0,
                failed: Vec::new(),
            }),
            committed: Condvar::new(),
        }
    }

    /// Runs `work` as one unit of the current batch and returns once the batch has committed
    /// (at once when the work failed: nothing of it is in the batch).
    pub(crate) fn unit<T, E>(
        &self,
        work: impl FnOnce(&Connection, &mut Vec<OutcomeHook>) -> Result<T, E>,
    ) -> Result<T, UnitError<E>> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        self.queued.fetch_sub(1, Ordering::SeqCst);
        let c = &mut *guard;
        let batch = match c.open {
            Some(batch) => batch,
            None => {
                exec(&c.conn, "BEGIN IMMEDIATE").map_err(UnitError::Db)?;
                let batch = c.next;
                c.next += 1;
                c.open = Some(batch);
                c.units = 0;
                batch
            }
        };
        c.units += 1;
        // The first unit of a batch needs no savepoint (which copies every page it changes): if
        // it fails, the whole transaction, which holds nothing else, is rolled back.
        let savepoint = c.units > 1;
        let mut panic = None;
        let mut hooks = Vec::new();
        let opened = if savepoint {
            exec(&c.conn, "SAVEPOINT unit")
        } else {
            Ok(())
        };
        let result = match opened {
            Ok(()) => {
                let ran = catch_unwind(AssertUnwindSafe(|| work(&c.conn, &mut hooks)));
                // A failed or panicked unit leaves nothing behind; the others of the batch stand.
                let closed = if !savepoint {
                    Ok(())
                } else if matches!(ran, Ok(Ok(_))) {
                    exec(&c.conn, "RELEASE unit")
                } else {
                    exec(&c.conn, "ROLLBACK TO unit").and_then(|()| exec(&c.conn, "RELEASE unit"))
                };
                match (ran, closed) {
                    (_, Err(e)) => Err(UnitError::Db(e)),
                    (Ok(Ok(value)), Ok(())) => Ok(value),
                    (Ok(Err(e)), Ok(())) => Err(UnitError::Work(e)),
                    (Err(payload), Ok(())) => {
                        panic = Some(payload);
                        Err(UnitError::Db(abort("a unit of work panicked")))
                    }
                }
            }
            Err(e) => Err(UnitError::Db(e)),
        };
        if result.is_ok() {
            c.hooks.append(&mut hooks);
        } else {
            // The unit was rolled back (or its batch is about to be): undo what it set up.
            run_hooks(hooks, false);
        }
        let lost = match &result {
            // The savepoint could not be handled: the batch cannot be trusted.
            Err(UnitError::Db(e)) if panic.is_none() => Some(e.to_string()),
            // SQLite ended the transaction itself (an I/O error, a full disk).
            _ if c.conn.is_autocommit() => Some("SQLite rolled the transaction back".into()),
            // The batch's only unit failed without a savepoint: roll the transaction back.
            Err(_) if !savepoint => Some("its only unit failed".into()),
            _ => None,
        };
        let outcome = if let Some(reason) = lost {
            self.finish_batch(c, batch, Some(reason.clone()));
            Some(Err(abort(&reason)))
        } else if self.queued.load(Ordering::SeqCst) == 0 || c.units >= MAX_UNITS {
            let committed = exec(&c.conn, "COMMIT");
            self.finish_batch(c, batch, committed.as_ref().err().map(ToString::to_string));
            if let (Ok(()), Some(on_commit)) = (&committed, &self.on_commit) {
                // Gone only with a checkpoint thread that could not go on; the writer's own
                // automatic checkpoint still bounds the log.
                let _ = on_commit.send(());
            }
            Some(committed)
        } else {
            // Someone is queued: they add their unit to this batch and commit it (or pass it on).
            None
        };
        drop(guard);
        if let Some(payload) = panic {
            resume_unwind(payload);
        }
        let committed = match outcome {
            Some(committed) => committed,
            None if result.is_err() => return result,
            None => self.wait_for(batch),
        };
        match (result, committed) {
            (Err(UnitError::Work(e)), _) => Err(UnitError::Work(e)),
            (_, Err(e)) => Err(UnitError::Db(e)),
            (result, Ok(())) => result,
        }
    }

    /// Waits until `batch` has committed or failed.
    fn wait_for(&self, batch: u64) -> rusqlite::Result<()> {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        while outcomes.done < batch {
            outcomes = self
                .committed
                .wait(outcomes)
                .unwrap_or_else(PoisonError::into_inner);
        }
        match outcomes.failed.iter().find(|(b, _)| *b == batch) {
            Some((_, reason)) => Err(abort(reason)),
            None => Ok(()),
        }
    }

    /// Marks `batch` finished (committed, or failed with a reason) and wakes its waiters.
    fn finish_batch(&self, c: &mut Conn, batch: u64, failure: Option<String>) {
        if failure.is_some() && !c.conn.is_autocommit() {
            let _ = exec(&c.conn, "ROLLBACK");
        }
        c.open = None;
        c.units = 0;
        run_hooks(std::mem::take(&mut c.hooks), failure.is_none());
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        outcomes.done = batch;
        if let Some(reason) = failure {
            outcomes.failed.push((batch, reason));
        }
        // Waiters of a batch are woken right after it finishes; old failures need not be kept.
        outcomes.failed.retain(|(b, _)| *b + 1024 > batch);
        drop(outcomes);
        self.committed.notify_all();
    }
}

/// Runs outcome hooks: in order after a commit, in reverse order after a rollback, so undoing
/// restores state step by step back to where it was. A panicking hook is logged and the others
/// still run, because the connection's lock is held and the batch's other units wait for it.
pub(crate) fn run_hooks(mut hooks: Vec<OutcomeHook>, committed: bool) {
    if !committed {
        hooks.reverse();
    }
    for hook in hooks {
        if catch_unwind(AssertUnwindSafe(|| hook(committed))).is_err() {
            tracing::error!(committed, "an outcome hook of a unit of work panicked");
        }
    }
}

/// The error a unit gets when its batch could not be committed.
fn abort(reason: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some(format!("the batch was not committed: {reason}")),
    )
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
