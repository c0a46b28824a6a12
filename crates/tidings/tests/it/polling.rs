//! The polling API: a consumer following the cursor sees every committed
//! event exactly once, in order, while several writers commit at once.

use std::collections::HashSet;

use tidings_testkit::{InProcess, DEADLINE};
use tidings_types::EventType;

#[tokio::test]
async fn cursor_sees_every_event_once_in_order_under_concurrent_writers() {
    let t = InProcess::start(|_| {}).await;
    let acc = crate::account(&t).await;
    const WRITERS: usize = 8;
    const EACH: usize = 250;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = t.app().clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                let ev = app
                    .record_event(
                        acc,
                        EventType::Open,
                        crate::data(&format!("w{w}-{i}@example.com")),
                    )
                    .await
                    .unwrap();
                ids.push(ev.id.to_string());
            }
            ids
        }));
    }
    // Poll concurrently with the writers.
    let api = t.api.clone();
    let poller = tokio::spawn(async move {
        let mut cursor = String::from("0");
        let mut seen = Vec::new();
        let mut last_seq = 0i64;
        let end = tokio::time::Instant::now() + DEADLINE;
        while seen.len() < WRITERS * EACH && tokio::time::Instant::now() < end {
            let r = api
                .get(&format!("/v1/events?after={cursor}&limit=97"))
                .await;
            assert_eq!(r.status, 200);
            for e in r.body["data"].as_array().unwrap() {
                let seq: i64 = e["cursor"].as_str().unwrap().parse().unwrap();
                assert!(seq > last_seq, "cursor went backwards");
                last_seq = seq;
                seen.push(e["id"].as_str().unwrap().to_string());
            }
            cursor = r.body["next_cursor"].as_str().unwrap().to_string();
            if !r.body["has_more"].as_bool().unwrap() {
                tokio::task::yield_now().await;
            }
        }
        seen
    });
    let mut written = HashSet::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    let seen = poller.await.unwrap();
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an event was seen twice");
    assert_eq!(unique, written, "every committed event was seen");

    let bad = t.api.get("/v1/events?after=banana").await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_cursor"));
    let unknown = t.api.get("/v1/events?since=3").await;
    assert_eq!((unknown.status, unknown.code()), (422, "unknown_field"));
    t.stop().await;
}
