//! The failure rule: 100 consecutive failures of one event type on one
//! webhook pause that type there; nothing is lost while paused, and
//! everything waiting is delivered, in order, on resume.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

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
    let mx = tidings_testkit::mx::Mx::start();
    let t = mx.app(|_| {}).await;
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

/// The app's own database file, to look at the delivery queue.
fn db(t: &InProcess) -> rusqlite::Connection {
    rusqlite::Connection::open(t.config.data_dir.join("tidings.db")).unwrap()
}

/// Nothing of the webhook's is in the dispatcher's hands: its stream is
/// settled to the end of the log and none of its jobs is leased. Returns
/// its jobs of type `ty`.
fn at_rest(t: &InProcess, webhook: &str, ty: &str) -> Option<i64> {
    let c = db(t);
    let (settled, head): (i64, i64) = c
        .query_row(
            "SELECT stream_seq, (SELECT COALESCE(MAX(seq), 0) FROM events WHERE test = 0)
             FROM webhooks WHERE id = ?1",
            [webhook],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let (jobs, leased): (i64, i64) = c
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(leased), 0) FROM jobs
             WHERE webhook_id = ?1 AND event_type = ?2",
            [webhook, ty],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    (settled == head && leased == 0).then_some(jobs)
}

/// Record `n` events of type `ty`, in batches; their ids in log order.
async fn record_many(t: &InProcess, ty: EventType, n: usize) -> Vec<String> {
    let acc = crate::account(t).await;
    let mut ids = Vec::new();
    for chunk in 0..n.div_ceil(50) {
        let batch = (0..50.min(n - chunk * 50))
            .map(|i| (acc, ty, crate::data(&format!("u{chunk}-{i}@example.com"))))
            .collect();
        let events = t.app().record_events(batch).await.unwrap();
        ids.extend(events.into_iter().map(|e| e.id.to_string()));
    }
    ids
}

/// A receiver that fails every request until `fixed` is set; it counts
/// the requests it failed.
fn failing_until(rx: &Receiver) -> (Arc<AtomicBool>, Arc<AtomicUsize>) {
    let fixed = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let (f, n) = (fixed.clone(), failed.clone());
    rx.script(move |_| {
        if f.load(Ordering::SeqCst) {
            Reply::status(200)
        } else {
            n.fetch_add(1, Ordering::SeqCst);
            Reply::status(500)
        }
    });
    (fixed, failed)
}

