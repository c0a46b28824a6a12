//! The event observer is told of every event the log gains, whichever
//! write appended it, once, and only after the commit: never of a write
//! that rolled back.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tidings_types::{AccountId, EventData, EventType, NewEvent, Variant};

use super::test_support::{message, now};
use super::{events, SqliteOptions, SqliteStore};
use crate::{
    Account, CommittedEvent, EventObserver, InboundEffects, MessageStore, NewRecipient,
    OutboundResult, RecipientStatus, Store, StoreError,
};

#[derive(Default)]
struct Seen(Mutex<Vec<CommittedEvent>>);

impl EventObserver for Seen {
    fn committed(&self, events: &[CommittedEvent]) {
        self.0.lock().unwrap().extend_from_slice(events);
    }
}

impl Seen {
    fn take(&self) -> Vec<(EventType, Variant)> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .map(|e| (e.event_type, e.variant))
            .collect()
    }
}

fn event(account: AccountId, ty: EventType, extra: &[(&str, serde_json::Value)]) -> NewEvent {
    let mut d = EventData::new();
    d.insert("email".into(), json!("a@example.test"));
    for (k, v) in extra {
        d.insert((*k).into(), v.clone());
    }
    NewEvent::new(account, ty, now(), d).unwrap()
}

/// The log's events by type, read back from the table.
async fn log(s: &SqliteStore) -> Vec<(String, u64)> {
    s.read(|c| {
        let mut st = c.prepare(
            "SELECT type, COUNT(*) FROM events WHERE test = 0 GROUP BY type ORDER BY type",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn every_committed_event_is_reported_once_whichever_write_appended_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(SqliteOptions::new(dir.path().join("t.db"))).unwrap();
    let seen = Arc::new(Seen::default());
    assert!(s.observe_events(seen.clone()));
    assert!(!s.observe_events(Arc::new(Seen::default())), "one observer");
    let acc = Account {
        id: AccountId::new(),
        name: "a".into(),
        contact_email: None,
        created_at: now(),
    };
    s.create_account(&acc).await.unwrap();
    let a = acc.id;

    // The event API's own write.
    s.record_events(vec![
        event(a, EventType::Sent, &[]),
        event(a, EventType::Bounce, &[("bounce_type", json!("hard"))]),
    ])
    .await
    .unwrap();
    assert_eq!(
        seen.take(),
        [
            (EventType::Sent, Variant::None),
            (EventType::Bounce, Variant::HardBounce)
        ]
    );

    // Accepting a message: a suppressed recipient's `dropped`.
    s.add_suppression(a, "gone@x.test".into(), "unsubscribe".into(), now())
        .await
        .unwrap();
    let rcpt = |email: &str| NewRecipient {
        email: email.into(),
        dropped: event(a, EventType::Dropped, &[("reason", json!("suppressed"))]),
    };
    s.accept_message(message(a), vec![rcpt("gone@x.test"), rcpt("ok@x.test")])
        .await
        .unwrap();
    assert_eq!(seen.take(), [(EventType::Dropped, Variant::None)]);

    // An outbound outcome.
    let job = s
        .lease_outbound(now(), now() + chrono::Duration::minutes(5), 10)
        .await
        .unwrap()
        .pop()
        .expect("ok@x.test is due");
    assert!(seen.take().is_empty(), "a lease records nothing");
    s.complete_outbound(
        vec![OutboundResult {
            recipient_id: job.recipient_id,
            account_id: a,
            email: job.email,
            status: RecipientStatus::Deferred,
            retry_at: Some(now() + chrono::Duration::minutes(5)),
            response: "451 later".into(),
            event: event(a, EventType::Deferred, &[]),
            suppress: None,
            soft_failure: false,
        }],
        super::test_support::never_suppress(),
    )
    .await
    .unwrap();
    assert_eq!(seen.take(), [(EventType::Deferred, Variant::None)]);

    // An inbound report.
    s.record_inbound(
        InboundEffects {
            events: vec![event(a, EventType::Complaint, &[])],
            ..Default::default()
        },
        super::test_support::never_suppress(),
    )
    .await
    .unwrap();
    assert_eq!(seen.take(), [(EventType::Complaint, Variant::None)]);

    // Writes that roll back report nothing: one in a savepoint that fails
    // alone, and a bare one that takes its batch with it.
    let err = s
        .write(true, move |c| {
            events::record(c, vec![event(a, EventType::Open, &[])])?;
            Err::<(), _>(StoreError::Conflict("refused".into()))
        })
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))));
    let err = s
        .write_bare(true, move |c| {
            events::record(c, vec![event(a, EventType::Click, &[])])?;
            Err::<(), _>(StoreError::Conflict("refused".into()))
        })
        .await;
    assert!(err.is_err());
    assert!(
        seen.take().is_empty(),
        "rolled-back events are not reported"
    );

    let log = log(&s).await;
    let expected =
        ["bounce", "complaint", "deferred", "dropped", "sent"].map(|t| (t.to_string(), 1));
    assert_eq!(log, expected, "the log holds what was reported");
}
