//! Reading stored messages and their recipients back: the columns, the
//! rows, and the cache of messages that tracking requests read over and
//! over.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_types::{AccountId, MessageId};

use crate::messages::*;
use crate::sqlite::{parse_col, ts};
use crate::{Result, StoreError};

pub(super) const MSG_COLS: &str =
    "id, account_id, created_at, source, mail_from, from_addr, subject, \
    smtp_message_id, custom_id, grp, tags, track_opens, track_clicks, length(raw), \
    track_unsubscribe, tracking_base";

/// [`MSG_COLS`] qualified with the alias `m`, for joins.
pub(super) fn msg_cols_m() -> &'static str {
    static COLS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        MSG_COLS
            .split(", ")
            .map(|col| format!("m.{}", col.trim()))
            .collect::<Vec<_>>()
            .join(", ")
            .replace("m.length(raw)", "length(m.raw)")
    });
    &COLS
}

pub(super) fn message_row(r: &Row) -> rusqlite::Result<MessageRecord> {
    message_row_at(r, 0)
}

pub(super) const MSG_COLS_INSERT: &str =
    "id, account_id, created_at, source, mail_from, from_addr, subject, \
    smtp_message_id, custom_id, grp, tags, track_opens, track_clicks, raw, track_unsubscribe, \
    tracking_base";

pub(super) fn recipients_of(c: &Connection, id: &str) -> Result<Vec<RecipientState>> {
    let mut st = c.prepare_cached(
        "SELECT email, status, attempts, last_response, updated_at FROM recipients
         WHERE message_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([id], |r| {
        let status: String = r.get(1)?;
        Ok(RecipientState {
            email: r.get(0)?,
            status: RecipientStatus::parse(&status).unwrap_or(RecipientStatus::Queued),
            attempts: r.get(2)?,
            last_response: r.get(3)?,
            updated_at: ts(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn get(c: &Connection, account: AccountId, id: MessageId) -> Result<MessageRecord> {
    let mut m = c
        .prepare_cached(&format!(
            "SELECT {MSG_COLS} FROM messages WHERE id = ?1 AND account_id = ?2"
        ))?
        .query_row(params![id.to_string(), account.to_string()], message_row)
        .optional()?
        .ok_or(StoreError::NotFound)?;
    m.recipients = recipients_of(c, &id.to_string())?;
    Ok(m)
}

/// [`message_row`] for columns starting at `at`.
pub(super) fn message_row_at(r: &Row, at: usize) -> rusqlite::Result<MessageRecord> {
    let tags: String = r.get(at + 10)?;
    let source: String = r.get(at + 3)?;
    Ok(MessageRecord {
        id: parse_col(r.get(at)?)?,
        account_id: parse_col(r.get(at + 1)?)?,
        created_at: ts(r.get(at + 2)?),
        source: if source == "smtp" {
            Source::Smtp
        } else {
            Source::Http
        },
        mail_from: r.get(at + 4)?,
        from: r.get(at + 5)?,
        subject: r.get(at + 6)?,
        smtp_message_id: r.get(at + 7)?,
        custom_id: r.get(at + 8)?,
        group: r.get(at + 9)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        track_opens: r.get(at + 11)?,
        track_clicks: r.get(at + 12)?,
        size: r.get(at + 13)?,
        track_unsubscribe: r.get(at + 14)?,
        tracking_base: r.get(at + 15)?,
        recipients: Vec::new(),
    })
}

/// Messages never change once stored, and a burst of opens and clicks
/// names a few thousand of them over and over: the latest read are kept,
/// so that finding a recipient's message costs no read. One cache for the
/// whole process, the writer and the readers alike (message ids are
/// unique): a cache per thread grew with the pool of threads that reads
/// run on, to hundreds of megabytes under a burst of clicks.
pub(super) static MESSAGES: std::sync::LazyLock<moka::sync::Cache<String, Arc<MessageRecord>>> =
    std::sync::LazyLock::new(|| moka::sync::Cache::new(4096));

/// The stored message `id` (not its recipients), from the cache or the
/// database.
pub(super) fn cached_message(c: &Connection, id: String) -> Result<Option<Arc<MessageRecord>>> {
    if let Some(m) = MESSAGES.get(&id) {
        return Ok(Some(m));
    }
    let Some(m) = c
        .prepare_cached(&format!("SELECT {MSG_COLS} FROM messages WHERE id = ?1"))?
        .query_row([&id], message_row)
        .optional()?
    else {
        return Ok(None);
    };
    let m = Arc::new(m);
    MESSAGES.insert(id, m.clone());
    Ok(Some(m))
}
