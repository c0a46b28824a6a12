//! Per-account tracking settings, and what messages remember of them,
//! including messages stored before either existed.

use rusqlite::{params, Connection};
use tidings_types::{AccountId, MessageId};

use super::{schema, SqliteOptions, SqliteStore};
use crate::{
    Account, AccountTracking, AccountTrackingPatch, MessageStore, NewMessage, Source, Store,
    StoreError,
};

fn now() -> tidings_types::Timestamp {
    tidings_types::time::trunc(std::time::SystemTime::now().into())
}

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
        let before = schema::MIGRATIONS.len() - 1;
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
    }
    let s = SqliteStore::open(SqliteOptions::new(&path)).unwrap();
    let old = s.get_message(account, old_id).await.unwrap();
    assert_eq!((old.track_opens, old.track_clicks), (true, false));
    assert_eq!((old.track_unsubscribe, old.tracking_base), (None, None));

    let m = NewMessage {
        id: MessageId::new(),
        account_id: account,
        created_at: now(),
        source: Source::Http,
        mail_from: "a@x.test".into(),
        from: "a@x.test".into(),
        subject: None,
        smtp_message_id: "<n@x>".into(),
        custom_id: None,
        group: None,
        tags: vec![],
        track_opens: false,
        track_clicks: true,
        track_unsubscribe: Some(true),
        tracking_base: Some("https://t.example".into()),
        raw: bytes::Bytes::from_static(b"Subject: x\r\n\r\nhi\r\n"),
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
