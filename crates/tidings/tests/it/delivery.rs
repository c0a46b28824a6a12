//! What arrives at a receiver: formats, field selection, signatures checked
//! by the official Standard Webhooks verifier, limits, batching, backfill
//! and replay.

use std::time::Duration;

use serde_json::json;
use tidings_testkit::{InProcess, Receiver, Reply, DEADLINE};
use tidings_types::{Clock, EventType};

use crate::record;

/// Verify a request with the official `standardwebhooks` library.
pub(crate) fn verify(secret: &str, req: &tidings_testkit::Received) {
    let wh = standardwebhooks::Webhook::new(secret).expect("secret");
    let signed: Vec<u8> = if req.method == http::Method::GET {
        req.uri.query().unwrap_or("").as_bytes().to_vec()
    } else {
        req.body.to_vec()
    };
    wh.verify(&signed, &req.headers)
        .unwrap_or_else(|e| panic!("signature does not verify: {e:?}"));
}

#[tokio::test]
async fn json_format_is_signed_and_complete() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let wh = t
        .api
        .create_webhook(json!({"url": rx.url("/hook"), "headers": {"X-Custom": "yes"}}))
        .await;
    let secret = wh["secret"].as_str().unwrap();
    let ev = record(&t, EventType::Bounce, "someone@example.com").await;
    let got = rx.wait_for(1, DEADLINE).await;
    let req = &got[0];
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("x-custom"), Some("yes"));
    assert_eq!(req.header("webhook-id"), Some(ev.id.to_string().as_str()));
    verify(secret, req);
    let body = req.json();
    assert_eq!(body["id"], ev.id.to_string());
    assert_eq!(body["type"], "bounce");
    assert_eq!(body["data"]["email"], "someone@example.com");
    assert_eq!(body["data"]["tags"], json!(["a", "b"]));
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    t.stop().await;
}

#[tokio::test]
async fn field_selection_and_form_and_get_formats() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let form = t
        .api
        .create_webhook(json!({
            "url": rx.url("/form"), "format": "form", "event_types": ["sent"],
            "fields": ["email", "tags"],
        }))
        .await;
    let get = t
        .api
        .create_webhook(json!({
            "url": rx.url("/get?token=s3cr%2Bt&x=1"), "format": "get", "event_types": ["sent"],
            "fields": ["email"],
        }))
        .await;
    let sel = t
        .api
        .create_webhook(json!({
            "url": rx.url("/json"), "event_types": ["sent"], "fields": ["subject"],
        }))
        .await;
    let ev = record(&t, EventType::Sent, "x+y@example.com").await;
    let got = rx.wait_for(3, DEADLINE).await;
    let by_path = |p: &str| got.iter().find(|r| r.uri.path() == p).expect(p).clone();

    let f = by_path("/form");
    assert_eq!(f.method, http::Method::POST);
    assert_eq!(
        f.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    verify(form["secret"].as_str().unwrap(), &f);
    let pairs = f.pairs();
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["event", "event_id", "timestamp", "email", "tags"]);
    assert!(pairs.contains(&("email".into(), "x+y@example.com".into())));
    assert!(pairs.contains(&("tags".into(), "a,b".into())));
    assert!(pairs.contains(&("event_id".into(), ev.id.to_string())));

    let g = by_path("/get");
    assert_eq!(g.method, http::Method::GET);
    assert!(g.body.is_empty());
    assert!(
        g.uri.query().unwrap().starts_with("token=s3cr%2Bt&x=1&"),
        "the account's own query string is kept as written: {}",
        g.uri
    );
    verify(get["secret"].as_str().unwrap(), &g);
    assert!(g.pairs().contains(&("event".into(), "sent".into())));
    assert!(g
        .pairs()
        .contains(&("email".into(), "x+y@example.com".into())));

    let j = by_path("/json");
    verify(sel["secret"].as_str().unwrap(), &j);
    assert_eq!(j.json()["data"], json!({"subject": "Hello"}));
    t.stop().await;
}

#[tokio::test]
async fn rotated_secrets_both_sign_during_the_overlap() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let wh = t.api.create_webhook(json!({"url": rx.url("/h")})).await;
    let id = wh["id"].as_str().unwrap();
    let old = wh["secret"].as_str().unwrap().to_string();
    let rotated = t
        .api
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &json!({"overlap_seconds": 3600}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let new = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(old, new);
    record(&t, EventType::Open, "a@example.com").await;
    let got = rx.wait_for(1, DEADLINE).await;
    verify(&old, &got[0]);
    verify(&new, &got[0]);
    assert_eq!(
        got[0]
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    t.stop().await;
}

#[tokio::test]
async fn new_webhooks_are_backfilled_with_the_last_seven_days() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let old = record(&t, EventType::Sent, "old@example.com").await;
    t.clock.advance(Duration::from_secs(8 * 86_400));
    let recent = record(&t, EventType::Sent, "recent@example.com").await;
    let skipped_type = record(&t, EventType::Open, "recent@example.com").await;
    let wh = t
        .api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["sent"]}))
        .await;
    assert_eq!(wh["backfilled"], 1);
    let got = rx.wait_for(1, DEADLINE).await;
    assert_eq!(got[0].json()["id"], recent.id.to_string());
    let none = t
        .api
        .create_webhook(json!({"url": rx.url("/none"), "backfill": false}))
        .await;
    assert_eq!(none["backfilled"], 0);
    let _ = (old, skipped_type);
    t.stop().await;
}

