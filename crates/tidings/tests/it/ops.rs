//! Operations: health, metrics, retention.

use std::time::Duration;

use serde_json::json;
use tidings_testkit::{InProcess, Receiver, DEADLINE};
use tidings_types::EventType;

use crate::record;

#[tokio::test]
async fn health_and_metrics() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    t.api.create_webhook(json!({"url": rx.url("/h")})).await;
    record(&t, EventType::Sent, "a@example.com").await;
    rx.wait_for(1, DEADLINE).await;
    let health = reqwest::get(format!("{}/healthz", t.api.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let text = tidings_testkit::wait_until("the attempt to be counted", DEADLINE, || async {
        let text = reqwest::get(format!("{}/metrics", t.api.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.contains("tidings_webhook_attempts_total{outcome=\"delivered\"} 1")
            .then_some(text)
    })
    .await;
    for needle in [
        "tidings_events_recorded_total{type=\"sent\"} 1",
        "tidings_event_delivery_latency_seconds_count 1",
        "tidings_delivery_queue_depth",
        "tidings_delivery_oldest_pending_age_seconds",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    t.stop().await;
}

#[tokio::test]
async fn retention_prunes_old_events_and_attempts() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    t.api.create_webhook(json!({"url": rx.url("/h")})).await;
    record(&t, EventType::Sent, "old@example.com").await;
    rx.wait_for(1, DEADLINE).await;
    tidings_testkit::wait_until("the attempt to be logged", DEADLINE, || async {
        let r = t.api.get("/v1/attempts").await;
        (r.body["data"].as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    t.clock.advance(Duration::from_secs(31 * 86_400));
    let recent = record(&t, EventType::Sent, "new@example.com").await;
    rx.wait_for(2, DEADLINE).await;
    let pruned = t.app().prune().await.unwrap();
    assert_eq!(pruned.events, 1);
    assert!(pruned.attempts >= 1);
    let events = t.api.get("/v1/events").await;
    let ids: Vec<&str> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [recent.id.to_string().as_str()]);
    t.stop().await;
}
