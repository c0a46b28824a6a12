//! The WAL stays bounded while writes never pause: the checkpointer copies
//! it into the database beside the writer, and the writer starts it over.

use std::time::{Duration, Instant};

use tidings_types::{AccountId, EventType, NewEvent};

use super::checkpointer::WAL_RESTART_FRAMES;
use super::{SqliteOptions, SqliteStore};
use crate::Store;

#[tokio::test]
async fn wal_starts_over_under_continuous_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::open(SqliteOptions::new(&path)).unwrap();
    let wal = dir.path().join("t.db-wal");
    let account = AccountId::new();
    let reason = "x".repeat(8 * 1024);
    // Each event takes three pages of its own; write four times the
    // restart threshold, with no pause for the checkpointer to catch up.
    let limit = WAL_RESTART_FRAMES as u64 * 4096;
    let target = 4 * limit;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut written = 0u64;
    while written < target {
        assert!(Instant::now() < deadline, "writing took too long");
        let events = (0..50)
            .map(|_| {
                let mut data = tidings_types::EventData::new();
                data.insert("reason".into(), serde_json::json!(reason));
                NewEvent::new(
                    account,
                    EventType::Dropped,
                    tidings_types::time::trunc(std::time::SystemTime::now().into()),
                    data,
                )
                .unwrap()
            })
            .collect();
        s.record_events(events).await.unwrap();
        written += 50 * 3 * 4096;
    }
    let size = std::fs::metadata(&wal).unwrap().len();
    assert!(
        size < 2 * limit,
        "the WAL grew to {size} bytes after {written} bytes of writes; it should start over near {limit}"
    );
}
