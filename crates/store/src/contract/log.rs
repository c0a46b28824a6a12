//! The contract of the event log: one transaction per method, the log
//! read back in commit order up to the durable head, and accounts kept
//! apart.

use std::collections::HashSet;

use tidings_types::{ApiKeyId, EventId, EventType, NewEvent};

use super::{account, minutes, now, record, webhook, Fresh};
use crate::messages::*;
use crate::model::*;
use crate::{StoreError, IDEMPOTENCY_KEY_TAKEN};

/// A small message of `account` to `to`.
pub(crate) fn message(account: tidings_types::AccountId) -> NewMessage {
    NewMessage {
        id: tidings_types::MessageId::new(),
        account_id: account,
        created_at: now(),
        source: Source::Http,
        mail_from: "app@x.test".into(),
        from: "app@x.test".into(),
        subject: None,
        smtp_message_id: format!("<{}@x.test>", ulid::Ulid::new()),
        custom_id: None,
        group: None,
        tags: vec![],
        track_opens: false,
        track_clicks: false,
        track_unsubscribe: None,
        tracking_base: None,
        raw: bytes::Bytes::from_static(b"Subject: x\r\n\r\nhi\r\n"),
        idempotency: None,
    }
}

pub(crate) fn recipient(account: tidings_types::AccountId, email: &str) -> NewRecipient {
    let mut data = tidings_types::EventData::new();
    data.insert("email".into(), email.into());
    NewRecipient {
        email: email.into(),
        dropped: NewEvent::new(account, EventType::Dropped, now(), data).unwrap(),
    }
}

fn key(key: &str) -> IdempotencyKey {
    IdempotencyKey {
        key: key.into(),
        fingerprint: "f".into(),
        expired_before: now() - minutes(60),
    }
}

/// An event and the delivery it causes are committed by one call and
/// read back together; so are a message, its dropped recipient and the
/// `dropped` event.
pub async fn one_transaction_per_method(fresh: Fresh) {
    let (s, m) = (&*fresh.store, &*fresh.messages);
    let a = account(s, "a").await;
    let w = webhook(a, &[EventType::Click], now());
    s.create_webhook(&w, None, None).await.unwrap();
    record(s, a, &[EventType::Click, EventType::Open], now()).await;
    let log = s.events_after(a, 0, 10).await.unwrap();
    assert_eq!(log.len(), 2, "both events of the call");
    assert_eq!(log[1].seq, log[0].seq + 1, "committed together");
    let stream = s.stream(w.id, 0, 10).await.unwrap();
    let jobs: Vec<i64> = stream
        .iter()
        .filter(|i| i.job.is_some())
        .map(|i| i.seq)
        .collect();
    assert_eq!(jobs, [log[0].seq], "the click is the webhook's to deliver");

    m.add_suppression(a, "gone@y.test".into(), "manual".into(), now())
        .await
        .unwrap();
    let msg = message(a);
    let id = msg.id;
    let dropped = m
        .accept_message(
            msg,
            vec![recipient(a, "ok@y.test"), recipient(a, "gone@y.test")],
        )
        .await
        .unwrap();
    assert_eq!(dropped, ["gone@y.test"]);
    let stored = m.get_message(a, id).await.unwrap();
    let states: Vec<_> = stored.recipients.iter().map(|r| r.status).collect();
    assert_eq!(states, [RecipientStatus::Queued, RecipientStatus::Dropped]);
    let log = s.events_after(a, 0, 10).await.unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[2].event_type, EventType::Dropped);
}

