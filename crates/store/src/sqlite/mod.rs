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

mod accounts;
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
mod schema;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tracking_tests;
#[cfg(test)]
mod wal_tests;
mod webhooks;
#[cfg(test)]
mod writer_tests;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tidings_types::{
    AccountId, ApiKeyId, Event, EventId, EventType, NewEvent, Timestamp, Webhook, WebhookId,
};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::model::*;
use crate::{EventObserver, Result, Store, StoreError};

type Finish = Box<dyn FnOnce(bool) + Send>;
/// Runs in the writer's transaction; says whether the transaction may
/// still commit (an op without a savepoint that failed half-way leaves it
/// unfit), and returns what to do once the commit is known.
type WriteOp = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// How a write is kept apart from the others in its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
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
struct Write {
    durable: bool,
    op: WriteOp,
}

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

/// Frames of WAL (~64 MB) past which the writer, between two
/// transactions, finishes the checkpoint and starts the WAL over. That
/// stops every write for a copy and two fsyncs (about 10 ms under load),
/// so it is kept rare: at 4,096 frames it came every 0.4 s at 5,000
/// opens/s, and set the p99 of the responses.
const WAL_RESTART_FRAMES: i64 = 16_384;
/// Reader threads, each with its own connection (opened at its first
/// read). Reads beyond these many wait their turn.
const READERS: usize = 8;
/// How often the checkpointer thread copies the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

