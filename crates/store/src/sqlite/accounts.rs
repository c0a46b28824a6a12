use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_types::{AccountId, ApiKeyId, Timestamp};

use super::{ms, parse_col, ts};
use crate::model::{Account, AccountTracking, AccountTrackingPatch, ApiKeyRecord, TrackingDomain};
use crate::{Result, StoreError};

fn account_row(r: &Row) -> rusqlite::Result<Account> {
    Ok(Account {
        id: parse_col(r.get(0)?)?,
        name: r.get(1)?,
        contact_email: r.get(2)?,
        created_at: ts(r.get(3)?),
    })
}

fn key_row(r: &Row) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: parse_col(r.get(0)?)?,
        account_id: parse_col(r.get(1)?)?,
        name: r.get(2)?,
        prefix: r.get(3)?,
        created_at: ts(r.get(4)?),
    })
}

pub fn create_account(c: &Connection, a: &Account) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO accounts (id, name, contact_email, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        a.id.to_string(),
        a.name,
        a.contact_email,
        ms(a.created_at)
    ])?;
    Ok(())
}

pub fn get_account(c: &Connection, id: AccountId) -> Result<Account> {
    c.prepare_cached("SELECT id, name, contact_email, created_at FROM accounts WHERE id = ?1")?
        .query_row([id.to_string()], account_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

pub fn list_accounts(c: &Connection) -> Result<Vec<Account>> {
    let mut st =
        c.prepare_cached("SELECT id, name, contact_email, created_at FROM accounts ORDER BY id")?;
    let rows = st.query_map([], account_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn create_api_key(c: &Connection, k: &ApiKeyRecord, hash: [u8; 32]) -> Result<()> {
    get_account(c, k.account_id)?;
    c.prepare_cached(
        "INSERT INTO api_keys (id, account_id, name, prefix, hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        k.id.to_string(),
        k.account_id.to_string(),
        k.name,
        k.prefix,
        &hash[..],
        ms(k.created_at)
    ])?;
    Ok(())
}

pub fn find_api_key(c: &Connection, hash: [u8; 32]) -> Result<Option<ApiKeyRecord>> {
    Ok(c.prepare_cached(
        "SELECT id, account_id, name, prefix, created_at FROM api_keys
             WHERE hash = ?1 AND revoked_at IS NULL",
    )?
    .query_row([&hash[..]], key_row)
    .optional()?)
}

pub fn list_api_keys(c: &Connection, account: AccountId) -> Result<Vec<ApiKeyRecord>> {
    let mut st = c.prepare_cached(
        "SELECT id, account_id, name, prefix, created_at FROM api_keys
         WHERE account_id = ?1 AND revoked_at IS NULL ORDER BY id",
    )?;
    let rows = st.query_map([account.to_string()], key_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn revoke_api_key(c: &Connection, account: AccountId, id: ApiKeyId) -> Result<()> {
    let n = c
        .prepare_cached(
            "UPDATE api_keys SET revoked_at = strftime('%s','now') * 1000
             WHERE id = ?1 AND account_id = ?2 AND revoked_at IS NULL",
        )?
        .execute(params![id.to_string(), account.to_string()])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn account_tracking(c: &Connection, account: AccountId) -> Result<AccountTracking> {
    Ok(c.prepare_cached(
        "SELECT opens, clicks, unsubscribe, domain, domain_verified_at
         FROM account_tracking WHERE account_id = ?1",
    )?
    .query_row([account.to_string()], |r| {
        Ok(AccountTracking {
            opens: r.get(0)?,
            clicks: r.get(1)?,
            unsubscribe: r.get(2)?,
            domain: r.get(3)?,
            domain_verified_at: r.get::<_, Option<i64>>(4)?.map(ts),
        })
    })
    .optional()?
    .unwrap_or_default())
}

pub fn tracking_domains(c: &Connection) -> Result<Vec<TrackingDomain>> {
    let mut st = c.prepare_cached(
        "SELECT account_id, domain, domain_verified_at FROM account_tracking
         WHERE domain IS NOT NULL",
    )?;
    let rows = st.query_map([], |r| {
        Ok(TrackingDomain {
            account_id: parse_col(r.get(0)?)?,
            base_url: r.get(1)?,
            verified_at: r.get::<_, Option<i64>>(2)?.map(ts),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn update_account_tracking(
    c: &Connection,
    account: AccountId,
    patch: &AccountTrackingPatch,
    now: Timestamp,
) -> Result<AccountTracking> {
    get_account(c, account)?;
    let t = patch.apply(account_tracking(c, account)?);
    c.prepare_cached(
        "INSERT INTO account_tracking
           (account_id, opens, clicks, unsubscribe, domain, updated_at, domain_verified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (account_id) DO UPDATE SET opens = excluded.opens,
           clicks = excluded.clicks, unsubscribe = excluded.unsubscribe,
           domain = excluded.domain, updated_at = excluded.updated_at,
           domain_verified_at = excluded.domain_verified_at",
    )?
    .execute(params![
        account.to_string(),
        t.opens,
        t.clicks,
        t.unsubscribe,
        t.domain,
        ms(now),
        t.domain_verified_at.map(ms)
    ])?;
    Ok(t)
}
