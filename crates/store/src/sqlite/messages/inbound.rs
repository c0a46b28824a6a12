//! What inbound reports do (events, suppressions, recipients' states),
//! and the reports nobody could be matched to.

use rusqlite::{params, Connection, Row};

use super::suppressions::{add_suppression, count_soft};
use crate::messages::*;
use crate::sqlite::{ms, ts};
use crate::{Result, SoftBounceRule};

pub(super) fn record_inbound(
    c: &Connection,
    fx: InboundEffects,
    rule: &dyn SoftBounceRule,
) -> Result<()> {
    let now = fx.events.first().map(|e| e.timestamp);
    for (account, email) in &fx.soft {
        if let Some(reason) = rule.suppress(count_soft(c, *account, email)?) {
            add_suppression(c, *account, email, &reason, now.unwrap_or_default())?;
        }
    }
    for (account, email, reason) in &fx.suppress {
        add_suppression(c, *account, email, reason, now.unwrap_or_default())?;
    }
    for (message, email, status) in &fx.statuses {
        c.prepare_cached(
            "UPDATE recipients SET status = ?3, due_at = NULL, leased = 0, updated_at = ?4
             WHERE message_id = ?1 AND email = ?2 AND status != 'dropped'",
        )?
        .execute(params![
            message.to_string(),
            email,
            status.as_str(),
            ms(now.unwrap_or_default())
        ])?;
    }
    if !fx.events.is_empty() {
        crate::sqlite::events::record(c, fx.events)?;
    }
    Ok(())
}

pub(super) fn unmatched_row(r: &Row) -> rusqlite::Result<UnmatchedReport> {
    Ok(UnmatchedReport {
        id: r.get(0)?,
        received_at: ts(r.get(1)?),
        kind: r.get(2)?,
        reason: r.get(3)?,
        envelope_to: r.get(4)?,
        summary: r.get(5)?,
    })
}
