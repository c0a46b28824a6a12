//! The syncer thread: fsyncs the WAL behind the writer, so that the writer
//! goes on with its next batch while the last one is made durable, and
//! tells the callers of a batch's durable writes once it is.

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::writer::Finish;

/// Where the writer hands a committed batch's durable writes.
pub(super) struct AfterCommit {
    /// `None` when commits need no fsync ([`Durability::Normal`]): they
    /// are as durable as they get.
    pub(super) syncer: Option<Syncer>,
    pub(super) durable: Arc<AtomicI64>,
}

/// The writer's side of the syncer thread.
pub(super) struct Syncer {
    pub(super) to: std::sync::mpsc::Sender<Committed>,
    pub(super) pending: Arc<Syncing>,
}

/// Commits the syncer has not finished, and the writer to wake when it has.
#[derive(Default)]
pub(super) struct Syncing {
    pub(super) commits: AtomicUsize,
    pub(super) writer: std::sync::OnceLock<std::thread::Thread>,
}

impl Syncing {
    /// An fsync is due or under way.
    pub(super) fn busy(&self) -> bool {
        self.commits.load(Ordering::Acquire) > 0
    }
    /// `n` commits are durable: wake the writer if it waits on them.
    pub(super) fn done(&self, n: usize) {
        self.commits.fetch_sub(n, Ordering::AcqRel);
        if let Some(w) = self.writer.get() {
            w.unpark();
        }
    }
}

/// A committed batch's durable writes, waiting for the fsync that makes
/// them so, and the log's head at that commit.
pub(super) struct Committed {
    pub(super) head: i64,
    pub(super) finish: Vec<Finish>,
}

/// fsync the WAL after the commits handed over, then tell their callers.
/// Commits that arrive during an fsync share the next one. The WAL file is
/// opened for each fsync: SQLite may truncate it, and deletes it when the
/// last connection closes.
pub(super) fn sync_loop(
    committed: std::sync::mpsc::Receiver<Committed>,
    wal: &Path,
    durable: &AtomicI64,
    syncing: &Syncing,
) {
    while let Ok(first) = committed.recv() {
        let mut done = vec![first];
        done.extend(committed.try_iter());
        let synced = match std::fs::File::open(wal) {
            Ok(f) => f.sync_data(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = &synced {
            tracing::error!(error = %e, "cannot fsync the WAL");
        } else if let Some(head) = done.iter().map(|c| c.head).max() {
            durable.fetch_max(head, Ordering::AcqRel);
        }
        let commits = done.len();
        for c in done {
            for f in c.finish {
                f(synced.is_ok());
            }
        }
        syncing.done(commits);
    }
}
