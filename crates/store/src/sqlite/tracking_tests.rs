//! Per-account tracking settings, and what messages remember of them,
//! including messages stored before either existed.

use rusqlite::{params, Connection};
use tidings_types::{AccountId, MessageId};

use super::test_support::{self, now};
use super::{schema, SqliteOptions, SqliteStore};
use crate::{
    Account, AccountTracking, AccountTrackingPatch, MessageStore, NewMessage, Store, StoreError,
};

async fn account(s: &SqliteStore) -> AccountId {
    let a = Account {
        id: AccountId::new(),
        name: "a".into(),
        contact_email: None,
        created_at: now(),
    };
    s.create_account(&a).await.unwrap();
    a.id
}

/// A small message of `account` that tracks opens and clicks and says
/// nothing of unsubscribe or a tracking domain.
fn message(account: AccountId) -> NewMessage {
    NewMessage {
        mail_from: "a@x.test".into(),
        from: "a@x.test".into(),
        track_opens: true,
        track_clicks: true,
        ..test_support::message(account)
    }
}

#[tokio::test]
async fn settings_default_patch_partially_and_stay_per_account() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(SqliteOptions::new(dir.path().join("t.db"))).unwrap();
    let (a, b) = (account(&s).await, account(&s).await);
    assert_eq!(
        s.account_tracking(a).await.unwrap(),
        AccountTracking::default()
    );

    let patch = AccountTrackingPatch {
        opens: Some(false),
        domain: Some(Some("https://t.example".into())),
        ..Default::default()
    };
    let after = s.update_account_tracking(a, patch, now()).await.unwrap();
    let want = AccountTracking {
        opens: false,
        clicks: true,
        unsubscribe: None,
        domain: Some("https://t.example".into()),
        domain_verified_at: None,
    };
    assert_eq!(after, want);
    assert_eq!(s.account_tracking(a).await.unwrap(), want);

    let patch = AccountTrackingPatch {
        unsubscribe: Some(Some(true)),
        domain: Some(None),
        ..Default::default()
    };
    let after = s.update_account_tracking(a, patch, now()).await.unwrap();
    assert_eq!(
        after,
        AccountTracking {
            unsubscribe: Some(true),
            domain: None,
            ..want
        }
    );
    assert_eq!(
        s.account_tracking(b).await.unwrap(),
        AccountTracking::default()
    );
    let unknown = s
        .update_account_tracking(AccountId::new(), AccountTrackingPatch::default(), now())
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
}

#[tokio::test]
async fn messages_remember_their_tracking_and_older_ones_read_as_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    // A database as it was before the tracking settings migration, with
    // one message in it.
    let old_id = MessageId::new();
    let account = AccountId::new();
    {
        let c = Connection::open(&path).unwrap();
        let before = schema::MIGRATIONS
            .iter()
            .position(|sql| sql.contains("CREATE TABLE account_tracking"))
            .unwrap();
        for sql in &schema::MIGRATIONS[..before] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", before as i64)
            .unwrap();
        c.execute(
            "INSERT INTO messages (id, account_id, created_at, source, mail_from, from_addr,
               smtp_message_id, tags, track_opens, track_clicks, raw)
             VALUES (?1, ?2, 0, 'http', 'a@x.test', 'a@x.test', '<m@x>', '[]', 1, 0, x'00')",
            params![old_id.to_string(), account.to_string()],
        )
        .unwrap();
        // A recipient that opened it, counted on its row as it then was.
        c.execute(
            "INSERT INTO recipients (id, message_id, account_id, email, status, updated_at, opens)
             VALUES (1, ?1, ?2, 'r@y.test', 'sent', 0, 3)",
            params![old_id.to_string(), account.to_string()],
        )
        .unwrap();
    }
    let s = SqliteStore::open(SqliteOptions::new(&path)).unwrap();
    let old = s.get_message(account, old_id).await.unwrap();
    assert_eq!((old.track_opens, old.track_clicks), (true, false));
    assert_eq!((old.track_unsubscribe, old.tracking_base), (None, None));
    // Every later migration ran over it, the count's column dropped.
    let r = s.recipient(1).await.unwrap().unwrap();
    assert_eq!((r.email.as_str(), r.message.id), ("r@y.test", old_id));

    let m = NewMessage {
        track_opens: false,
        track_unsubscribe: Some(true),
        tracking_base: Some("https://t.example".into()),
        ..message(account)
    };
    let id = m.id;
    s.accept_message(m, vec![]).await.unwrap();
    let got = s.get_message(account, id).await.unwrap();
    assert_eq!(
        (got.track_unsubscribe, got.tracking_base.as_deref()),
        (Some(true), Some("https://t.example"))
    );
    assert_eq!(got.size, 18);
}

