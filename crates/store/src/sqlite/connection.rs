//! Opening a connection to the database, as the writer, the readers and
//! the checkpointer each do, and bringing its schema up to date.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::schema;
use crate::Result;

pub(super) fn open_conn(path: &Path) -> Result<Connection> {
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
pub(super) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = open_conn(path)?;
    conn.pragma_update(None, "cache_size", -1024)?;
    Ok(conn)
}

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
