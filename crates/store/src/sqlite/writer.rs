//! The writer thread: every write of the store runs here, on the one
//! write connection, and whatever has queued up commits in one
//! transaction (group commit). Each write is kept apart from the others
//! in its batch by a savepoint, or runs bare when only SQLite can fail it
//! (see [`Guard`]); a caller hears back once its write is committed, and,
//! for a durable write, once the syncer has made it durable.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, Notify};

use super::checkpointer::{restart_wal, Restart};
use super::syncer::{AfterCommit, Committed};
use super::{events, SqliteStore};
use crate::{Result, StoreError};

pub(super) type Finish = Box<dyn FnOnce(bool) + Send>;
/// Runs in the writer's transaction; says whether the transaction may
/// still commit (an op without a savepoint that failed half-way leaves it
/// unfit), and returns what to do once the commit is known.
pub(super) type WriteOp = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// How a write is kept apart from the others in its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Guard {
    /// In a savepoint of its own: if it fails, only its changes are
    /// undone and the rest of the batch commits. For writes that can
    /// refuse for reasons of their own (a conflict, a missing row).
    Savepoint,
    /// Bare: it fails only when SQLite does, and then the whole batch is
    /// rolled back and every caller in it told so. A savepoint copies each
    /// page a write touches into a sub-journal, which for the hot writes
    /// (recording events and engagements, leasing and completing jobs) was
    /// a good part of their cost.
    None,
}

/// A write for the writer thread, and whether it must be durable when its
/// caller hears back.
pub(super) struct Write {
    pub(super) durable: bool,
    pub(super) op: WriteOp,
}

impl SqliteStore {
    /// Run `f` in the writer's next transaction; resolve after the commit.
    pub(super) async fn write<T, F>(&self, wakes_jobs: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.write_notify(self.jobs_notify(wakes_jobs), f).await
    }

    /// What to wake after a write's commit: the dispatcher, if the write
    /// may have made jobs due.
    pub(super) fn jobs_notify(&self, wakes_jobs: bool) -> Option<Arc<Notify>> {
        wakes_jobs.then(|| self.notify.clone())
    }

    /// Like `write`, waking `notify` after a successful commit.
    pub(super) async fn write_notify<T, F>(&self, notify: Option<Arc<Notify>>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(true, Guard::Savepoint, notify, f).await
    }

    /// Like `write`, for a write that fails only when SQLite does
    /// ([`Guard::None`]).
    pub(super) async fn write_bare<T, F>(&self, wakes_jobs: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(true, Guard::None, self.jobs_notify(wakes_jobs), f)
            .await
    }

    /// Like `write`, for a change that may be lost in a power cut without
    /// harm: its caller hears back once it is committed, before the fsync.
    /// Only leases are written so: a lost lease makes its jobs due again,
    /// and they are delivered again, which at-least-once allows.
    pub(super) async fn write_volatile<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(false, Guard::None, None, f).await
    }

    pub(super) async fn submit<T, F>(
        &self,
        durable: bool,
        guard: Guard,
        notify: Option<Arc<Notify>>,
        f: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let observer = self.observer.get().cloned();
        let op: WriteOp = Box::new(move |conn| {
            let (result, noted) = events::noting(|| match guard {
                Guard::Savepoint => in_savepoint(conn, f),
                Guard::None => f(conn),
            });
            let sound = guard == Guard::Savepoint || result.is_ok();
            let finish: Finish = Box::new(move |committed| {
                let result = match (committed, result) {
                    (true, r) => r,
                    (false, Ok(_)) => Err(StoreError::Internal("commit failed".into())),
                    (false, Err(e)) => Err(e),
                };
                if result.is_ok() {
                    // Committed (and durable, for a durable write): the
                    // one place every event of the log is reported from.
                    if let (Some(o), false) = (&observer, noted.is_empty()) {
                        o.committed(&noted);
                    }
                    if let Some(n) = notify {
                        wake(&n);
                    }
                }
                let _ = tx.send(result);
            });
            (sound, finish)
        });
        self.writer
            .send(Write { durable, op })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// `write` for a change the dispatcher must hear of beyond new events
    /// (see [`Store::changes`]): counted, and the dispatcher woken, after
    /// the commit.
    pub(super) async fn write_change<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let r = self.write(false, f).await?;
        self.changed();
        Ok(r)
    }

    pub(super) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        wake(&self.notify);
    }
}

