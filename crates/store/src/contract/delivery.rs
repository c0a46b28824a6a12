//! The contract of webhook delivery: streams settle in order, leases
//! expire, paused types hold their events and release them in order,
//! pruning keeps what is unsettled, and the pause rule is applied to the
//! failures the store counts.

use tidings_types::EventType;

use super::{
    account, complete, minutes, never_pause, now, outcome, record, webhook, Fresh, PausesOn,
};
use crate::model::*;
use crate::FailureFacts;

/// A webhook's stream hands out its events in log order; completing a
/// batch settles the stream there (never backwards), and the next read
/// starts after it.
pub async fn a_stream_settles_in_order_and_completion_moves_its_head(fresh: Fresh) {
    let s = &*fresh.store;
    let a = account(s, "a").await;
    let w = webhook(a, &[EventType::Open], now());
    s.create_webhook(&w, None, None).await.unwrap();
    record(s, a, &[EventType::Open; 3], now()).await;
    let items = s.stream(w.id, 0, 10).await.unwrap();
    let seqs: Vec<i64> = items.iter().map(|i| i.seq).collect();
    assert_eq!(seqs.len(), 3);
    assert!(
        seqs.windows(2).all(|p| p[0] < p[1]),
        "in log order: {seqs:?}"
    );
    assert!(items.iter().all(|i| i.job.is_some() && !i.hold));

    let done = vec![
        outcome(items[0].job.as_ref().unwrap(), Next::Done, now()),
        outcome(items[1].job.as_ref().unwrap(), Next::Done, now()),
    ];
    complete(s, done, vec![], (w.id, seqs[1]), never_pause()).await;
    let head = |heads: Vec<StreamHead>| {
        heads
            .into_iter()
            .find(|h| h.webhook_id == w.id)
            .map(|h| h.settled)
    };
    assert_eq!(head(s.stream_heads().await.unwrap()), Some(seqs[1]));
    let rest = s.stream(w.id, seqs[1], 10).await.unwrap();
    assert_eq!(rest.iter().map(|i| i.seq).collect::<Vec<_>>(), [seqs[2]]);

    complete(s, vec![], vec![], (w.id, seqs[0]), never_pause()).await;
    assert_eq!(
        head(s.stream_heads().await.unwrap()),
        Some(seqs[1]),
        "a stream never settles backwards"
    );
}

/// A leased job is not handed out again while its lease lasts; once it
/// runs out (its worker died), it is.
pub async fn a_leased_job_is_leased_again_only_once_its_lease_runs_out(fresh: Fresh) {
    let s = &*fresh.store;
    let a = account(s, "a").await;
    let t0 = now() - minutes(10);
    record(s, a, &[EventType::Open, EventType::Open], t0).await;
    let w = webhook(a, &[EventType::Open], now());
    s.create_webhook(&w, None, None).await.unwrap();
    let t = now();
    let n = s
        .replay(a, w.id, t0, t, &[EventType::Open], t)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let ids = |jobs: Vec<LeasedJob>| {
        let mut ids: Vec<_> = jobs.into_iter().map(|j| j.job_id).collect();
        ids.sort();
        ids
    };
    let leased = ids(s.lease_jobs(t, t + minutes(1), 10, &[]).await.unwrap());
    assert_eq!(leased.len(), 2);
    let meanwhile = s
        .lease_jobs(t + chrono::Duration::seconds(30), t + minutes(2), 10, &[])
        .await
        .unwrap();
    assert!(meanwhile.is_empty(), "leased until the lease runs out");
    let expired = t + minutes(1) + chrono::Duration::seconds(1);
    let again = ids(s
        .lease_jobs(expired, expired + minutes(1), 10, &[])
        .await
        .unwrap());
    assert_eq!(again, leased, "due again once the lease ran out");
}

