//! The live stream: what a webhook reads from the log, how far it is
//! settled, and what becomes a job. Each check reopens the store where it
//! matters, since what is settled must survive a restart.

use crate::contract::outcome;
use std::sync::Arc;

use chrono::{Duration, Utc};
use tidings_types::{
    AccountId, EventType, NewEvent, Timestamp, Webhook, WebhookFormat, WebhookId, WebhookSecret,
    WebhookSettings,
};

use super::{SqliteOptions, SqliteStore};
use crate::model::*;
use crate::Store;

fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(dir.join("t.db"))).unwrap()
}

fn webhook(account: AccountId, types: &[EventType], now: Timestamp) -> Webhook {
    Webhook {
        id: WebhookId::new(),
        account_id: account,
        settings: WebhookSettings {
            url: "http://127.0.0.1:9/h".parse().unwrap(),
            event_types: types.to_vec(),
            format: WebhookFormat::Json,
            fields: None,
            headers: Default::default(),
            description: None,
            max_in_flight: 1,
            max_per_second: None,
            batch: None,
        },
        secret: WebhookSecret::generate(),
        previous_secret: None,
        created_at: now,
        updated_at: now,
    }
}

async fn record(s: &SqliteStore, account: AccountId, types: &[EventType], at: Timestamp) {
    let events = types
        .iter()
        .map(|t| NewEvent::new(account, *t, at, Default::default()).unwrap())
        .collect();
    s.record_events(events).await.unwrap();
}

/// Commit a batch as the dispatcher's completer does: outcomes, holds,
/// and how far the webhook's stream is now settled.
async fn complete(
    s: &SqliteStore,
    outcomes: Vec<JobOutcome>,
    holds: Vec<Hold>,
    settled: (WebhookId, i64),
) {
    let done = Completion {
        outcomes,
        holds,
        unleases: vec![],
        settled: vec![settled],
    };
    s.complete_jobs(Arc::new(done), super::test_support::never_pause())
        .await
        .unwrap();
}

