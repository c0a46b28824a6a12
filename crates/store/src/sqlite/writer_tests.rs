//! How the writes that share one transaction are kept apart: a write in a
//! savepoint fails alone; a bare write that fails takes its whole batch
//! with it, and every caller in the batch hears so.
//! Also the threads around the writer: the syncer's durable head, and the
//! reader threads.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{SqliteOptions, SqliteStore};
use crate::StoreError;

/// A store whose writer is held inside a write until `release` is sent,
/// so that the writes submitted meanwhile all land in its next batch.
async fn held_store(dir: &std::path::Path) -> (Arc<SqliteStore>, std_mpsc::Sender<()>) {
    let s = Arc::new(SqliteStore::open(SqliteOptions::new(dir.join("t.db"))).unwrap());
    s.write(false, |c| {
        c.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)")?;
        Ok(())
    })
    .await
    .unwrap();
    let (release, held) = std_mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let blocker = s.clone();
    tokio::spawn(async move {
        blocker
            .write(false, move |_| {
                let _ = started.send(());
                let _ = held.recv();
                Ok(())
            })
            .await
    });
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the writer did not take the held write")
        .unwrap();
    (s, release)
}

/// Wait until `n` writes are queued behind the held one.
async fn queued(s: &SqliteStore, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.writer.max_capacity() - s.writer.capacity() < n {
        assert!(Instant::now() < deadline, "writes were not queued");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn rows(s: &SqliteStore) -> Vec<i64> {
    s.read(|c| {
        let mut st = c.prepare("SELECT x FROM t ORDER BY x")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    })
    .await
    .unwrap()
}

fn insert(c: &rusqlite::Connection, x: i64) -> crate::Result<()> {
    c.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
    Ok(())
}

#[tokio::test]
async fn a_failed_write_in_a_savepoint_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (s, release) = held_store(dir.path()).await;
    let (a, b) = (s.clone(), s.clone());
    let failing = tokio::spawn(async move {
        a.write(false, |c| {
            insert(c, 1)?;
            Err::<(), _>(StoreError::Conflict("no".into()))
        })
        .await
    });
    queued(&s, 1).await;
    let fine = tokio::spawn(async move { b.write(false, |c| insert(c, 2)).await });
    queued(&s, 2).await;
    release.send(()).unwrap();
    assert!(matches!(
        failing.await.unwrap(),
        Err(StoreError::Conflict(_))
    ));
    fine.await.unwrap().unwrap();
    assert_eq!(rows(&s).await, vec![2]);
}

#[tokio::test]
async fn a_bare_write_that_fails_half_way_rolls_back_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (s, release) = held_store(dir.path()).await;
    let (a, b) = (s.clone(), s.clone());
    let fine = tokio::spawn(async move { b.write(false, |c| insert(c, 2)).await });
    queued(&s, 1).await;
    let failing = tokio::spawn(async move {
        a.write_bare(false, |c| {
            insert(c, 1)?;
            // NOT NULL: the statement fails after a row of this write went in.
            c.execute("INSERT INTO t (x) VALUES (NULL)", [])?;
            Ok(())
        })
        .await
    });
    queued(&s, 2).await;
    release.send(()).unwrap();
    assert!(failing.await.unwrap().is_err());
    assert!(
        fine.await.unwrap().is_err(),
        "a write rolled back with its batch must not be reported as done"
    );
    assert_eq!(rows(&s).await, Vec::<i64>::new(), "nothing half-written");
    // The writer goes on.
    s.write_bare(false, |c| insert(c, 3)).await.unwrap();
    assert_eq!(rows(&s).await, vec![3]);
}