/// A type paused (by the rule, on a `410`) holds its events, the one that
/// paused it included; a resume releases them, in their log order.
pub async fn a_paused_type_holds_its_events_and_resume_releases_them_in_order(fresh: Fresh) {
    let s = &*fresh.store;
    let a = account(s, "a").await;
    let t = now();
    let w = webhook(a, &[EventType::Click], t);
    s.create_webhook(&w, None, None).await.unwrap();
    record(s, a, &[EventType::Click], t).await;
    let first = s.stream(w.id, 0, 10).await.unwrap().remove(0);
    let gone = PausesOn::facts(Some(FailureFacts {
        consecutive_failures: 1,
        gone: true,
    }));
    let job = first.job.as_ref().unwrap();
    let summary = complete(
        s,
        vec![outcome(job, Next::Gone, t)],
        vec![],
        (w.id, first.seq),
        gone,
    )
    .await;
    assert_eq!(
        summary.paused,
        [(w.id, EventType::Click, PauseReason::Gone)]
    );

    record(s, a, &[EventType::Click], t).await;
    record(s, a, &[EventType::Click], t).await;
    let later = s.stream(w.id, first.seq, 10).await.unwrap();
    assert_eq!(later.len(), 2);
    assert!(
        later.iter().all(|i| i.hold),
        "held while the type is paused"
    );
    let holds = later
        .iter()
        .map(|i| Hold {
            webhook_id: w.id,
            event_seq: i.seq,
            event_type: EventType::Click,
            at: t,
        })
        .collect();
    complete(s, vec![], holds, (w.id, later[1].seq), never_pause()).await;
    let until = t + minutes(1);
    assert!(
        s.lease_jobs(t, until, 10, &[]).await.unwrap().is_empty(),
        "nothing goes out while paused"
    );

    let resumed = s.resume_webhook(a, w.id, &[], t).await.unwrap();
    assert_eq!(resumed, [EventType::Click]);
    let released: Vec<i64> = s
        .lease_jobs(t, until, 10, &[])
        .await
        .unwrap()
        .iter()
        .map(|j| j.event.seq)
        .collect();
    assert_eq!(released, [first.seq, later[0].seq, later[1].seq]);
}

/// Events past retention go, unless a stream has not settled them.
pub async fn pruning_keeps_what_a_stream_has_not_settled(fresh: Fresh) {
    let s = &*fresh.store;
    let account = tidings_types::AccountId::new();
    let old = chrono::Utc::now() - chrono::Duration::days(40);
    let w = webhook(account, &[EventType::Open], old);
    s.create_webhook(&w, None, None).await.unwrap();
    record(s, account, &[EventType::Open, EventType::Open], old).await;
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);
    assert_eq!(s.prune(cutoff).await.unwrap().events, 0, "both unsettled");
    let items = s.stream(w.id, 0, 1).await.unwrap();
    let delivered = outcome(items[0].job.as_ref().unwrap(), Next::Done, old);
    complete(
        s,
        vec![delivered],
        vec![],
        (w.id, items[0].seq),
        never_pause(),
    )
    .await;
    assert_eq!(s.prune(cutoff).await.unwrap().events, 1, "the settled one");
}

/// The store counts a type's failures in a row (a delivery starts over)
/// and pauses it exactly when the rule says so.
pub async fn the_pause_rule_is_applied_to_the_consecutive_failures_counted(fresh: Fresh) {
    let s = &*fresh.store;
    let a = account(s, "a").await;
    let t = now();
    let w = webhook(a, &[EventType::Open], t);
    s.create_webhook(&w, None, None).await.unwrap();
    record(s, a, &[EventType::Open; 6], t).await;
    let items = s.stream(w.id, 0, 10).await.unwrap();
    let retry = Next::RetryAt(t + minutes(5));
    let plan = [retry, retry, Next::Done, retry, retry, retry];
    let outcomes = items
        .iter()
        .zip(plan)
        .map(|(i, next)| outcome(i.job.as_ref().unwrap(), next, t))
        .collect();
    let third = FailureFacts {
        consecutive_failures: 3,
        gone: false,
    };
    let rule = PausesOn::facts(Some(third));
    let summary = complete(s, outcomes, vec![], (w.id, items[5].seq), rule.clone()).await;
    let counted: Vec<u32> = rule
        .asked()
        .iter()
        .map(|f| f.consecutive_failures)
        .collect();
    assert_eq!(counted, [1, 2, 1, 2, 3], "a delivery starts the count over");
    assert_eq!(
        summary.paused,
        [(w.id, EventType::Open, PauseReason::ConsecutiveFailures)]
    );
    let state = s.webhook_status(a, w.id).await.unwrap();
    let open = state
        .iter()
        .find(|t| t.event_type == EventType::Open)
        .unwrap();
    assert!(open.paused);
    assert_eq!(open.pause_reason, Some(PauseReason::ConsecutiveFailures));
    assert_eq!(open.consecutive_failures, 3);
}