fn open_conn(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // Commits write the WAL without an fsync (the syncer thread's job, see
    // `sync_loop`); checkpoints still fsync the WAL before they copy from
    // it and the database before the WAL starts over.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Small: at the end of every write transaction SQLite truncates the
    // connection's page cache, which here walked the whole cache (6% of
    // the writer's time at 16 MB, none at 2 MB). 2 MB holds the upper
    // levels of the B-trees; their leaves come from the OS's page cache.
    conn.pragma_update(None, "cache_size", -2000)?;
    // Every write runs in a savepoint (see `in_savepoint`), and SQLite keeps
    // the pages a savepoint changes in a sub-journal, a temp file by
    // default: one pwrite per page per write. In memory it costs a memcpy.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // No commit checkpoints: that is the checkpointer thread's job, and
    // the writer's between transactions when the WAL must start over. See
    // `checkpoint_loop`.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // After a huge transaction (backfilling a new webhook with a million
    // jobs) the WAL shrinks back to this once checkpointed. Above the
    // restart point, so that a WAL of the usual size is never truncated
    // (an ftruncate of tens of milliseconds on the writer).
    conn.pragma_update(None, "journal_size_limit", 128 * 1024 * 1024)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A read connection. SQLite empties a connection's page cache whenever
/// it starts a read after another connection wrote, which under steady
/// writes is before nearly every read: a big cache there is only more to
/// free and zero again (a few percent of the CPU per tracked open).
fn open_reader(path: &Path) -> Result<Connection> {
    let conn = open_conn(path)?;
    conn.pragma_update(None, "cache_size", -1024)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
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

    /// Run `f` in the writer's next transaction; resolve after the commit.
    async fn write<T, F>(&self, wakes_jobs: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.write_notify(self.jobs_notify(wakes_jobs), f).await
    }

    /// What to wake after a write's commit: the dispatcher, if the write
    /// may have made jobs due.
    fn jobs_notify(&self, wakes_jobs: bool) -> Option<Arc<Notify>> {
        wakes_jobs.then(|| self.notify.clone())
    }

    /// Like `write`, waking `notify` after a successful commit.
    async fn write_notify<T, F>(&self, notify: Option<Arc<Notify>>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(true, Guard::Savepoint, notify, f).await
    }

    /// Like `write`, for a write that fails only when SQLite does
    /// ([`Guard::None`]).
    async fn write_bare<T, F>(&self, wakes_jobs: bool, f: F) -> Result<T>
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
    async fn write_volatile<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.submit(false, Guard::None, None, f).await
    }

    async fn submit<T, F>(
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
    async fn write_change<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let r = self.write(false, f).await?;
        self.changed();
        Ok(r)
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        wake(&self.notify);
    }

    /// Run `f` on one of the reader threads' connections.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.readers
            .send(Box::new(move |conn: Result<&Connection>| {
                let _ = tx.send(conn.and_then(f));
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// A read, given its reader thread's connection (or why it has none).
type ReadJob = Box<dyn FnOnce(Result<&Connection>) + Send>;

/// A reader thread: runs reads on its own connection, opened at the first
/// one, until the store is dropped. A fixed set of threads, rather than
/// tokio's blocking pool, whose threads multiply under bursts of reads.
/// One idle reader at a time waits on the queue (sleeping, not spinning);
/// the others wait for their turn at it.
fn reader_loop(path: &Path, jobs: Arc<Mutex<mpsc::UnboundedReceiver<ReadJob>>>) {
    let mut conn: Option<Connection> = None;
    loop {
        let next = jobs.lock().expect("reader queue lock").blocking_recv();
        let Some(job) = next else {
            return;
        };
        if conn.is_none() {
            match open_reader(path) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    job(Err(e));
                    continue;
                }
            }
        }
        let c = conn.as_ref().expect("opened above");
        // A read that panics loses its answer (its caller sees `Closed`),
        // not the thread.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Ok(c)))).is_err() {
            tracing::error!("a read panicked");
        }
    }
}

/// Wake whoever waits on `n` now, and leave a wake-up for one that is
/// between two waits.
fn wake(n: &Notify) {
    n.notify_waiters();
    n.notify_one();
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
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

/// Copy the WAL into the database every [`CHECKPOINT_EVERY`], on a
/// connection of its own, until the store is dropped.
///
/// Checkpointing on the writer's thread (SQLite's default) stops every
/// write for as long as the copy and the fsync of the database take, and
/// the events being recorded wait behind it. Here it runs beside the
/// writer: a passive checkpoint takes no lock the writer needs.
///
/// A WAL starts over from its beginning only when a checkpoint has copied
/// all of it, which one running beside a busy writer seldom does, so it
/// would grow without end. Once it is past [`WAL_RESTART_FRAMES`] this
/// asks the writer (through `restart`) to finish the job between two of
/// its transactions: by then it has only the last few frames to copy.
/// (Letting every commit try that instead, as SQLite's automatic
/// checkpoint does, put two fsyncs into most commits once the WAL was
/// past the threshold: tens of milliseconds each.)
///
/// SQLite fsyncs the database only after a checkpoint that copied the whole
/// WAL, so the pages copied in between stay dirty in the page cache: over
/// a hundred megabytes under load, until the kernel writes them all back at
/// once and every commit's fsync waits behind that for 200 ms and more.
/// This starts the write-back of the database file (`db`) after each copy
/// instead, a little at a time. Durability does not rest on it.
fn checkpoint_loop(
    conn: Connection,
    stop: std::sync::mpsc::Receiver<()>,
    restart: &Restart,
    db: std::fs::File,
) {
    use std::sync::mpsc::RecvTimeoutError;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        // (frames in the WAL, frames copied into the database)
        let pass = {
            let _turn = restart.checkpointing.lock().expect("checkpoint lock");
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
        };
        match pass {
            Ok((frames, copied)) => {
                if copied > 0 {
                    if let Err(e) = start_writeback(&db) {
                        tracing::warn!(error = %e, "cannot write the database back");
                    }
                }
                if frames > WAL_RESTART_FRAMES {
                    restart.wanted.store(true, Ordering::Release);
                }
            }
            Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
        }
    }
}

/// Start writing `file`'s dirty pages to the disk, without waiting for
/// them or flushing the disk's cache (which a commit's fsync would then
/// wait behind). Elsewhere than Linux, an fdatasync.
fn start_writeback(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; offset 0 and length 0 mean the
        // whole file; the call has no memory effects.
        let r =
            unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    file.sync_data()
}

/// What the checkpointer and the writer share.
#[derive(Default)]
struct Restart {
    /// The WAL is long: the writer should finish the checkpoint.
    wanted: AtomicBool,
    /// Held by whichever thread is checkpointing, so that neither waits on
    /// SQLite's checkpoint lock (its busy handler sleeps for milliseconds).
    checkpointing: Mutex<()>,
}

/// If the checkpointer asked, copy what is left of the WAL so that the
/// next transaction starts it over. It never waits: when the checkpointer
/// is busy, or a reader still uses the WAL, it is tried again later.
fn restart_wal(conn: &Connection, restart: &Restart) {
    if !restart.wanted.load(Ordering::Acquire) {
        return;
    }
    let Ok(_turn) = restart.checkpointing.try_lock() else {
        return;
    };
    restart.wanted.store(false, Ordering::Release);
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "cannot start the WAL over");
    }
}