/// The syncer moves the log's durable head only after its fsync, and
/// before any caller of the commits it covers hears back: a caller that
/// reads the log next finds its own events.
#[test]
fn the_durable_head_moves_before_callers_hear_back() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("t.db-wal");
    std::fs::write(&wal, b"frames").unwrap();
    let durable = Arc::new(AtomicI64::new(3));
    let (to_sync, committed) = std_mpsc::channel::<super::Committed>();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    for head in [7, 5] {
        let (durable, seen) = (durable.clone(), seen.clone());
        to_sync
            .send(super::Committed {
                head,
                finish: vec![Box::new(move |ok| {
                    seen.lock()
                        .unwrap()
                        .push((ok, durable.load(Ordering::Acquire)));
                })],
            })
            .unwrap();
    }
    drop(to_sync);
    let syncing = super::Syncing::default();
    syncing
        .commits
        .fetch_add(2, std::sync::atomic::Ordering::AcqRel);
    super::sync_loop(committed, &wal, &durable, &syncing);
    assert!(!syncing.busy());
    assert_eq!(durable.load(Ordering::Acquire), 7, "never moves back");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|&(ok, head)| ok && head >= 7), "{seen:?}");
}

/// With full durability, what a write recorded is in the log for the
/// next read as soon as the write returns.
#[tokio::test]
async fn events_are_readable_once_their_write_returns() {
    use crate::Store;
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(SqliteOptions::new(dir.path().join("t.db"))).unwrap();
    let account = tidings_types::AccountId::new();
    for n in 1..=20 {
        let e = tidings_types::NewEvent::new(
            account,
            tidings_types::EventType::Open,
            chrono::Utc::now(),
            Default::default(),
        )
        .unwrap();
        s.record_events(vec![e]).await.unwrap();
        let log = s.events_after(account, 0, 100).await.unwrap();
        assert_eq!(log.len(), n);
    }
}

/// No read of the log shows an event past the durable head: not the
/// polling read, not a read by id, not a message's events. (The head is
/// set back by hand here, as if the event's fsync had not finished.)
#[tokio::test]
async fn reads_by_id_and_by_message_stop_at_the_durable_head() {
    use crate::{MessageStore, Store};
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(SqliteOptions::new(dir.path().join("t.db"))).unwrap();
    let account = tidings_types::AccountId::new();
    let message = tidings_types::MessageId::new();
    let mut data = tidings_types::EventData::new();
    data.insert("message_id".into(), message.to_string().into());
    data.insert("email".into(), "a@example.com".into());
    let e = tidings_types::NewEvent::new(
        account,
        tidings_types::EventType::Open,
        chrono::Utc::now(),
        data,
    )
    .unwrap();
    let recorded = s.record_events(vec![e]).await.unwrap().remove(0);
    async fn visible(
        s: &SqliteStore,
        account: tidings_types::AccountId,
        event: &tidings_types::Event,
        message: tidings_types::MessageId,
    ) -> (bool, usize, usize) {
        (
            s.get_event(account, event.id).await.is_ok(),
            s.message_events(account, message).await.unwrap().len(),
            s.events_after(account, 0, 10).await.unwrap().len(),
        )
    }
    assert_eq!(visible(&s, account, &recorded, message).await, (true, 1, 1));
    s.durable
        .store(recorded.seq - 1, std::sync::atomic::Ordering::Release);
    assert_eq!(
        visible(&s, account, &recorded, message).await,
        (false, 0, 0),
        "not yet durable: not shown"
    );
    s.durable
        .store(recorded.seq, std::sync::atomic::Ordering::Release);
    assert_eq!(visible(&s, account, &recorded, message).await, (true, 1, 1));
}

/// Reads run on a fixed set of reader threads: a read that panics loses
/// only its own answer, and many reads at once all get theirs, on no more
/// threads than there are readers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_share_the_reader_threads_and_survive_a_panicking_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(SqliteOptions::new(dir.path().join("t.db"))).unwrap());
    let r: crate::Result<()> = s.read(|_| panic!("a bug in a read")).await;
    assert!(matches!(r, Err(StoreError::Closed)), "{r:?}");
    let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let reads: Vec<_> = (0..200)
        .map(|i| {
            let (s, threads) = (s.clone(), threads.clone());
            tokio::spawn(async move {
                s.read(move |c| {
                    threads.lock().unwrap().insert(std::thread::current().id());
                    Ok(c.query_row("SELECT ?1 + 1", [i], |r| r.get::<_, i64>(0))?)
                })
                .await
            })
        })
        .collect();
    for (i, read) in reads.into_iter().enumerate() {
        assert_eq!(read.await.unwrap().unwrap(), i as i64 + 1);
    }
    let used = threads.lock().unwrap().len();
    assert!(used <= super::READERS, "{used} threads ran the reads");
}
