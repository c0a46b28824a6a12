//! Sending domains' DKIM keys: their table, and adding, listing,
//! marking verified and removing them.

use rusqlite::{params, Connection, Row};
use tidings_types::AccountId;

use crate::messages::DomainKey;
use crate::sqlite::{ms, parse_col, ts};
use crate::{Result, StoreError};

/// Sending domains and their DKIM keys.
pub(in crate::sqlite) const SCHEMA_DKIM: &str = r#"
CREATE TABLE domain_keys (
    account_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, domain)
) WITHOUT ROWID;
"#;

pub(super) fn domain_key_row(r: &Row) -> rusqlite::Result<DomainKey> {
    Ok(DomainKey {
        account_id: parse_col(r.get(0)?)?,
        domain: r.get(1)?,
        selector: r.get(2)?,
        algorithm: r.get(3)?,
        private_pem: tidings_types::SecretString::new(r.get::<_, String>(4)?),
        created_at: ts(r.get(5)?),
        verified_at: r.get::<_, Option<i64>>(6)?.map(ts),
    })
}

pub(in crate::sqlite) fn add(c: &Connection, k: DomainKey) -> Result<()> {
    let n = c
        .prepare_cached(
            "INSERT OR IGNORE INTO domain_keys
             (account_id, domain, selector, algorithm, private_pem, created_at, verified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            k.account_id.to_string(),
            k.domain,
            k.selector,
            k.algorithm,
            k.private_pem.expose(),
            ms(k.created_at),
            k.verified_at.map(ms)
        ])?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "{} already has a key",
            k.domain
        )));
    }
    Ok(())
}

pub(in crate::sqlite) fn list(
    c: &Connection,
    account: Option<AccountId>,
) -> Result<Vec<DomainKey>> {
    let mut st = c.prepare_cached(
        "SELECT account_id, domain, selector, algorithm, private_pem, created_at, verified_at
         FROM domain_keys WHERE ?1 IS NULL OR account_id = ?1 ORDER BY domain",
    )?;
    let rows = st.query_map([account.map(|a| a.to_string())], domain_key_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(in crate::sqlite) fn set_verified(
    c: &Connection,
    account: AccountId,
    domain: String,
    at: tidings_types::Timestamp,
) -> Result<()> {
    let n = c
        .prepare_cached(
            "UPDATE domain_keys SET verified_at = ?3 WHERE account_id = ?1 AND domain = ?2",
        )?
        .execute(params![account.to_string(), domain, ms(at)])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(in crate::sqlite) fn remove(c: &Connection, account: AccountId, domain: String) -> Result<()> {
    let n = c
        .prepare_cached("DELETE FROM domain_keys WHERE account_id = ?1 AND domain = ?2")?
        .execute(params![account.to_string(), domain])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