/// Where the writer hands a committed batch's durable writes.
struct AfterCommit {
    /// `None` when commits need no fsync ([`Durability::Normal`]): they
    /// are as durable as they get.
    syncer: Option<Syncer>,
    durable: Arc<AtomicI64>,
}

/// The writer's side of the syncer thread.
struct Syncer {
    to: std::sync::mpsc::Sender<Committed>,
    pending: Arc<Syncing>,
}

/// Commits the syncer has not finished, and the writer to wake when it has.
#[derive(Default)]
struct Syncing {
    commits: AtomicUsize,
    writer: std::sync::OnceLock<std::thread::Thread>,
}

impl Syncing {
    /// An fsync is due or under way.
    fn busy(&self) -> bool {
        self.commits.load(Ordering::Acquire) > 0
    }
    /// `n` commits are durable: wake the writer if it waits on them.
    fn done(&self, n: usize) {
        self.commits.fetch_sub(n, Ordering::AcqRel);
        if let Some(w) = self.writer.get() {
            w.unpark();
        }
    }
}

/// A committed batch's durable writes, waiting for the fsync that makes
/// them so, and the log's head at that commit.
struct Committed {
    head: i64,
    finish: Vec<Finish>,
}

fn log_head(c: &Connection) -> Result<i64> {
    Ok(c.prepare_cached(&format!("SELECT {}", events::LOG_HEAD))?
        .query_row([], |r| r.get(0))?)
}

/// Run `w` in the writer's open transaction. `sound` turns false, for
/// good, once a write leaves the transaction unfit to commit.
fn run_write(conn: &Connection, w: Write, sound: &mut bool, finishers: &mut Vec<(bool, Finish)>) {
    let (ok, finish) = (w.op)(conn);
    *sound &= ok;
    finishers.push((w.durable, finish));
}