#[tokio::test]
async fn replay_resends_a_time_range_with_the_same_ids() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let wh = t
        .api
        .create_webhook(
            json!({"url": rx.url("/h"), "event_types": ["sent", "open"], "max_in_flight": 1}),
        )
        .await;
    let id = wh["id"].as_str().unwrap();
    let start = t.clock.now();
    let a = record(&t, EventType::Sent, "a@example.com").await;
    let b = record(&t, EventType::Open, "b@example.com").await;
    rx.wait_for(2, DEADLINE).await;
    // Let the outcomes commit before jumping an hour ahead, or the jump
    // would expire the leases of deliveries still being recorded.
    tidings_testkit::wait_until("both attempts logged", DEADLINE, || async {
        let r = t.api.get("/v1/attempts").await;
        (r.body["data"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    t.clock.advance(Duration::from_secs(3600));
    record(&t, EventType::Sent, "later@example.com").await;
    rx.wait_for(3, DEADLINE).await;

    let to = start + chrono::Duration::seconds(60);
    let r = t
        .api
        .post(
            &format!("/v1/webhooks/{id}/replay"),
            &json!({"from": start.to_rfc3339(), "to": to.to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["enqueued"], 2);
    let got = rx.wait_for(5, DEADLINE).await;
    let replayed: Vec<String> = got[3..]
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    assert_eq!(replayed, [a.id.to_string(), b.id.to_string()]);
    let bad = t
        .api
        .post(
            &format!("/v1/webhooks/{id}/replay"),
            &json!({"from": to.to_rfc3339(), "to": start.to_rfc3339()}),
        )
        .await;
    assert_eq!(bad.status, 422);
    t.stop().await;
}

#[tokio::test]
async fn rate_limit_is_honoured() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let limited = t
        .api
        .create_webhook(json!({
            "url": rx.url("/limited"), "event_types": ["sent"], "max_per_second": 10,
        }))
        .await;
    assert_eq!(limited["max_per_second"], 10);
    let acc = crate::account(&t).await;
    let events: Vec<_> = (0..30)
        .map(|i| {
            (
                acc,
                EventType::Sent,
                crate::data(&format!("u{i}@example.com")),
            )
        })
        .collect();
    t.app().record_events(events).await.unwrap();
    let got = rx.wait_for(30, DEADLINE).await;
    let span = got[29].at - got[0].at;
    // 30 requests at 10/s, even after a full burst of 10, take about 2 s.
    assert!(
        span >= Duration::from_millis(1800),
        "rate limit not honoured: {span:?}"
    );
    // No one-second window holds more than the burst (+1 for rounding at its edge).
    for (i, r) in got.iter().enumerate() {
        let window = got[i..]
            .iter()
            .take_while(|o| o.at - r.at < Duration::from_secs(1))
            .count();
        assert!(window <= 11, "{window} requests within one second");
    }
    t.stop().await;
}

#[tokio::test]
async fn in_flight_limit_is_honoured() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    rx.script(|_| {
        let mut r = Reply::status(200);
        r.delay = Duration::from_millis(30);
        r
    });
    t.api
        .create_webhook(json!({"url": rx.url("/c"), "event_types": ["sent"], "max_in_flight": 3}))
        .await;
    let acc = crate::account(&t).await;
    let events: Vec<_> = (0..20)
        .map(|i| {
            (
                acc,
                EventType::Sent,
                crate::data(&format!("u{i}@example.com")),
            )
        })
        .collect();
    t.app().record_events(events).await.unwrap();
    // A request is "in flight" from its arrival until its reply; the
    // receiver counts arrivals, and tidings sends the next only after a
    // reply, so arrivals can never run more than 3 ahead of replies.
    let got = rx.wait_for(20, DEADLINE).await;
    for (i, r) in got.iter().enumerate() {
        let overlapping = got[..i]
            .iter()
            .filter(|o| r.at - o.at < Duration::from_millis(30))
            .count();
        assert!(overlapping < 3, "more than 3 requests in flight at once");
    }
    t.stop().await;
}

#[tokio::test]
async fn batching_sends_json_arrays() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    let wh = t
        .api
        .create_webhook(json!({
            "url": rx.url("/batch"), "event_types": ["open"],
            "batch": {"max_events": 10, "max_wait_ms": 200}, "max_in_flight": 1,
        }))
        .await;
    let acc = crate::account(&t).await;
    let events: Vec<_> = (0..25)
        .map(|i| {
            (
                acc,
                EventType::Open,
                crate::data(&format!("u{i}@example.com")),
            )
        })
        .collect();
    let recorded = t.app().record_events(events).await.unwrap();
    let mut seen = Vec::new();
    tidings_testkit::wait_until("all batched events", DEADLINE, || {
        let reqs = rx.requests();
        async move {
            let ids: Vec<String> = reqs
                .iter()
                .flat_map(|r| {
                    let v = r.json();
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["id"].as_str().unwrap().to_string())
                        .collect::<Vec<_>>()
                })
                .collect();
            (ids.len() >= 25).then_some(ids)
        }
    })
    .await
    .into_iter()
    .for_each(|id| seen.push(id));
    let want: Vec<String> = recorded.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(seen, want, "every event once, in order");
    let reqs = rx.requests();
    assert!(
        reqs.len() < 25,
        "events were grouped: {} requests",
        reqs.len()
    );
    for r in &reqs {
        assert!(r.json().as_array().unwrap().len() <= 10);
        verify(wh["secret"].as_str().unwrap(), r);
    }
    t.stop().await;
}
