//! Accepting a message: the message, one queued delivery per recipient,
//! and the `dropped` events of recipients already suppressed, in one
//! transaction.

use rusqlite::{params, Connection};

use super::records::MSG_COLS_INSERT;
use super::suppressions::is_suppressed;
use crate::messages::*;
use crate::sqlite::ms;
use crate::Result;

pub(super) fn accept(
    c: &Connection,
    m: NewMessage,
    recipients: Vec<NewRecipient>,
) -> Result<Vec<String>> {
    if let Some(k) = &m.idempotency {
        crate::sqlite::idempotency::take(c, m.account_id, k, &m.id.to_string(), 0, m.created_at)?;
    }
    c.prepare_cached(&format!(
        "INSERT INTO messages ({MSG_COLS_INSERT}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?
    .execute(params![
        m.id.to_string(),
        m.account_id.to_string(),
        ms(m.created_at),
        m.source.as_str(),
        m.mail_from,
        m.from,
        m.subject,
        m.smtp_message_id,
        m.custom_id,
        m.group,
        serde_json::to_string(&m.tags).expect("strings serialise"),
        m.track_opens,
        m.track_clicks,
        &m.raw[..],
        m.track_unsubscribe,
        m.tracking_base
    ])?;
    let mut dropped = Vec::new();
    let mut dropped_events = Vec::new();
    for r in recipients {
        let suppressed = is_suppressed(c, m.account_id, &r.email)?;
        let (status, due) = if suppressed {
            (RecipientStatus::Dropped, None)
        } else {
            (RecipientStatus::Queued, Some(ms(m.created_at)))
        };
        c.prepare_cached(
            "INSERT INTO recipients (message_id, account_id, email, status, due_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            m.id.to_string(),
            m.account_id.to_string(),
            r.email,
            status.as_str(),
            due,
            ms(m.created_at)
        ])?;
        if suppressed {
            dropped.push(r.email);
            dropped_events.push(r.dropped);
        }
    }
    if !dropped_events.is_empty() {
        crate::sqlite::events::record(c, dropped_events)?;
    }
    Ok(dropped)
}
