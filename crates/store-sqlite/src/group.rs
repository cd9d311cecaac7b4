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
//!
//! A savepoint copies every page its unit changes that the batch changed before (SQLite's
//! sub-journal): with a few units a batch, that was a sixth of the writer's time under the HL7
//! v2 feed (docs/performance.md). So units that can run again from the start
//! (`Kind::Repeatable`) go without one whenever every unit before them in the batch can run again
//! too. If such a unit fails, the whole batch is rolled back, the units before it return
//! [`UnitError::Undone`] and their callers run them again, as units that then keep their
//! savepoint (`Kind::Isolated`), so they are never undone twice. A unit that cannot run again
//! (`Kind::Isolated`) makes every unit after it in its batch take a savepoint.

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
    /// The unit's own work failed; it was rolled back to its savepoint (or with its batch).
    Work(E),
    /// SQLite failed around the unit (savepoint, commit): nothing of its batch was stored.
    Db(rusqlite::Error),
    /// A [`Kind::Repeatable`] unit's work was rolled back with its batch because a later unit
    /// failed: nothing of it is stored, and it may run again.
    Undone,
}

/// Whether a unit can be run again after its batch was rolled back under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// It runs in a savepoint unless it is first, and nothing after it can undo it.
    Isolated,
    /// Its caller runs it again on [`UnitError::Undone`].
    Repeatable,
}

struct Conn {
    conn: Connection,
    /// The batch whose transaction is open, if one is.
    open: Option<u64>,
    /// Units in the open batch.
    units: usize,
    /// Some unit of the open batch is [`Kind::Isolated`]: every unit after it takes a savepoint.
    isolated: bool,
    /// The outcome hooks of the open batch's units that succeeded, in the order registered.
    hooks: Vec<OutcomeHook>,
    /// The number the next batch gets.
    next: u64,
}

/// Which batches are finished and which of them failed.
struct Outcomes {
    /// Every batch up to this number has committed or failed.
    done: u64,
    /// Batches that failed, with the error to report and whether their units were undone by
    /// another's failure (kept only for recent batches).
    failed: Vec<(u64, Failure)>,
}

/// Why a batch failed.
#[derive(Clone)]
struct Failure {
    reason: String,
    /// A unit without a savepoint failed; the others were all [`Kind::Repeatable`].
    undone: bool,
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
                isolated: false,
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
        kind: Kind,
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
                c.isolated = false;
                batch
            }
        };
        c.units += 1;
        // The first unit of a batch needs no savepoint (which copies every page it changes): if
        // it fails, the whole transaction, which holds nothing else, is rolled back. Nor does a
        // unit after only repeatable ones: if it fails, they are undone and run again.
        let savepoint = c.isolated;
        c.isolated |= kind == Kind::Isolated;
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
            Err(UnitError::Db(e)) if panic.is_none() => Some(Failure {
                reason: e.to_string(),
                undone: false,
            }),
            // SQLite ended the transaction itself (an I/O error, a full disk).
            _ if c.conn.is_autocommit() => Some(Failure {
                reason: "SQLite rolled the transaction back".into(),
                undone: false,
            }),
            // A unit without a savepoint failed: roll the transaction back, and with it the
            // units before this one, which are all repeatable.
            Err(_) if !savepoint => Some(Failure {
                reason: "a unit without a savepoint failed".into(),
                undone: true,
            }),
            _ => None,
        };
        let outcome = if let Some(failure) = lost {
            let reason = failure.reason.clone();
            self.finish_batch(c, batch, Some(failure));
            Some(Err(abort(&reason)))
        } else if self.queued.load(Ordering::SeqCst) == 0 || c.units >= MAX_UNITS {
            let committed = exec(&c.conn, "COMMIT");
            let failure = committed.as_ref().err().map(|e| Failure {
                reason: e.to_string(),
                undone: false,
            });
            self.finish_batch(c, batch, failure);
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
            Some(committed) => committed.map_err(UnitError::Db),
            None if result.is_err() => return result,
            None => self.wait_for(batch),
        };
        match (result, committed) {
            (Err(UnitError::Work(e)), _) => Err(UnitError::Work(e)),
            (_, Err(e)) => Err(e),
            (result, Ok(())) => result,
        }
    }

    /// Waits until `batch` has committed or failed.
    fn wait_for<E>(&self, batch: u64) -> Result<(), UnitError<E>> {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        while outcomes.done < batch {
            outcomes = self
                .committed
                .wait(outcomes)
                .unwrap_or_else(PoisonError::into_inner);
        }
        match outcomes.failed.iter().find(|(b, _)| *b == batch) {
            Some((_, failure)) if failure.undone => Err(UnitError::Undone),
            Some((_, failure)) => Err(UnitError::Db(abort(&failure.reason))),
            None => Ok(()),
        }
    }

    /// Marks `batch` finished (committed, or failed) and wakes its waiters.
    fn finish_batch(&self, c: &mut Conn, batch: u64, failure: Option<Failure>) {
        if failure.is_some() && !c.conn.is_autocommit() {
            let _ = exec(&c.conn, "ROLLBACK");
        }
        c.open = None;
        c.units = 0;
        c.isolated = false;
        run_hooks(std::mem::take(&mut c.hooks), failure.is_none());
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        outcomes.done = batch;
        if let Some(failure) = failure {
            outcomes.failed.push((batch, failure));
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
