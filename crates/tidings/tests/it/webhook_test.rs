//! `POST /v1/webhooks/{id}/test`: one real, signed attempt to one webhook,
//! answered with what the receiver said, recorded in the call log, and
//! never counted toward pausing.

use serde_json::{json, Value};
use tidings_testkit::{wait_until, InProcess, Receiver, Reply, DEADLINE};
use tidings_types::EventType;

use crate::delivery::verify;
use crate::record;

async fn test(t: &InProcess, id: &str, ty: &str) -> Value {
    let r = t
        .api
        .post(&format!("/v1/webhooks/{id}/test"), &json!({"type": ty}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

async fn type_state(t: &InProcess, id: &str, ty: &str) -> Value {
    let r = t.api.get(&format!("/v1/webhooks/{id}/status")).await;
    r.body["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["event_type"] == ty)
        .cloned()
        .unwrap()
}

/// A port on loopback that nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_test_is_sent_like_a_delivery_and_answers_with_the_receivers_reply() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let long = format!("thanks {}", "x".repeat(3000));
    let answer = long.clone();
    rx.script(move |_| Reply {
        body: answer.clone(),
        ..Reply::status(200)
    });
    let a = t
        .api
        .create_webhook(json!({
            "url": rx.url("/a?token=static"), "format": "form", "fields": ["email", "url"],
            "headers": {"X-Token": "abc"}, "event_types": ["bounce"],
        }))
        .await;
    t.api.create_webhook(json!({"url": rx.url("/b")})).await;
    let id = a["id"].as_str().unwrap();

    let body = test(&t, id, "click").await;
    // One request, to that webhook only, made before the answer.
    let got = rx.requests();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    assert_eq!(req.uri.path(), "/a");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.header("x-token"), Some("abc"));
    verify(a["secret"].as_str().unwrap(), req);
    let pairs = req.pairs();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["event", "event_id", "timestamp", "email", "url"]);

    // The event sent, as the webhook's field selection shows it.
    let event = &body["event"];
    assert_eq!(event["type"], "click");
    assert_eq!(req.header("webhook-id"), event["id"].as_str());
    assert!(pairs.contains(&("event_id".into(), event["id"].as_str().unwrap().into())));
    let fields: Vec<&String> = event["data"].as_object().unwrap().keys().collect();
    assert_eq!(fields, ["email", "url"]);

    // The receiver's answer, in the call log's attempt shape.
    let attempt = &body["attempt"];
    assert_eq!(attempt["outcome"], "delivered");
    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["error"], Value::Null);
    assert_eq!(attempt["event_id"], event["id"]);
    assert_eq!(attempt["webhook_id"], id);
    assert_eq!(attempt["url"], rx.url("/a?token=static"));
    assert!(attempt["duration_ms"].is_u64());
    let response = attempt["response"].as_str().unwrap();
    assert_eq!(response, &long[..1024], "the first KiB of the body");

    // In the call log, as the same attempt; not in the account's events.
    let log = t.api.get(&format!("/v1/webhooks/{id}/attempts")).await;
    let rows = log.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    for k in [
        "id",
        "event_id",
        "outcome",
        "status_code",
        "error",
        "response",
        "url",
    ] {
        assert_eq!(rows[0][k], attempt[k], "{k}");
    }
    assert_eq!(t.api.get("/v1/events").await.body["data"], json!([]));

    let bad = t
        .api
        .post(
            &format!("/v1/webhooks/{id}/test"),
            &json!({"type": "opened"}),
        )
        .await;
    assert_eq!((bad.status, bad.code()), (422, "invalid_event_type"));
    let unknown = t
        .api
        .post(
            "/v1/webhooks/wh_01jd0000000000000000000000/test",
            &json!({"type": "sent"}),
        )
        .await;
    assert_eq!((unknown.status, unknown.code()), (404, "not_found"));
    assert_eq!(rx.count(), 1);
    t.stop().await;
}

/// A receiver that fails is a test that worked: the answer says how it
/// failed. With `pause_after = 1` a single counted failure would pause the
/// type, so a test that counted would show here.
#[tokio::test]
async fn a_failing_receiver_is_reported_and_never_counts_toward_pausing() {
    let t = InProcess::start(|c| c.webhooks.pause_after = 1).await;
    let rx = Receiver::start().await;
    rx.script(|_| Reply {
        body: "boom".into(),
        ..Reply::status(500)
    });
    let wh = t.api.create_webhook(json!({"url": rx.url("/h")})).await;
    let id = wh["id"].as_str().unwrap();
    for _ in 0..3 {
        let body = test(&t, id, "bounce").await;
        let attempt = &body["attempt"];
        assert_eq!(attempt["outcome"], "failed");
        assert_eq!(attempt["status_code"], 500);
        assert_eq!(attempt["error"], Value::Null);
        assert_eq!(attempt["response"], "boom");
    }
    let state = type_state(&t, id, "bounce").await;
    assert_eq!(state["state"], "active");
    assert_eq!(state["consecutive_failures"], 0);
    assert_eq!(state["last_error"], Value::Null);
    let log = t.api.get(&format!("/v1/webhooks/{id}/attempts")).await;
    assert_eq!(log.body["data"].as_array().unwrap().len(), 3);

    // A real delivery failing once does pause it.
    record(&t, EventType::Bounce, "a@example.com").await;
    wait_until("a real failure to pause the type", DEADLINE, || async {
        let s = type_state(&t, id, "bounce").await;
        (s["state"] == "paused").then_some(())
    })
    .await;
    t.stop().await;
}

#[tokio::test]
async fn a_receiver_not_listening_is_a_connect_error() {
    let t = InProcess::start(|_| {}).await;
    let url = format!("http://127.0.0.1:{}/h", closed_port());
    let wh = t.api.create_webhook(json!({"url": url})).await;
    let id = wh["id"].as_str().unwrap();
    let body = test(&t, id, "sent").await;
    let attempt = &body["attempt"];
    assert_eq!(attempt["outcome"], "failed");
    assert_eq!(attempt["status_code"], Value::Null);
    assert_eq!(attempt["error"], "connect");
    assert!(
        !attempt["response"].as_str().unwrap().is_empty(),
        "the error in words"
    );
    assert_eq!(type_state(&t, id, "sent").await["consecutive_failures"], 0);
    t.stop().await;
}

/// The test waits no longer than a delivery would: the webhook timeout.
#[tokio::test]
async fn a_slow_receiver_times_out_like_a_delivery() {
    let t = InProcess::start(|c| c.webhooks.timeout_secs = 1).await;
    let rx = Receiver::start().await;
    rx.script(|_| Reply {
        delay: std::time::Duration::from_secs(10),
        ..Reply::status(200)
    });
    let wh = t.api.create_webhook(json!({"url": rx.url("/slow")})).await;
    let started = std::time::Instant::now();
    let body = test(&t, wh["id"].as_str().unwrap(), "open").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(body["attempt"]["error"], "timeout");
    assert_eq!(body["attempt"]["status_code"], Value::Null);
    assert_eq!(body["attempt"]["outcome"], "failed");
    t.stop().await;
}