#[tokio::test]
async fn engagements_see_each_other_even_when_they_arrive_together() {
    use crate::{Engagement, NewRecipient};
    use std::sync::Arc;
    use tidings_types::{EventType, NewEvent};

    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(SqliteOptions::new(dir.path().join("t.db"))).unwrap());
    let account = account(&s).await;
    let m = message(account);
    let dropped = NewEvent::new(account, EventType::Dropped, now(), Default::default()).unwrap();
    s.accept_message(
        m,
        vec![NewRecipient {
            email: "r@y.test".into(),
            dropped,
        }],
    )
    .await
    .unwrap();
    let rid: i64 = 1;

    // 16 opens at once: exactly one of them is built on an empty history.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let s = s.clone();
        set.spawn(async move { record_open(&s, rid).await });
    }
    let mut firsts = 0;
    while let Some(f) = set.join_next().await {
        firsts += usize::from(f.unwrap());
    }
    assert_eq!(firsts, 1);

    // Clicks keep the latest few, oldest first.
    for link in 0..10u32 {
        let history = Arc::new(std::sync::Mutex::new(None));
        let seen = history.clone();
        s.record_engagement(
            rid,
            Engagement::Click { link_index: link },
            Box::new(move |r, h| {
                *seen.lock().unwrap() = Some(h.clone());
                NewEvent::new(
                    r.message.account_id,
                    EventType::Click,
                    now(),
                    Default::default(),
                )
                .ok()
            }),
        )
        .await
        .unwrap();
        let h = history.lock().unwrap().take().unwrap();
        assert_eq!(h.clicks, u64::from(link));
        let links: Vec<u32> = h.recent_clicks.iter().map(|c| c.1).collect();
        let want: Vec<u32> = (link.saturating_sub(crate::RECENT_CLICKS as u32)..link).collect();
        assert_eq!(links, want);
    }

    // No such recipient, or a build that declines: nothing recorded.
    let none = s
        .record_engagement(999, Engagement::Open, Box::new(|_, _| unreachable!()))
        .await
        .unwrap();
    assert!(!none);
    let declined = s
        .record_engagement(rid, Engagement::Open, Box::new(|_, _| None))
        .await
        .unwrap();
    assert!(!declined);
    let opens = s.events_after(account, 0, 1000).await.unwrap();
    assert_eq!(
        opens
            .iter()
            .filter(|e| e.event_type == EventType::Open)
            .count(),
        16
    );
}

/// Record an open of recipient `rid`, returning whether it was the first.
async fn record_open(s: &SqliteStore, rid: i64) -> bool {
    use crate::Engagement;
    use tidings_types::{EventType, NewEvent};
    let first = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = first.clone();
    let recorded = s
        .record_engagement(
            rid,
            Engagement::Open,
            Box::new(move |r, h| {
                *seen.lock().unwrap() = Some(!h.opened);
                NewEvent::new(
                    r.message.account_id,
                    EventType::Open,
                    now(),
                    r.message.event_data(&r.email),
                )
                .ok()
            }),
        )
        .await
        .unwrap();
    assert!(recorded);
    let first = first.lock().unwrap().unwrap();
    first
}

/// Whether a recipient opened before is read from the log: it survives a
/// restart, it is per recipient, and it is found by the message and
/// recipient the open event names.
#[tokio::test]
async fn an_earlier_open_is_found_in_the_log_after_a_restart() {
    use crate::NewRecipient;
    use tidings_types::{EventType, NewEvent};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let account = {
        let s = SqliteStore::open(SqliteOptions::new(&path)).unwrap();
        let account = account(&s).await;
        let dropped =
            NewEvent::new(account, EventType::Dropped, now(), Default::default()).unwrap();
        let to = |email: &str| NewRecipient {
            email: email.into(),
            dropped: dropped.clone(),
        };
        s.accept_message(message(account), vec![to("a@y.test"), to("b@y.test")])
            .await
            .unwrap();
        assert!(record_open(&s, 1).await, "the first open of a@");
        assert!(!record_open(&s, 1).await);
        account
    };
    let s = SqliteStore::open(SqliteOptions::new(&path)).unwrap();
    assert!(!record_open(&s, 1).await, "a@ opened before the restart");
    assert!(record_open(&s, 2).await, "b@ never opened");
    let log = s.events_after(account, 0, 100).await.unwrap();
    let opens: Vec<_> = log
        .iter()
        .filter(|e| e.event_type == EventType::Open)
        .map(|e| (e.data["email"].clone(), e.data.contains_key("message_id")))
        .collect();
    assert_eq!(
        opens,
        [
            (serde_json::json!("a@y.test"), true),
            (serde_json::json!("a@y.test"), true),
            (serde_json::json!("a@y.test"), true),
            (serde_json::json!("b@y.test"), true),
        ]
    );
}