/// Pause every type of the webhook as the failure rule does: the types,
/// and the jobs they have.
async fn pause(s: &SqliteStore, webhook: WebhookId) {
    s.write(false, move |c| {
        c.execute(
            "UPDATE webhook_types SET paused = 1 WHERE webhook_id = ?1",
            [webhook.to_string()],
        )?;
        c.execute(
            "UPDATE jobs SET held = 1 WHERE webhook_id = ?1",
            [webhook.to_string()],
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

/// A click webhook whose first event failed and waits for its retry,
/// then the type paused. Returns the event's seq.
async fn failed_then_paused(s: &SqliteStore, t0: Timestamp) -> (AccountId, Webhook, i64) {
    let account = AccountId::new();
    let w = webhook(account, &[EventType::Click], t0);
    s.create_webhook(&w, None, None).await.unwrap();
    record(s, account, &[EventType::Click], t0).await;
    let first = s.stream(w.id, 0, 10).await.unwrap();
    let job = first[0].job.clone().unwrap();
    let retry = Next::RetryAt(t0 + Duration::seconds(30));
    complete(
        s,
        vec![outcome(&job, retry, t0)],
        vec![],
        (w.id, first[0].seq),
    )
    .await;
    pause(s, w.id).await;
    (account, w, first[0].seq)
}

/// The events of the jobs due at `now`, in the order they are leased.
async fn leased_seqs(s: &SqliteStore, now: Timestamp) -> Vec<i64> {
    let until = now + Duration::seconds(60);
    let jobs = s.lease_jobs(now, until, 10, &[]).await.unwrap();
    jobs.iter().map(|j| j.event.seq).collect()
}

/// The hold the dispatcher sends for a stream item of a paused type.
fn hold(webhook: WebhookId, item: &StreamItem, at: Timestamp) -> Hold {
    Hold {
        webhook_id: webhook,
        event_seq: item.seq,
        event_type: EventType::Click,
        at,
    }
}

#[tokio::test]
async fn a_stream_starts_at_the_end_of_the_log_and_steps_over_other_types() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let account = AccountId::new();
    let now = Utc::now();
    // Before the webhook: backfill's business, not the stream's.
    record(&s, account, &[EventType::Open], now).await;
    let w = webhook(account, &[EventType::Open], now);
    s.create_webhook(&w, None, None).await.unwrap();
    let [head] = s.stream_heads().await.unwrap()[..] else {
        panic!("one stream")
    };
    record(&s, account, &[EventType::Sent, EventType::Open], now).await;

    let items = s.stream(w.id, head.settled, 10).await.unwrap();
    assert_eq!(items.len(), 2, "only what came after the webhook");
    assert!(
        items[0].job.is_none(),
        "a sent event only moves the stream on"
    );
    let open = items[1].job.as_ref().expect("the open is delivered");
    assert_eq!(
        (open.event.event_type, open.job_id, open.attempts),
        (EventType::Open, None, 0)
    );
    assert!(!items[1].hold);
    assert!(items[0].seq < items[1].seq);
    let stats = s.queue_stats(now).await.unwrap();
    assert_eq!((stats.pending, stats.held), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn settling_survives_a_restart_and_a_failure_becomes_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let account = AccountId::new();
    let now = Utc::now();
    let w = webhook(account, &[EventType::Open], now);
    {
        let s = open(dir.path());
        s.create_webhook(&w, None, None).await.unwrap();
        record(&s, account, &[EventType::Open, EventType::Open], now).await;
        let items = s.stream(w.id, 0, 10).await.unwrap();
        let [first, second] = &items[..] else {
            panic!("two events")
        };
        let (a, b) = (first.job.as_ref().unwrap(), second.job.as_ref().unwrap());
        let outcomes = vec![
            outcome(a, Next::Done, now),
            outcome(b, Next::RetryAt(now + Duration::seconds(30)), now),
        ];
        complete(&s, outcomes, vec![], (w.id, second.seq)).await;
    }
    let s = open(dir.path());
    let heads = s.stream_heads().await.unwrap();
    assert_eq!(heads.len(), 1);
    assert!(
        s.stream(w.id, heads[0].settled, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing left to read after a restart"
    );
    let later = now + Duration::seconds(31);
    let jobs = s
        .lease_jobs(later, later + Duration::seconds(60), 10, &[])
        .await
        .unwrap();
    let [retry] = &jobs[..] else {
        panic!("the failed event is a job: {jobs:?}")
    };
    assert_eq!((retry.attempts, retry.kind), (1, JobKind::Live));
    assert!(retry.job_id.is_some());
}

#[tokio::test]
async fn events_of_a_paused_type_are_held_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let account = AccountId::new();
    let now = Utc::now();
    let w = webhook(account, &[EventType::Click], now);
    s.create_webhook(&w, None, None).await.unwrap();
    pause(&s, w.id).await;
    record(&s, account, &[EventType::Click], now).await;
    let items = s.stream(w.id, 0, 10).await.unwrap();
    assert!(items[0].hold, "the stream says the type is paused");
    let held = hold(w.id, &items[0], now);
    complete(&s, vec![], vec![held], (w.id, items[0].seq)).await;
    let stats = s.queue_stats(now).await.unwrap();
    assert_eq!((stats.pending, stats.held), (1, 1), "{stats:?}");
    let until = now + Duration::seconds(60);
    let held = s.lease_jobs(now, until, 10, &[]).await.unwrap();
    assert!(held.is_empty(), "held while paused");
    s.resume_webhook(account, w.id, &[], now).await.unwrap();
    let jobs = s.lease_jobs(now, until, 10, &[]).await.unwrap();
    assert_eq!(jobs.len(), 1, "due once resumed");
    assert_eq!(jobs[0].attempts, 0);
}

/// A hold read while its type was paused but committed after the type
/// resumed does not overtake the type's earlier events that the resume
/// made due: they go out in log order.
#[tokio::test]
async fn a_hold_that_lands_after_the_resume_keeps_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let t0 = Utc::now();
    let (account, w, first) = failed_then_paused(&s, t0).await;
    // A second event is read as paused; the resume commits before its hold.
    record(&s, account, &[EventType::Click], t0).await;
    let second = s.stream(w.id, first, 10).await.unwrap();
    assert!(second[0].hold);
    let resumed_at = t0 + Duration::seconds(5);
    s.resume_webhook(account, w.id, &[], resumed_at)
        .await
        .unwrap();
    let held = hold(w.id, &second[0], t0);
    complete(&s, vec![], vec![held], (w.id, second[0].seq)).await;
    let order = leased_seqs(&s, resumed_at).await;
    assert_eq!(order, [first, second[0].seq], "log order");
}

/// An event recorded while its type was paused, but first read from the
/// stream after the resume, is held rather than sent live: it goes out
/// after the older events the resume released, not before them. So is one
/// recorded after the resume while what it released waits to be leased.
#[tokio::test]
async fn an_event_from_before_the_resume_read_after_it_queues_behind_the_released() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let t0 = Utc::now();
    let (account, w, first) = failed_then_paused(&s, t0).await;
    // Recorded while paused; the resume commits before the stream reads it.
    record(&s, account, &[EventType::Click], t0).await;
    let resumed_at = t0 + Duration::seconds(5);
    s.resume_webhook(account, w.id, &[], resumed_at)
        .await
        .unwrap();
    record(&s, account, &[EventType::Click], resumed_at).await;
    let items = s.stream(w.id, first, 10).await.unwrap();
    let held: Vec<bool> = items.iter().map(|i| i.hold).collect();
    assert_eq!(held, [true, true], "both wait behind the released event");
    let holds = vec![hold(w.id, &items[0], t0), hold(w.id, &items[1], resumed_at)];
    complete(&s, vec![], holds, (w.id, items[1].seq)).await;
    let order = leased_seqs(&s, resumed_at).await;
    assert_eq!(order, [first, items[0].seq, items[1].seq], "log order");
}

/// Recorded after a resume, an event is held while anything the resume
/// released (or that queued behind it) waits to be leased, however late
/// it is read; once all of that is leased, the type streams live again.
#[tokio::test]
async fn events_after_a_resume_queue_until_what_it_released_is_leased() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let t0 = Utc::now();
    let (account, w, first) = failed_then_paused(&s, t0).await;
    let resumed_at = t0 + Duration::seconds(5);
    s.resume_webhook(account, w.id, &[], resumed_at)
        .await
        .unwrap();
    record(&s, account, &[EventType::Click], resumed_at).await;
    let a = s.stream(w.id, first, 10).await.unwrap();
    assert!(a[0].hold, "the released event is not leased yet");
    complete(
        &s,
        vec![],
        vec![hold(w.id, &a[0], resumed_at)],
        (w.id, a[0].seq),
    )
    .await;
    // Read after the first hold landed: it queues behind that one too.
    record(&s, account, &[EventType::Click], resumed_at).await;
    let b = s.stream(w.id, a[0].seq, 10).await.unwrap();
    assert!(b[0].hold, "behind the event that queued");
    complete(
        &s,
        vec![],
        vec![hold(w.id, &b[0], resumed_at)],
        (w.id, b[0].seq),
    )
    .await;
    let later = resumed_at + Duration::seconds(1);
    assert_eq!(leased_seqs(&s, later).await, [first, a[0].seq, b[0].seq]);
    record(&s, account, &[EventType::Click], later).await;
    let c = s.stream(w.id, b[0].seq, 10).await.unwrap();
    assert!(!c[0].hold, "everything older is in the dispatcher's hands");
}

/// A leased job the dispatcher gives back unsent, because its type paused
/// after the lease, is held without an attempt counted, and on resume it
/// goes out in log order with the rest.
#[tokio::test]
async fn a_job_given_back_unsent_is_held_and_keeps_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let t0 = Utc::now();
    let account = AccountId::new();
    let w = webhook(account, &[EventType::Click], t0);
    s.create_webhook(&w, None, None).await.unwrap();
    record(&s, account, &[EventType::Click, EventType::Click], t0).await;
    let items = s.stream(w.id, 0, 10).await.unwrap();
    let fail = |i: usize| outcome(items[i].job.as_ref().unwrap(), Next::RetryAt(t0), t0);
    complete(&s, vec![fail(0), fail(1)], vec![], (w.id, items[1].seq)).await;
    let jobs = s
        .lease_jobs(t0, t0 + Duration::seconds(60), 10, &[])
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
    pause(&s, w.id).await;
    let give_back = |j: &LeasedJob| Unlease {
        job_id: j.job_id.unwrap(),
        webhook_id: w.id,
        event_type: EventType::Click,
        at: t0,
    };
    let done = Completion {
        unleases: jobs.iter().rev().map(give_back).collect(),
        ..Default::default()
    };
    let summary = s
        .complete_jobs(Arc::new(done), super::test_support::never_pause())
        .await
        .unwrap();
    assert!(summary.active.is_empty(), "still paused");
    let later = t0 + Duration::seconds(120);
    assert!(
        leased_seqs(&s, later).await.is_empty(),
        "held, lease or not"
    );
    let resumed_at = later + Duration::seconds(1);
    s.resume_webhook(account, w.id, &[], resumed_at)
        .await
        .unwrap();
    let again = s
        .lease_jobs(resumed_at, resumed_at + Duration::seconds(60), 10, &[])
        .await
        .unwrap();
    let seqs: Vec<i64> = again.iter().map(|j| j.event.seq).collect();
    assert_eq!(seqs, [items[0].seq, items[1].seq], "log order");
    assert!(again.iter().all(|j| j.attempts == 1), "no attempt counted");
    // Given back after the resume: due with what the resume released.
    let done = Completion {
        unleases: vec![give_back(&again[1])],
        ..Default::default()
    };
    let summary = s
        .complete_jobs(Arc::new(done), super::test_support::never_pause())
        .await
        .unwrap();
    assert_eq!(
        summary.active.len(),
        1,
        "resumed: the dispatcher may send it"
    );
    assert_eq!(leased_seqs(&s, resumed_at).await, [items[1].seq]);
}

