//! `Idempotency-Key`s: recorded in the transaction of what their request
//! made, so a key is taken exactly when its message or webhook exists.

use rusqlite::{params, Connection, OptionalExtension};
use tidings_types::{AccountId, Timestamp};

use super::{ms, ts};
use crate::model::{IdempotencyKey, IdempotencyRecord, IDEMPOTENCY_KEY_TAKEN};
use crate::{Result, StoreError};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE idempotency_keys (
    account_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    target TEXT NOT NULL,
    detail INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
"#;

/// Take `key` for `target`, or fail with [`IDEMPOTENCY_KEY_TAKEN`] if a request that
/// has not expired holds it (the caller's savepoint then undoes the rest).
pub(super) fn take(
    c: &Connection,
    account: AccountId,
    key: &IdempotencyKey,
    target: &str,
    detail: i64,
    now: Timestamp,
) -> Result<()> {
    let n = c
        .prepare_cached(
            "INSERT INTO idempotency_keys (account_id, key, fingerprint, target, detail, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (account_id, key) DO UPDATE SET
                fingerprint = excluded.fingerprint, target = excluded.target,
                detail = excluded.detail, created_at = excluded.created_at
             WHERE idempotency_keys.created_at < ?7",
        )?
        .execute(params![
            account.to_string(),
            key.key,
            key.fingerprint,
            target,
            detail,
            ms(now),
            ms(key.expired_before)
        ])?;
    if n == 0 {
        return Err(StoreError::Conflict(IDEMPOTENCY_KEY_TAKEN.into()));
    }
    Ok(())
}

/// The live record of `key`, if any.
pub(super) fn get(
    c: &Connection,
    account: AccountId,
    key: &str,
    expired_before: Timestamp,
) -> Result<Option<IdempotencyRecord>> {
    Ok(c.prepare_cached(
        "SELECT fingerprint, target, detail, created_at FROM idempotency_keys
             WHERE account_id = ?1 AND key = ?2 AND created_at >= ?3",
    )?
    .query_row(params![account.to_string(), key, ms(expired_before)], |r| {
        Ok(IdempotencyRecord {
            fingerprint: r.get(0)?,
            target: r.get(1)?,
            detail: r.get(2)?,
            created_at: ts(r.get(3)?),
        })
    })
    .optional()?)
}

/// Forget keys recorded before `before`.
pub(super) fn prune(c: &Connection, before: Timestamp) -> Result<u64> {
    Ok(
        c.prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
            .execute([ms(before)])? as u64,
    )
}
