//! The outbound queue: leasing due deliveries to the worker, and
//! completing them (the recipient's state, its event, and what the outcome
//! does to the address's suppression) in one transaction.

use std::sync::Arc;

use rusqlite::{params, Connection};
use tidings_types::Timestamp;

use super::records::{message_row_at, msg_cols_m};
use super::suppressions::{add_suppression, count_soft};
use crate::messages::*;
use crate::sqlite::{ms, opt_ts};
use crate::{Result, SoftBounceRule};

pub(super) fn lease(
    c: &Connection,
    now: Timestamp,
    until: Timestamp,
    limit: u32,
) -> Result<Vec<OutboundJob>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT r.id, r.email, r.attempts, r.first_attempt_at, r.message_id, m.raw, {}
         FROM recipients r JOIN messages m ON m.id = r.message_id
         WHERE r.due_at IS NOT NULL AND r.due_at <= ?1
         ORDER BY r.due_at, r.id LIMIT ?2",
        msg_cols_m()
    ))?;
    let mut cache: std::collections::HashMap<String, Arc<MessageRecord>> = Default::default();
    let rows = st.query_map(params![ms(now), limit], |r| {
        let raw: Vec<u8> = r.get(5)?;
        let msg = message_row_at(r, 6)?;
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, u32>(2)?,
            opt_ts(r.get(3)?),
            r.get::<_, String>(4)?,
            raw,
            msg,
        ))
    })?;
    let mut jobs = Vec::new();
    for row in rows {
        let (rid, email, attempts, first, mid, raw, msg) = row?;
        let message = cache.entry(mid).or_insert_with(|| Arc::new(msg)).clone();
        jobs.push(OutboundJob {
            recipient_id: rid,
            email,
            attempts,
            first_attempt_at: first,
            message,
            raw: raw.into(),
        });
    }
    let mut up = c.prepare_cached("UPDATE recipients SET due_at = ?2, leased = 1 WHERE id = ?1")?;
    for j in &jobs {
        up.execute(params![j.recipient_id, ms(until)])?;
    }
    Ok(jobs)
}

pub(super) fn complete(
    c: &Connection,
    results: Vec<OutboundResult>,
    rule: &dyn SoftBounceRule,
) -> Result<()> {
    let mut events = Vec::with_capacity(results.len());
    for r in results {
        let now = r.event.timestamp;
        c.prepare_cached(
            "UPDATE recipients SET status = ?2, attempts = attempts + 1,
               first_attempt_at = COALESCE(first_attempt_at, ?3), due_at = ?4, leased = 0,
               last_response = ?5, updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![
            r.recipient_id,
            r.status.as_str(),
            ms(now),
            r.retry_at.map(ms),
            r.response
        ])?;
        let account = r.account_id.to_string();
        let mut suppress = r.suppress.clone();
        if r.status == RecipientStatus::Sent {
            c.prepare_cached("DELETE FROM soft_bounces WHERE account_id = ?1 AND email = ?2")?
                .execute(params![account, r.email])?;
        } else if r.soft_failure {
            let consecutive = count_soft(c, r.account_id, &r.email)?;
            if suppress.is_none() {
                suppress = rule.suppress(consecutive);
            }
        }
        if let Some(reason) = suppress {
            add_suppression(c, r.account_id, &r.email, &reason, now)?;
        }
        events.push(r.event);
    }
    crate::sqlite::events::record(c, events)?;
    Ok(())
}