#[tokio::test]
async fn log_activity_names_the_accounts_with_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let (a, b, c) = (AccountId::new(), AccountId::new(), AccountId::new());
    let now = Utc::now();
    record(&s, a, &[EventType::Sent], now).await;
    let start = s.log_activity(i64::MAX).await.unwrap();
    assert!(start.accounts.is_empty(), "past the head: nothing");
    record(&s, b, &[EventType::Open, EventType::Open], now).await;
    record(&s, c, &[EventType::Click], now).await;
    let next = s.log_activity(start.head).await.unwrap();
    let mut got = next.accounts.clone();
    got.sort_by_key(|x| x.to_string());
    let mut want = vec![b, c];
    want.sort_by_key(|x| x.to_string());
    assert_eq!(got, want, "only the accounts after the head asked about");
    assert_eq!(next.head, start.head + 3);
    let idle = s.log_activity(next.head).await.unwrap();
    assert_eq!((idle.head, idle.accounts.len()), (next.head, 0));
}

#[tokio::test]
async fn a_type_taken_later_is_delivered_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let account = AccountId::new();
    let now = Utc::now();
    let mut w = webhook(account, &[EventType::Open], now);
    s.create_webhook(&w, None, None).await.unwrap();
    record(&s, account, &[EventType::Sent], now).await;
    w.settings.event_types.push(EventType::Sent);
    s.update_webhook(&w, false, now).await.unwrap();
    record(&s, account, &[EventType::Sent], now).await;
    let items = s.stream(w.id, 0, 10).await.unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items[0].job.is_none(),
        "a sent event from before the webhook took the type is not delivered"
    );
    assert!(items[1].job.is_some(), "one from after it is");
    let stats = s.queue_stats(now).await.unwrap();
    assert_eq!(stats.pending, 1, "{stats:?}");
}
