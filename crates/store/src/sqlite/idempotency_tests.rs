//! An `Idempotency-Key` is taken in its message's transaction: a second
//! message with a live key is not stored at all, and an expired key may be
//! taken again.

use tidings_types::AccountId;

use super::test_support::{self, now};
use super::{SqliteOptions, SqliteStore};
use crate::{
    Account, IdempotencyKey, MessageStore, NewMessage, Store, StoreError, IDEMPOTENCY_KEY_TAKEN,
};

fn message(account: AccountId, key: &IdempotencyKey) -> NewMessage {
    NewMessage {
        idempotency: Some(key.clone()),
        ..test_support::message(account)
    }
}

/// The live record of `key`: its digest and the message it names.
async fn record_of(s: &SqliteStore, account: AccountId, key: &str) -> (String, String) {
    let day_ago = now() - chrono::Duration::hours(24);
    let rec = s
        .idempotency_key(account, key.into(), day_ago)
        .await
        .unwrap()
        .unwrap();
    (rec.fingerprint, rec.target)
}

#[tokio::test]
async fn a_live_key_is_taken_once_and_an_expired_one_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(SqliteOptions::new(dir.path().join("t.db"))).unwrap();
    let acc = Account {
        id: AccountId::new(),
        name: "a".into(),
        contact_email: None,
        created_at: now(),
    };
    s.create_account(&acc).await.unwrap();
    let day_ago = now() - chrono::Duration::hours(24);
    let key = IdempotencyKey {
        key: "order-42".into(),
        fingerprint: "f1".into(),
        expired_before: day_ago,
    };
    let first = message(acc.id, &key);
    let first_id = first.id;
    s.accept_message(first, vec![]).await.unwrap();
    assert_eq!(
        record_of(&s, acc.id, "order-42").await,
        ("f1".into(), first_id.to_string())
    );

    let second = message(acc.id, &key);
    let second_id = second.id;
    match s.accept_message(second, vec![]).await {
        Err(StoreError::Conflict(m)) => assert_eq!(m, IDEMPOTENCY_KEY_TAKEN),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(
            s.get_message(acc.id, second_id).await,
            Err(StoreError::NotFound)
        ),
        "nothing of the second message is stored"
    );

    // Another account's key of the same name is its own.
    let other = Account {
        id: AccountId::new(),
        ..acc.clone()
    };
    s.create_account(&other).await.unwrap();
    s.accept_message(message(other.id, &key), vec![])
        .await
        .unwrap();

    // Once the key has expired, it is taken afresh.
    let later = IdempotencyKey {
        fingerprint: "f2".into(),
        expired_before: now() + chrono::Duration::seconds(1),
        ..key
    };
    let third = message(acc.id, &later);
    let third_id = third.id;
    s.accept_message(third, vec![]).await.unwrap();
    assert_eq!(
        record_of(&s, acc.id, "order-42").await,
        ("f2".into(), third_id.to_string())
    );
}
