//! The suppression list, and the count of each address's consecutive soft
//! bounces that a soft-bounce rule judges.

use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_types::{AccountId, Timestamp};

use crate::messages::*;
use crate::sqlite::{ms, ts};
use crate::Result;

pub(super) fn is_suppressed(c: &Connection, account: AccountId, email: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM suppressions WHERE account_id = ?1 AND email = ?2")?
            .query_row(params![account.to_string(), email], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

pub(super) fn add_suppression(
    c: &Connection,
    account: AccountId,
    email: &str,
    reason: &str,
    at: Timestamp,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO suppressions (account_id, email, reason, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (account_id, email) DO UPDATE SET reason = excluded.reason",
    )?
    .execute(params![account.to_string(), email, reason, ms(at)])?;
    Ok(())
}

/// Count one more consecutive soft bounce; the new count.
pub(super) fn count_soft(c: &Connection, account: AccountId, email: &str) -> Result<u32> {
    Ok(c.prepare_cached(
        "INSERT INTO soft_bounces (account_id, email, count) VALUES (?1, ?2, 1)
             ON CONFLICT (account_id, email) DO UPDATE SET count = count + 1
             RETURNING count",
    )?
    .query_row(params![account.to_string(), email], |row| row.get(0))?)
}

pub(super) fn suppression_row(r: &Row) -> rusqlite::Result<Suppression> {
    Ok(Suppression {
        email: r.get(0)?,
        reason: r.get(1)?,
        created_at: ts(r.get(2)?),
    })
}