fn writer_loop(
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

/// fsync the WAL after the commits handed over, then tell their callers.
/// Commits that arrive during an fsync share the next one. The WAL file is
/// opened for each fsync: SQLite may truncate it, and deletes it when the
/// last connection closes.
fn sync_loop(
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

/// Take what is queued, up to `max` writes in the batch.
fn drain(rx: &mut mpsc::Receiver<Write>, batch: &mut Vec<Write>, max: usize) {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(op) => batch.push(op),
            Err(_) => break,
        }
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

#[async_trait]
impl Store for SqliteStore {
    async fn create_account(&self, account: &Account) -> Result<()> {
        let a = account.clone();
        self.write(false, move |c| accounts::create_account(c, &a))
            .await
    }
    async fn get_account(&self, id: AccountId) -> Result<Account> {
        self.read(move |c| accounts::get_account(c, id)).await
    }
    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.read(accounts::list_accounts).await
    }
    async fn create_api_key(&self, key: &ApiKeyRecord, hash: [u8; 32]) -> Result<()> {
        let k = key.clone();
        self.write(false, move |c| accounts::create_api_key(c, &k, hash))
            .await
    }
    async fn find_api_key(&self, hash: [u8; 32]) -> Result<Option<ApiKeyRecord>> {
        self.read(move |c| accounts::find_api_key(c, hash)).await
    }
    async fn list_api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyRecord>> {
        self.read(move |c| accounts::list_api_keys(c, account))
            .await
    }
    async fn revoke_api_key(&self, account: AccountId, id: ApiKeyId) -> Result<()> {
        self.write(false, move |c| accounts::revoke_api_key(c, account, id))
            .await
    }

    async fn account_tracking(&self, account: AccountId) -> Result<AccountTracking> {
        self.read(move |c| accounts::account_tracking(c, account))
            .await
    }

    async fn update_account_tracking(
        &self,
        account: AccountId,
        patch: AccountTrackingPatch,
        now: Timestamp,
    ) -> Result<AccountTracking> {
        self.write(false, move |c| {
            accounts::update_account_tracking(c, account, &patch, now)
        })
        .await
    }

    async fn tracking_domains(&self) -> Result<Vec<(AccountId, String)>> {
        self.read(accounts::tracking_domains).await
    }

    fn observe_events(&self, observer: Arc<dyn EventObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }
    async fn record_events(&self, evs: Vec<NewEvent>) -> Result<Vec<Event>> {
        let evs = evs
            .into_iter()
            .map(events::Encoded::new)
            .collect::<Result<Vec<_>>>()?;
        self.write_bare(true, move |c| events::record_encoded(c, evs))
            .await
    }
    async fn events_after(&self, account: AccountId, after: i64, limit: u32) -> Result<Vec<Event>> {
        let head = self.durable_head();
        self.read(move |c| events::after(c, account, after, head, limit))
            .await
    }
    async fn get_event(&self, account: AccountId, id: EventId) -> Result<Event> {
        let head = self.durable_head();
        self.read(move |c| events::get(c, account, id, head)).await
    }

    async fn create_webhook(
        &self,
        webhook: &Webhook,
        since: Option<Timestamp>,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<u64> {
        let w = webhook.clone();
        self.write_change(move |c| {
            let n = webhooks::create(c, &w, since)?;
            if let Some(k) = &idempotency {
                let id = w.id.to_string();
                idempotency::take(c, w.account_id, k, &id, n as i64, w.created_at)?;
            }
            Ok(n)
        })
        .await
    }
    async fn idempotency_key(
        &self,
        account: AccountId,
        key: String,
        expired_before: Timestamp,
    ) -> Result<Option<IdempotencyRecord>> {
        self.read(move |c| idempotency::get(c, account, &key, expired_before))
            .await
    }
    async fn update_webhook(&self, webhook: &Webhook, resume: bool, now: Timestamp) -> Result<()> {
        let w = webhook.clone();
        self.write_change(move |c| webhooks::update(c, &w, resume, now))
            .await
    }
    async fn delete_webhook(&self, account: AccountId, id: WebhookId) -> Result<()> {
        self.write_change(move |c| webhooks::delete(c, account, id))
            .await
    }
    async fn get_webhook(&self, account: AccountId, id: WebhookId) -> Result<Webhook> {
        self.read(move |c| webhooks::get(c, Some(account), id))
            .await
    }
    async fn load_webhook(&self, id: WebhookId) -> Result<Webhook> {
        self.read(move |c| webhooks::get(c, None, id)).await
    }
    async fn list_webhooks(&self, account: AccountId) -> Result<Vec<Webhook>> {
        self.read(move |c| webhooks::list(c, account)).await
    }
    async fn webhook_status(&self, account: AccountId, id: WebhookId) -> Result<Vec<TypeState>> {
        self.read(move |c| webhooks::status(c, account, id)).await
    }
    async fn pause_states(&self, id: WebhookId) -> Result<Vec<PauseState>> {
        self.read(move |c| webhooks::pause_states(c, id)).await
    }
    async fn resume_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
        types: &[EventType],
        now: Timestamp,
    ) -> Result<Vec<EventType>> {
        let types = types.to_vec();
        self.write_change(move |c| webhooks::resume(c, account, id, &types, now))
            .await
    }
    async fn replay(
        &self,
        account: AccountId,
        id: WebhookId,
        from: Timestamp,
        to: Timestamp,
        types: &[EventType],
        now: Timestamp,
    ) -> Result<u64> {
        let types = types.to_vec();
        self.write_change(move |c| webhooks::replay(c, account, id, from, to, &types, now))
            .await
    }
    async fn enqueue_test_event(&self, webhook: WebhookId, event: NewEvent) -> Result<Event> {
        let event = events::Encoded::new(event)?;
        self.write_change(move |c| events::record_test(c, webhook, event))
            .await
    }

    async fn record_test_attempt(&self, event: NewEvent, attempt: AttemptRecord) -> Result<()> {
        let event = events::Encoded::new(event)?;
        self.write(false, move |c| {
            events::record_test_attempt(c, event, &attempt)
        })
        .await
    }

    async fn lease_jobs(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip: &[WebhookId],
    ) -> Result<Vec<LeasedJob>> {
        let skip = skip.to_vec();
        let raw = self
            .write_volatile(move |c| jobs::lease(c, now, lease_until, limit, &skip))
            .await?;
        // A job whose event does not parse is left leased (and logged each
        // time its lease runs out) rather than failing the whole batch.
        Ok(raw
            .into_iter()
            .filter_map(|r| {
                r.parse()
                    .map_err(|e| tracing::error!(error = %e, "cannot deliver a job"))
                    .ok()
            })
            .collect())
    }
    async fn stream_heads(&self) -> Result<Vec<StreamHead>> {
        self.read(jobs::stream_heads).await
    }
    async fn log_activity(&self, after: i64) -> Result<LogActivity> {
        let head = self.durable_head();
        if after >= head {
            return Ok(LogActivity {
                head,
                accounts: Vec::new(),
            });
        }
        self.read(move |c| jobs::log_activity(c, after, head)).await
    }
    async fn stream(&self, webhook: WebhookId, after: i64, limit: u32) -> Result<Vec<StreamItem>> {
        let head = self.durable_head();
        let raw = self
            .read(move |c| jobs::stream(c, webhook, after, head, limit))
            .await?;
        // Parsed here, off the pool's connection. An event whose data does
        // not parse can never be sent: it is logged and stepped over.
        Ok(raw
            .into_iter()
            .map(|r| {
                let seq = r.seq;
                r.parse().unwrap_or_else(|e| {
                    tracing::error!(error = %e, "cannot deliver an event");
                    StreamItem {
                        seq,
                        job: None,
                        hold: false,
                    }
                })
            })
            .collect())
    }
    fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }
    async fn complete_jobs(
        &self,
        done: Arc<Completion>,
        rule: Arc<dyn crate::PauseRule>,
    ) -> Result<CompletionSummary> {
        // Deliveries and give-ups make nothing due; retries, holds and
        // unsent jobs do (those of a type resumed meanwhile are due at once).
        let makes_jobs = !done.holds.is_empty()
            || !done.unleases.is_empty()
            || done
                .outcomes
                .iter()
                .any(|o| !matches!(o.next, Next::Done | Next::Exhausted));
        let summary = self
            .write_bare(false, move |c| jobs::complete(c, &done, &*rule))
            .await?;
        if makes_jobs {
            self.changed();
        }
        Ok(summary)
    }
    async fn next_due(&self) -> Result<Option<Timestamp>> {
        self.read(jobs::next_due).await
    }
    async fn release_leases(&self, now: Timestamp) -> Result<u64> {
        self.write_change(move |c| jobs::release_leases(c, now))
            .await
    }
    async fn queue_stats(&self, now: Timestamp) -> Result<QueueStats> {
        self.read(move |c| jobs::stats(c, now)).await
    }

    async fn list_attempts(
        &self,
        account: AccountId,
        filter: &AttemptFilter,
    ) -> Result<Vec<AttemptRecord>> {
        let f = filter.clone();
        self.read(move |c| jobs::list_attempts(c, account, &f))
            .await
    }

    async fn prune(&self, before: Timestamp) -> Result<PruneSummary> {
        self.write(false, move |c| {
            let summary = jobs::prune(c, before)?;
            idempotency::prune(c, before)?;
            Ok(summary)
        })
        .await
    }

    fn jobs_notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }
}