/// Wake whoever waits on `n` now, and leave a wake-up for one that is
/// between two waits.
pub(super) fn wake(n: &Notify) {
    n.notify_waiters();
    n.notify_one();
}

pub(super) fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.prepare_cached("SAVEPOINT op")?.execute([])?;
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE op")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO op; RELEASE op")?;
            Err(e)
        }
    }
}

pub(super) fn log_head(c: &Connection) -> Result<i64> {
    Ok(c.prepare_cached(&format!("SELECT {}", events::LOG_HEAD))?
        .query_row([], |r| r.get(0))?)
}

/// Run `w` in the writer's open transaction. `sound` turns false, for
/// good, once a write leaves the transaction unfit to commit.
pub(super) fn run_write(
    conn: &Connection,
    w: Write,
    sound: &mut bool,
    finishers: &mut Vec<(bool, Finish)>,
) {
    let (ok, finish) = (w.op)(conn);
    *sound &= ok;
    finishers.push((w.durable, finish));
}

pub(super) fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Write>,
    max_batch: usize,
    after: &AfterCommit,
    restart: &Restart,
) {
    let mut batch: Vec<Write> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        drain(&mut rx, &mut batch, max_batch);
        restart_wal(&conn, restart);
        if let Err(e) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut b| b.execute([]))
        {
            tracing::error!(error = %e, "cannot begin a write transaction");
            batch.clear();
            continue;
        }
        let mut sound = true;
        let mut finishers: Vec<(bool, Finish)> = Vec::with_capacity(batch.len());
        for w in batch.drain(..) {
            run_write(&conn, w, &mut sound, &mut finishers);
        }
        // While the syncer is still on an earlier commit, writes that come
        // in join this transaction: they would wait for the next fsync
        // anyway, and one commit of many writes costs the writer less
        // than many small ones (each writes its own copy of the pages
        // they share, the log's last pages above all).
        if let Some(syncer) = &after.syncer {
            let mut joined = 0;
            while sound && syncer.pending.busy() && joined < max_batch {
                match rx.try_recv() {
                    Ok(w) => {
                        run_write(&conn, w, &mut sound, &mut finishers);
                        joined += 1;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {
                        std::thread::park_timeout(std::time::Duration::from_micros(100))
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            }
        }
        let committed = if !sound {
            tracing::error!(
                writes = finishers.len(),
                "a write failed half-way; rolling back its batch"
            );
            let _ = conn.execute_batch("ROLLBACK");
            false
        } else {
            match conn
                .prepare_cached("COMMIT")
                .and_then(|mut c| c.execute([]))
            {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!(error = %e, "commit failed");
                    let _ = conn.execute_batch("ROLLBACK");
                    false
                }
            }
        };
        let (durable, volatile): (Vec<_>, Vec<_>) = finishers.into_iter().partition(|w| w.0);
        for (_, f) in volatile {
            f(committed);
        }
        let finish: Vec<Finish> = durable.into_iter().map(|(_, f)| f).collect();
        if !committed || finish.is_empty() {
            // Rolled back, or leases only (which record no events): there
            // is nothing to make durable.
            for f in finish {
                f(committed);
            }
            continue;
        }
        let head = match log_head(&conn) {
            Ok(head) => head,
            Err(e) => {
                // Not known to be durable: the callers hear the commit failed.
                tracing::error!(error = %e, "cannot read the log's head");
                for f in finish {
                    f(false);
                }
                continue;
            }
        };
        match &after.syncer {
            Some(syncer) => {
                syncer.pending.commits.fetch_add(1, Ordering::AcqRel);
                // Dropped with its finishers if the syncer is gone: their
                // callers see `Closed`.
                let _ = syncer.to.send(Committed { head, finish });
            }
            None => {
                after.durable.fetch_max(head, Ordering::AcqRel);
                for f in finish {
                    f(true);
                }
            }
        }
    }
}

/// Take what is queued, up to `max` writes in the batch.
pub(super) fn drain(rx: &mut mpsc::Receiver<Write>, batch: &mut Vec<Write>, max: usize) {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(op) => batch.push(op),
            Err(_) => break,
        }
    }
}
