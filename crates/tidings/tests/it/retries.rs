//! The retry schedule, driven by a manual clock: no test here waits for
//! real time to pass.

use std::time::Duration;

use chrono::DateTime;
use serde_json::{json, Value};
use tidings_testkit::{wait_until, InProcess, Receiver, Reply, DEADLINE};
use tidings_types::EventType;

use crate::record;

fn at(v: &Value, key: &str) -> chrono::DateTime<chrono::Utc> {
    DateTime::parse_from_rfc3339(v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")))
        .unwrap()
        .to_utc()
}

/// The call log of a webhook, oldest first, once it has `n` rows.
async fn attempts(t: &InProcess, id: &str, n: usize) -> Vec<Value> {
    wait_until("attempts in the call log", DEADLINE, || async {
        let r = t
            .api
            .get(&format!("/v1/webhooks/{id}/attempts?limit=500"))
            .await;
        let mut rows = r.body["data"].as_array().cloned().unwrap_or_default();
        rows.reverse();
        (rows.len() >= n).then_some(rows)
    })
    .await
}

#[tokio::test]
async fn failed_deliveries_follow_the_schedule_until_exhausted() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    rx.script(|_| Reply::status(500));
    let wh = t.api.create_webhook(json!({"url": rx.url("/h")})).await;
    let id = wh["id"].as_str().unwrap();
    let ev = record(&t, EventType::Sent, "a@example.com").await;

    // Delays after each failed attempt: immediately, 5 s, 5 min, 30 min,
    // 2 h, 5 h, 10 h, 14 h, 20 h, 24 h — each within ±10 % jitter.
    let schedule = [
        0u64, 5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400,
    ];
    for (i, secs) in schedule.iter().enumerate() {
        let rows = attempts(&t, id, i + 1).await;
        let last = &rows[i];
        assert_eq!(last["attempt"], (i + 1) as u64);
        assert_eq!(last["status_code"], 500);
        assert_eq!(last["event_id"], ev.id.to_string());
        let next = at(last, "next_attempt_at");
        let delay = (next - at(last, "at")).num_milliseconds() as f64 / 1000.0;
        let want = *secs as f64;
        assert!(
            (delay - want).abs() <= want * 0.1 + 0.05,
            "attempt {}: retry after {delay}s, schedule says {want}s",
            i + 1
        );
        // Nothing happens before the time comes...
        if *secs > 0 {
            assert_eq!(rx.count(), i + 1);
        }
        // ...and the next attempt happens when it does.
        t.clock.set(next);
    }
    let rows = attempts(&t, id, 11).await;
    assert_eq!(rows[10]["attempt"], 11);
    assert!(
        rows[10]["next_attempt_at"].is_null(),
        "the 11th attempt is the last"
    );
    let status = t.api.get(&format!("/v1/webhooks/{id}/status")).await;
    let sent = status.body["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["event_type"] == "sent")
        .unwrap()
        .clone();
    assert_eq!(sent["pending"], 0);
    assert_eq!(sent["consecutive_failures"], 11);
    assert_eq!(sent["last_error"], "http_500");
    t.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured_within_a_bound() {
    let t = InProcess::start(|c| c.webhooks.max_retry_after_secs = 3600).await;
    let rx = Receiver::start().await;
    rx.script(|_| Reply::status(503).header("retry-after", "120"));
    let wh = t.api.create_webhook(json!({"url": rx.url("/h")})).await;
    let id = wh["id"].as_str().unwrap();
    record(&t, EventType::Open, "a@example.com").await;
    let rows = attempts(&t, id, 1).await;
    let delay = (at(&rows[0], "next_attempt_at") - at(&rows[0], "at")).num_seconds();
    assert_eq!(delay, 120, "Retry-After longer than the schedule wins");

    rx.script(|_| Reply::status(429).header("retry-after", "86400"));
    t.clock.set(at(&rows[0], "next_attempt_at"));
    let rows = attempts(&t, id, 2).await;
    let delay = (at(&rows[1], "next_attempt_at") - at(&rows[1], "at")).num_seconds();
    assert_eq!(delay, 3600, "Retry-After is bounded");

    rx.script(|_| Reply::status(204));
    t.clock.set(at(&rows[1], "next_attempt_at"));
    let rows = attempts(&t, id, 3).await;
    assert_eq!(rows[2]["outcome"], "delivered");
    assert!(rows[2]["next_attempt_at"].is_null());
    t.stop().await;
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_everything_when_it_returns() {
    let t = InProcess::start(|_| {}).await;
    // A port with nothing listening: connections are refused.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let wh = t
        .api
        .create_webhook(json!({"url": format!("http://{addr}/h"), "event_types": ["sent"]}))
        .await;
    let id = wh["id"].as_str().unwrap();
    let acc = crate::account(&t).await;
    let events: Vec<_> = (0..40)
        .map(|i| {
            (
                acc,
                EventType::Sent,
                crate::data(&format!("u{i}@example.com")),
            )
        })
        .collect();
    let recorded = t.app().record_events(events).await.unwrap();
    // Each fails twice (the first retry is immediate): 80 failures.
    let rows = attempts(&t, id, 80).await;
    assert!(
        rows.iter().all(|r| r["error"] == "connect"),
        "{:?}",
        rows[0]
    );

    let rx = Receiver::start_on(addr).await;
    t.clock.advance(Duration::from_secs(6));
    let got = rx.wait_for(40, DEADLINE).await;
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut want: Vec<String> = recorded.iter().map(|e| e.id.to_string()).collect();
    want.sort();
    assert_eq!(ids, want);
    t.stop().await;
}
