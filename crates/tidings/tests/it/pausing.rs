//! The failure rule: 100 consecutive failures of one event type on one
//! webhook pause that type there; nothing is lost while paused, and
//! everything waiting is delivered, in order, on resume.

use serde_json::{json, Value};
use tidings_testkit::{wait_until, InProcess, Receiver, Reply, DEADLINE};
use tidings_types::EventType;

use crate::record;

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

async fn wait_state(t: &InProcess, id: &str, ty: &str, state: &str) -> Value {
    wait_until(&format!("{ty} to be {state}"), DEADLINE, || async {
        let s = type_state(t, id, ty).await;
        (s["state"] == state).then_some(s)
    })
    .await
}

fn delivered_ids(rx: &Receiver, from: usize, ty: &str) -> Vec<String> {
    rx.requests()[from..]
        .iter()
        .map(|r| r.json())
        .filter(|v| v["type"] == ty)
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_hundred_failures_pause_a_type_and_resume_delivers_all_in_order() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    // `sent` fails, `open` succeeds: the pause is per event type.
    rx.script(|r| Reply::status(if r.json()["type"] == "sent" { 500 } else { 200 }));
    let wh = t
        .api
        .create_webhook(
            json!({"url": rx.url("/h"), "event_types": ["sent", "open"], "max_in_flight": 1}),
        )
        .await;
    let id = wh["id"].as_str().unwrap().to_string();

    let mut sent = Vec::new();
    for i in 0..50 {
        sent.push(
            record(&t, EventType::Sent, &format!("u{i}@example.com"))
                .await
                .id
                .to_string(),
        );
    }
    // 50 events × (first attempt + immediate retry) = 100 consecutive failures.
    let paused = wait_state(&t, &id, "sent", "paused").await;
    assert_eq!(paused["pause_reason"], "consecutive_failures");
    assert_eq!(paused["consecutive_failures"], 100);
    assert_eq!(type_state(&t, &id, "open").await["state"], "active");

    // While paused: new `sent` events wait; `open` still flows.
    let before = rx.count();
    for i in 0..10 {
        sent.push(
            record(&t, EventType::Sent, &format!("late{i}@example.com"))
                .await
                .id
                .to_string(),
        );
    }
    let open = record(&t, EventType::Open, "o@example.com").await;
    wait_until("the open event", DEADLINE, || async {
        delivered_ids(&rx, before, "open")
            .contains(&open.id.to_string())
            .then_some(())
    })
    .await;
    assert!(
        delivered_ids(&rx, before, "sent").is_empty(),
        "nothing posted while paused"
    );
    assert_eq!(type_state(&t, &id, "sent").await["pending"], 60);

    // The receiver is fixed; an explicit resume delivers everything, in order.
    rx.script(|_| Reply::status(200));
    let mark = rx.count();
    let r = t
        .api
        .post(
            &format!("/v1/webhooks/{id}/resume"),
            &json!({"event_types": ["sent"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["resumed"], json!(["sent"]));
    let got = wait_until("all 60 sent events", DEADLINE, || async {
        let ids = delivered_ids(&rx, mark, "sent");
        (ids.len() >= 60).then_some(ids)
    })
    .await;
    assert_eq!(got, sent, "every waiting event, once, in log order");
    let state = wait_state(&t, &id, "sent", "active").await;
    assert_eq!(state["consecutive_failures"], 0);
    t.stop().await;
}

#[tokio::test]
async fn modifying_the_webhook_resumes_it() {
    let t = InProcess::start(|c| c.webhooks.pause_after = 4).await;
    let broken = Receiver::start().await;
    broken.script(|_| Reply::status(500));
    let fixed = Receiver::start().await;
    let wh = t
        .api
        .create_webhook(
            json!({"url": broken.url("/h"), "event_types": ["click"], "max_in_flight": 1}),
        )
        .await;
    let id = wh["id"].as_str().unwrap().to_string();
    let a = record(&t, EventType::Click, "a@example.com").await;
    let b = record(&t, EventType::Click, "b@example.com").await;
    wait_state(&t, &id, "click", "paused").await;
    let c = record(&t, EventType::Click, "c@example.com").await;

    let r = t
        .api
        .patch(
            &format!("/v1/webhooks/{id}"),
            &json!({"url": fixed.url("/new")}),
        )
        .await;
    assert_eq!(r.status, 200);
    let got = fixed.wait_for(3, tidings_testkit::DEADLINE).await;
    let ids: Vec<String> = got
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [a.id.to_string(), b.id.to_string(), c.id.to_string()]);
    wait_state(&t, &id, "click", "active").await;
    t.stop().await;
}

#[tokio::test]
async fn gone_pauses_at_once() {
    let t = InProcess::start(|_| {}).await;
    let rx = Receiver::start().await;
    rx.script(|_| Reply::status(410));
    let wh = t
        .api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["complaint"]}))
        .await;
    let id = wh["id"].as_str().unwrap().to_string();
    record(&t, EventType::Complaint, "a@example.com").await;
    let s = wait_state(&t, &id, "complaint", "paused").await;
    assert_eq!(s["pause_reason"], "gone");
    assert_eq!(s["consecutive_failures"], 1);
    assert_eq!(s["pending"], 1, "the event waits for a resume");
    rx.script(|_| Reply::status(200));
    t.api
        .post(&format!("/v1/webhooks/{id}/resume"), &json!({}))
        .await;
    rx.wait_for(2, DEADLINE).await;
    t.stop().await;
}

#[tokio::test]
async fn the_account_contact_is_emailed_when_a_type_pauses() {
    let mx = crate::outbound::Mx::start();
    let port = mx.port;
    let t = InProcess::start(move |c| {
        c.outbound
            .transports
            .insert("example.test".into(), format!("127.0.0.1:{port}"));
    })
    .await;
    let acc = t
        .app()
        .create_account("ops", Some("ops@example.test".into()))
        .await
        .unwrap();
    let key = t.app().create_api_key(acc.id, "k").await.unwrap();
    let api = t.api.with_key(key.key.expose());
    let rx = Receiver::start().await;
    rx.script(|_| Reply::status(410));
    let wh = api
        .create_webhook(json!({"url": rx.url("/gone"), "event_types": ["open"]}))
        .await;
    t.app()
        .record_event(acc.id, EventType::Open, crate::data("a@example.org"))
        .await
        .unwrap();
    let id = wh["id"].as_str().unwrap();
    let msgs = wait_until("the notice at the contact's MX", DEADLINE, || async {
        let m = mx.messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert!(msgs[0].contains("X-Envelope-To: ops@example.test"));
    assert!(
        msgs[0].contains("Subject: Webhook paused: open events"),
        "{}",
        msgs[0]
    );
    assert!(msgs[0].contains(id));
    t.stop().await;
}
