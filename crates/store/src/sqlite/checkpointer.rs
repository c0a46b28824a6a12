//! The checkpointer thread: copies the WAL into the database beside the
//! writer, and asks the writer to start the WAL over when it grows long.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rusqlite::Connection;

/// Frames of WAL (~64 MB) past which the writer, between two
/// transactions, finishes the checkpoint and starts the WAL over. That
/// stops every write for a copy and two fsyncs (about 10 ms under load),
/// so it is kept rare: at 4,096 frames it came every 0.4 s at 5,000
/// opens/s, and set the p99 of the responses.
pub(super) const WAL_RESTART_FRAMES: i64 = 16_384;
/// How often the checkpointer thread copies the WAL into the database.
pub(super) const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

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
pub(super) fn checkpoint_loop(
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
pub(super) fn start_writeback(file: &std::fs::File) -> std::io::Result<()> {
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
pub(super) struct Restart {
    /// The WAL is long: the writer should finish the checkpoint.
    pub(super) wanted: AtomicBool,
    /// Held by whichever thread is checkpointing, so that neither waits on
    /// SQLite's checkpoint lock (its busy handler sleeps for milliseconds).
    pub(super) checkpointing: Mutex<()>,
}

/// If the checkpointer asked, copy what is left of the WAL so that the
/// next transaction starts it over. It never waits: when the checkpointer
/// is busy, or a reader still uses the WAL, it is tried again later.
pub(super) fn restart_wal(conn: &Connection, restart: &Restart) {
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
