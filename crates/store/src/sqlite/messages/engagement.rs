//! Opens and clicks: finding the recipient and its engagement history,
//! and recording the event the domain builds from them, in one
//! transaction.

use rusqlite::{params, Connection, OptionalExtension};

use super::records::cached_message;
use crate::messages::*;
use crate::sqlite::{ms, ts};
use crate::Result;

/// A recipient with its message, and its click history (whether it opened
/// before is [`opened_before`]'s).
pub(super) fn recipient_ref(
    c: &Connection,
    recipient_id: i64,
) -> Result<Option<(RecipientRef, EngagementHistory)>> {
    let row = c
        .prepare_cached(
            "SELECT email, status, updated_at, clicks, recent_clicks, message_id
             FROM recipients WHERE id = ?1",
        )?
        .query_row([recipient_id], |r| {
            let status: String = r.get(1)?;
            let recent: Vec<(i64, u32)> = r
                .get::<_, Option<String>>(4)?
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            let history = EngagementHistory {
                opened: false,
                clicks: r.get::<_, i64>(3)?.max(0) as u64,
                recent_clicks: recent.iter().map(|&(at, link)| (ts(at), link)).collect(),
            };
            let email: String = r.get(0)?;
            let status = RecipientStatus::parse(&status).unwrap_or(RecipientStatus::Queued);
            Ok((
                email,
                status,
                ts(r.get(2)?),
                history,
                r.get::<_, String>(5)?,
            ))
        })
        .optional()?;
    let Some((email, status, updated_at, history, message_id)) = row else {
        return Ok(None);
    };
    let Some(message) = cached_message(c, message_id)? else {
        return Ok(None);
    };
    let target = RecipientRef {
        message,
        email,
        status,
        updated_at,
    };
    Ok(Some((target, history)))
}

/// Whether `r` opened its message before: an `open` event in the log that
/// names them. `events_message` answers it alone, from the page the new
/// event's entry goes into, so recording an open writes no page of its
/// own for it.
pub(super) fn opened_before(c: &Connection, r: &RecipientRef) -> Result<bool> {
    Ok(c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM events WHERE account_id = ?1
           AND json_extract(data, '$.message_id') = ?2
           AND json_extract(data, '$.email') = ?3 AND type = 'open')",
    )?
    .query_row(
        params![
            r.message.account_id.to_string(),
            r.message.id.to_string(),
            r.email
        ],
        |row| row.get(0),
    )?)
}

pub(super) fn record_engagement(
    c: &Connection,
    recipient_id: i64,
    engagement: Engagement,
    build: BuildEngagement,
) -> Result<bool> {
    let Some((target, mut history)) = recipient_ref(c, recipient_id)? else {
        return Ok(false);
    };
    if engagement == Engagement::Open {
        history.opened = opened_before(c, &target)?;
    }
    let Some(event) = build(&target, &history) else {
        return Ok(false);
    };
    if let Engagement::Click { link_index } = engagement {
        let mut recent: Vec<(i64, u32)> = history
            .recent_clicks
            .iter()
            .map(|&(at, link)| (ms(at), link))
            .collect();
        recent.push((ms(event.timestamp), link_index));
        let excess = recent.len().saturating_sub(RECENT_CLICKS);
        recent.drain(..excess);
        c.prepare_cached(
            "UPDATE recipients SET clicks = clicks + 1, recent_clicks = ?2 WHERE id = ?1",
        )?
        .execute(params![
            recipient_id,
            serde_json::to_string(&recent).expect("numbers serialise")
        ])?;
    }
    crate::sqlite::events::record(c, vec![event])?;
    Ok(true)
}