/// Once the failure that pauses a type is committed, no request of that
/// type starts, on any path: what was queued, waiting for a send slot, or
/// due for a retry is held. Only the requests already started finish, so
/// the receiver sees at most `pause_after` failures plus what was in
/// flight; then, resumed, it gets every event, once, in log order.
async fn a_paused_type_stops_at_once(max_in_flight: usize, n: usize) {
    let t = InProcess::start(|_| {}).await;
    let pause_after = t.config.webhooks.pause_after as usize;
    let rx = Receiver::start().await;
    let (fixed, failed) = failing_until(&rx);
    let wh = t
        .api
        .create_webhook(json!({
            "url": rx.url("/h"), "event_types": ["sent"], "max_in_flight": max_in_flight
        }))
        .await;
    let id = wh["id"].as_str().unwrap().to_string();
    let sent = record_many(&t, EventType::Sent, n).await;

    let state = wait_state(&t, &id, "sent", "paused").await;
    assert_eq!(state["pause_reason"], "consecutive_failures");
    let at_pause = failed.load(Ordering::SeqCst);
    // Everything not sent comes to rest as a job: held, not lost.
    let jobs = wait_until(
        "the webhook's deliveries to come to rest",
        DEADLINE,
        || async { at_rest(&t, &id, "sent") },
    )
    .await;
    assert_eq!(jobs, n as i64, "every event waits as a job");
    let total = failed.load(Ordering::SeqCst);
    assert!(
        total <= pause_after + max_in_flight,
        "{total} requests for a type that pauses after {pause_after} with {max_in_flight} in flight"
    );
    assert!(
        total - at_pause <= max_in_flight,
        "{} requests after the pause showed",
        total - at_pause
    );
    assert_eq!(rx.count(), total);

    fixed.store(true, Ordering::SeqCst);
    let mark = rx.count();
    // One at a time, so that arrival order is the order of sending.
    let r = t
        .api
        .patch(&format!("/v1/webhooks/{id}"), &json!({"max_in_flight": 1}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let got = wait_until("every event after the resume", DEADLINE, || async {
        let ids = delivered_ids(&rx, mark, "sent");
        (ids.len() >= n).then_some(ids)
    })
    .await;
    assert_eq!(got, sent, "every event, once, in log order");
    wait_until("the queue to empty", DEADLINE, || async {
        (at_rest(&t, &id, "sent") == Some(0)).then_some(())
    })
    .await;
    assert_eq!(rx.count(), mark + n, "nothing more");
    t.stop().await;
}

#[tokio::test]
async fn a_paused_type_stops_at_once_with_four_in_flight() {
    a_paused_type_stops_at_once(4, 300).await;
}

#[tokio::test]
async fn a_paused_type_stops_at_once_one_at_a_time() {
    a_paused_type_stops_at_once(1, 400).await;
}

/// The events of a type recorded right after its resume do not overtake
/// the held ones, whichever way it resumes. The interleaving that let them
/// is forced: the dispatcher is kept full (`max_held`) by `open`
/// deliveries that the receiver holds unanswered, across the resume and
/// the new events, so its first look at the webhook after the resume reads
/// the new events from the stream before it can lease the held ones.
async fn resume_race(resume_by_patch: bool) {
    let t = InProcess::start(|c| {
        c.webhooks.pause_after = 4;
        c.webhooks.max_held = 16;
    })
    .await;
    let rx = Receiver::start().await;
    let fixed = Arc::new(AtomicBool::new(false));
    let answer = Arc::new(tokio::sync::Semaphore::new(0));
    let (f, a) = (fixed.clone(), answer.clone());
    rx.script(move |r| match r.json()["type"].as_str() {
        Some("open") => Reply::status(200).when(&a),
        _ if f.load(Ordering::SeqCst) => Reply::status(200),
        _ => Reply::status(500),
    });
    let wh = t
        .api
        .create_webhook(json!({
            "url": rx.url("/h"), "event_types": ["sent", "open"], "max_in_flight": 1
        }))
        .await;
    let id = wh["id"].as_str().unwrap().to_string();
    // Two events fail twice each (first attempt, immediate retry): paused.
    let mut sent = record_many(&t, EventType::Sent, 2).await;
    wait_state(&t, &id, "sent", "paused").await;
    sent.extend(record_many(&t, EventType::Sent, 5).await);
    wait_until("the paused events held", DEADLINE, || async {
        (at_rest(&t, &id, "sent") == Some(7)).then_some(())
    })
    .await;

    // Fill the dispatcher: one `open` waits for its answer, the rest of
    // what it may hold is queued behind it.
    record_many(&t, EventType::Open, 40).await;
    rx.wait_for(1, DEADLINE).await;
    fixed.store(true, Ordering::SeqCst);
    let mark = rx.count();
    let r = if resume_by_patch {
        t.api
            .patch(&format!("/v1/webhooks/{id}"), &json!({"max_in_flight": 1}))
            .await
    } else {
        t.api
            .post(&format!("/v1/webhooks/{id}/resume"), &json!({}))
            .await
    };
    assert_eq!(r.status, 200, "{:?}", r.body);
    sent.extend(record_many(&t, EventType::Sent, 5).await);
    answer.add_permits(1000);

    let got = wait_until("every sent event", DEADLINE, || async {
        let ids = delivered_ids(&rx, mark, "sent");
        (ids.len() >= sent.len()).then_some(ids)
    })
    .await;
    assert_eq!(got, sent, "arrival order is log order");
    t.stop().await;
}

#[tokio::test]
async fn events_recorded_during_a_resume_keep_log_order() {
    resume_race(false).await;
}

#[tokio::test]
async fn events_recorded_during_a_change_that_resumes_keep_log_order() {
    resume_race(true).await;
}
