//! The reader threads: a fixed pool, each with a connection of its own,
//! that run the store's reads beside the writer (WAL lets them). Every read
//! of the log stops at the durable head, which the caller reads before it
//! submits (see [`super::SqliteStore::durable_head`]).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::connection::open_reader;
use super::SqliteStore;
use crate::{Result, StoreError};

/// Reader threads, each with its own connection (opened at its first
/// read). Reads beyond these many wait their turn.
pub(super) const READERS: usize = 8;

impl SqliteStore {
    /// Run `f` on one of the reader threads' connections.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T>
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
pub(super) type ReadJob = Box<dyn FnOnce(Result<&Connection>) + Send>;

/// A reader thread: runs reads on its own connection, opened at the first
/// one, until the store is dropped. A fixed set of threads, rather than
/// tokio's blocking pool, whose threads multiply under bursts of reads.
/// One idle reader at a time waits on the queue (sleeping, not spinning);
/// the others wait for their turn at it.
pub(super) fn reader_loop(path: &Path, jobs: Arc<Mutex<mpsc::UnboundedReceiver<ReadJob>>>) {
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
