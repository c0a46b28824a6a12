//! The embedded SQLite backend.
//!
//! One writer thread owns the only write connection and commits every
//! write that has queued up in one transaction (group commit). A syncer
//! thread fsyncs the WAL behind it: the writer goes on with the next batch
//! while the last one is made durable (writes that arrive meanwhile join
//! that next batch), and a caller hears back only once its write is. Each
//! write runs inside its own savepoint, so one failing write rolls back
//! alone.
//! Reads go to eight reader threads, each with its own connection; WAL
//! lets them run while the writer commits. Because `seq` is assigned by
//! the single writer in commit order, a reader always sees a gap-free
//! prefix of the log — the property the polling cursor relies on. Every
//! read of the log (polling, by id, by message, the webhooks' live
//! streams) stops at the durable head, so nothing handed out can be lost
//! to a power cut after the fact.
//!
//! The writer's time is what every producer and the dispatcher share, so
//! work that needs no transaction happens before or after it (encoding
//! event data, parsing leased events), a batch that holds only leases
//! commits without an fsync (see `writer_loop`), and a checkpointer thread
//! copies the WAL into the database beside the writer rather than on it.
//!
//! The engine (`writer`, `syncer`, `checkpointer`, `readers`,
//! `connection`) knows nothing of what it stores; the traits' methods
//! (`store_api`, `messages`) are each one write or read on it, with their
//! SQL in the module of their area.

mod accounts;
mod checkpointer;
mod connection;
#[cfg(test)]
mod contract_tests;
mod error;
mod events;
pub mod files;
mod idempotency;
#[cfg(test)]
mod idempotency_tests;
mod jobs;
mod messages;
#[cfg(test)]
mod observer_tests;
mod outbound_queue;
mod readers;
mod schema;
mod store_api;
#[cfg(test)]
mod stream_tests;
mod syncer;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tracking_tests;
#[cfg(test)]
mod wal_tests;
mod webhooks;
mod writer;
#[cfg(test)]
mod writer_tests;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tidings_types::Timestamp;
use tokio::sync::{mpsc, Notify};

use crate::{EventObserver, Result};
use checkpointer::{checkpoint_loop, Restart};
use connection::{migrate, open_conn};
use readers::{reader_loop, ReadJob, READERS};
use syncer::{sync_loop, AfterCommit, Committed, Syncer, Syncing};
use writer::{log_head, writer_loop, Write};

/// How durable a commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit fsync'd before its callers hear back: it survives
    /// power loss.
    Full,
    /// fsync at checkpoints only (`synchronous=NORMAL`): survives a process
    /// crash, may lose the last commits on power loss.
    Normal,
}

/// Options for [`SqliteStore::open`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    pub durability: Durability,
    /// Most writes folded into one transaction.
    pub max_batch: usize,
}

impl SqliteOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::Full,
            max_batch: 2048,
        }
    }
}

pub struct SqliteStore {
    writer: mpsc::Sender<Write>,
    /// Dropped with the store, which ends the checkpointer thread.
    _checkpointer: std::sync::mpsc::Sender<()>,
    /// Reads for the reader threads; dropped with the store, which ends
    /// them.
    readers: mpsc::UnboundedSender<ReadJob>,
    path: PathBuf,
    notify: Arc<Notify>,
    outbound_notify: Arc<Notify>,
    /// Bumped after each committed write that changes webhooks or makes
    /// jobs due, other than leasing (see [`Store::changes`]).
    changes: AtomicU64,
    /// The log's durable head: the last `seq` whose commit is fsync'd
    /// (with [`Durability::Normal`], committed). Reads of the log stop
    /// there.
    durable: Arc<AtomicI64>,
    /// Told of every committed event (see [`Store::observe_events`]).
    observer: std::sync::OnceLock<Arc<dyn EventObserver>>,
}

impl SqliteStore {
    /// Open (creating if needed) the database at `opts.path` and start the
    /// writer thread.
    pub fn open(opts: SqliteOptions) -> Result<Self> {
        files::prepare(&opts.path)?;
        let mut conn = open_conn(&opts.path)?;
        migrate(&mut conn)?;
        let durable = Arc::new(AtomicI64::new(log_head(&conn)?));
        let (tx, rx) = mpsc::channel::<Write>(16 * 1024);
        let max_batch = opts.max_batch.max(1);
        // Full durability: the syncer fsyncs the WAL behind the writer. It
        // ends once the writer, its only sender, has.
        let syncer = match opts.durability {
            Durability::Full => {
                let (to, committed) = std::sync::mpsc::channel::<Committed>();
                let wal = PathBuf::from(format!("{}-wal", opts.path.display()));
                let durable = durable.clone();
                let pending = Arc::new(Syncing::default());
                let on_sync = pending.clone();
                std::thread::Builder::new()
                    .name("sqlite-sync".into())
                    .spawn(move || sync_loop(committed, &wal, &durable, &on_sync))?;
                Some(Syncer { to, pending })
            }
            Durability::Normal => None,
        };
        // The writer ends, after committing what is queued, once the store
        // (the only sender) is dropped.
        let restart = Arc::new(Restart::default());
        let writer_restart = restart.clone();
        let writer_durable = durable.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                if let Some(s) = &syncer {
                    let _ = s.pending.writer.set(std::thread::current());
                }
                let after = AfterCommit {
                    syncer,
                    durable: writer_durable,
                };
                writer_loop(conn, rx, max_batch, &after, &writer_restart)
            })?;
        let checkpointer = open_conn(&opts.path)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let db_file = std::fs::File::open(&opts.path)?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, stopped, &restart, db_file))?;
        let (readers, jobs) = mpsc::unbounded_channel::<ReadJob>();
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..READERS {
            let (jobs, path) = (jobs.clone(), opts.path.clone());
            std::thread::Builder::new()
                .name("sqlite-read".into())
                .spawn(move || reader_loop(&path, jobs))?;
        }
        Ok(Self {
            _checkpointer: stop,
            writer: tx,
            readers,
            path: opts.path,
            notify: Arc::new(Notify::new()),
            outbound_notify: Arc::new(Notify::new()),
            changes: AtomicU64::new(0),
            durable,
            observer: std::sync::OnceLock::new(),
        })
    }

    /// The log's durable head (see [`SqliteStore::durable`]).
    fn durable_head(&self) -> i64 {
        self.durable.load(Ordering::Acquire)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Map a TEXT column to a parsed value, reporting corruption as a
/// conversion failure.
pub(crate) fn parse_col<T>(s: String) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.parse::<T>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn ms(t: Timestamp) -> i64 {
    tidings_types::time::to_millis(t)
}

pub(crate) fn ts(v: i64) -> Timestamp {
    tidings_types::time::from_millis(v)
}

pub(crate) fn opt_ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(ts)
}