/// A method that refuses (here: an `Idempotency-Key` already taken)
/// leaves nothing of what it would have written.
pub async fn a_failing_method_leaves_nothing_half_written(fresh: Fresh) {
    let (s, m) = (&*fresh.store, &*fresh.messages);
    let a = account(s, "a").await;
    let t0 = now() - minutes(5);
    record(s, a, &[EventType::Open, EventType::Open], t0).await;
    let first = webhook(a, &[EventType::Open], now());
    let backfilled = s
        .create_webhook(&first, Some(t0), Some(key("k1")))
        .await
        .unwrap();
    assert_eq!(backfilled, 2);
    let before = s.queue_stats(now()).await.unwrap();

    let second = webhook(a, &[EventType::Open], now());
    let refused = s.create_webhook(&second, Some(t0), Some(key("k1"))).await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m == IDEMPOTENCY_KEY_TAKEN),
        "{refused:?}"
    );
    assert!(matches!(
        s.get_webhook(a, second.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.list_webhooks(a).await.unwrap().len(), 1);
    assert_eq!(
        s.queue_stats(now()).await.unwrap(),
        before,
        "no backfill of the refused webhook"
    );

    m.add_suppression(a, "gone@y.test".into(), "manual".into(), now())
        .await
        .unwrap();
    let mut msg = message(a);
    msg.idempotency = Some(key("k2"));
    m.accept_message(msg, vec![recipient(a, "ok@y.test")])
        .await
        .unwrap();
    let mut again = message(a);
    again.idempotency = Some(key("k2"));
    let id = again.id;
    let refused = m
        .accept_message(again, vec![recipient(a, "gone@y.test")])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert!(matches!(
        m.get_message(a, id).await,
        Err(StoreError::NotFound)
    ));
    let log = s.events_after(a, 0, 100).await.unwrap();
    assert!(
        log.iter().all(|e| e.event_type != EventType::Dropped),
        "no dropped event of the refused message"
    );
}

/// Many writers at once: a poller following the log by its cursor sees
/// every event exactly once, in commit order, never skipping one that
/// commits later with a lower position.
pub async fn the_log_reads_back_in_commit_order_across_concurrent_writers(fresh: Fresh) {
    const WRITERS: usize = 8;
    const WRITES: usize = 40;
    let s = fresh.store.clone();
    let a = account(&*s, "a").await;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let s = s.clone();
        writers.spawn(async move {
            for i in 0..WRITES {
                let n = 1 + (w + i) % 3;
                record(&*s, a, &vec![EventType::Open; n], now()).await;
            }
        });
    }
    let total: usize = (0..WRITERS)
        .flat_map(|w| (0..WRITES).map(move |i| 1 + (w + i) % 3))
        .sum();
    let poller = {
        let s = s.clone();
        tokio::spawn(async move {
            let (mut cursor, mut seen) = (0, Vec::new());
            while seen.len() < total {
                let page = s.events_after(a, cursor, 17).await.unwrap();
                if let Some(last) = page.last() {
                    cursor = last.seq;
                } else {
                    tokio::task::yield_now().await;
                }
                seen.extend(page.into_iter().map(|e| (e.seq, e.id)));
            }
            seen
        })
    };
    while let Some(w) = writers.join_next().await {
        w.unwrap();
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(30), poller)
        .await
        .expect("the poller saw every event")
        .unwrap();
    assert_eq!(seen.len(), total);
    assert!(seen.windows(2).all(|p| p[0].0 < p[1].0), "in commit order");
    let ids: HashSet<EventId> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), total, "no duplicate");
    let all = s.events_after(a, 0, total as u32 + 10).await.unwrap();
    let again: Vec<_> = all.iter().map(|e| (e.seq, e.id)).collect();
    assert_eq!(again, seen, "one read of the whole log says the same");
}

/// Whatever an account asks, it never gets another account's objects,
/// and never changes them.
pub async fn no_method_answers_with_another_accounts_objects(fresh: Fresh) {
    let (s, m) = (&*fresh.store, &*fresh.messages);
    let (a, b) = (account(s, "a").await, account(s, "b").await);
    let (wa, wb) = (
        webhook(a, &[EventType::Open], now()),
        webhook(b, &[EventType::Open], now()),
    );
    s.create_webhook(&wa, None, None).await.unwrap();
    s.create_webhook(&wb, None, None).await.unwrap();
    record(s, a, &[EventType::Open], now()).await;
    record(s, b, &[EventType::Open], now()).await;
    let b_event = s.events_after(b, 0, 10).await.unwrap()[0].clone();
    let b_msg = message(b);
    let b_msg_id = b_msg.id;
    m.accept_message(b_msg, vec![recipient(b, "r@y.test")])
        .await
        .unwrap();
    m.add_suppression(b, "s@y.test".into(), "manual".into(), now())
        .await
        .unwrap();
    let b_key = ApiKeyRecord {
        id: ApiKeyId::new(),
        account_id: b,
        name: "k".into(),
        prefix: "tk_b".into(),
        created_at: now(),
    };
    s.create_api_key(&b_key, [7; 32]).await.unwrap();
    let item = s.stream(wb.id, 0, 10).await.unwrap().remove(0);
    let delivered = super::outcome(item.job.as_ref().unwrap(), Next::Done, now());
    super::complete(
        s,
        vec![delivered],
        vec![],
        (wb.id, item.seq),
        super::never_pause(),
    )
    .await;

    let log = s.events_after(a, 0, 100).await.unwrap();
    assert!(log.iter().all(|e| e.account_id == a), "{log:?}");
    assert!(matches!(
        s.get_event(a, b_event.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.get_webhook(a, wb.id).await,
        Err(StoreError::NotFound)
    ));
    let hooks: Vec<_> = s.list_webhooks(a).await.unwrap();
    assert_eq!(hooks.iter().map(|w| w.id).collect::<Vec<_>>(), [wa.id]);
    assert!(matches!(
        s.delete_webhook(a, wb.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.load_webhook(wb.id).await.is_ok(), "b's webhook stays");
    let filter = AttemptFilter {
        limit: 100,
        ..Default::default()
    };
    assert!(s.list_attempts(a, &filter).await.unwrap().is_empty());
    assert_eq!(s.list_attempts(b, &filter).await.unwrap().len(), 1);
    assert!(s.list_api_keys(a).await.unwrap().is_empty());
    assert!(matches!(
        s.revoke_api_key(a, b_key.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        s.find_api_key([7; 32]).await.unwrap().is_some(),
        "b's key stays"
    );

    assert!(matches!(
        m.get_message(a, b_msg_id).await,
        Err(StoreError::NotFound)
    ));
    assert!(m.message_events(a, b_msg_id).await.unwrap().is_empty());
    assert!(m.list_suppressions(a, None, 100).await.unwrap().is_empty());
    assert!(matches!(
        m.get_suppression(a, "s@y.test".into()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        m.remove_suppression(a, "s@y.test".into()).await,
        Err(StoreError::NotFound)
    ));
    assert!(m.get_suppression(b, "s@y.test".into()).await.is_ok());
}
