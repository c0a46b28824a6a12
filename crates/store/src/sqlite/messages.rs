//! SQLite implementation of [`MessageStore`].

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tidings_types::{AccountId, Event, MessageId, Timestamp};
use tokio::sync::Notify;

use super::events::{event_at, EVENT_COLS};
use super::{ms, opt_ts, parse_col, ts, SqliteStore};
use crate::messages::*;
use crate::{Result, SoftBounceRule, StoreError};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    from_addr TEXT NOT NULL,
    subject TEXT,
    smtp_message_id TEXT NOT NULL,
    custom_id TEXT,
    grp TEXT,
    tags TEXT NOT NULL,
    track_opens INTEGER NOT NULL,
    track_clicks INTEGER NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX messages_account ON messages(account_id, created_at);

-- One row per recipient: its state, and its outbound delivery job.
CREATE TABLE recipients (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_attempt_at INTEGER,
    due_at INTEGER,
    -- Leased to a worker; due_at is then the lease's expiry.
    leased INTEGER NOT NULL DEFAULT 0,
    last_response TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX recipients_message ON recipients(message_id);
CREATE INDEX recipients_due ON recipients(due_at) WHERE due_at IS NOT NULL;

CREATE TABLE suppressions (
    account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, email)
) WITHOUT ROWID;

-- Consecutive soft bounces per address; reset by a delivery.
CREATE TABLE soft_bounces (
    account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (account_id, email)
) WITHOUT ROWID;

CREATE INDEX events_message ON events(account_id, json_extract(data, '$.message_id'));
CREATE INDEX messages_smtp_id ON messages(smtp_message_id);

-- Inbound reports that matched no message, for the operator.
CREATE TABLE inbound_unmatched (
    id INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    envelope_to TEXT NOT NULL,
    summary TEXT NOT NULL
);
"#;

/// Each recipient's engagement history: counts of opens and clicks, and
/// the latest clicks as JSON `[[at_ms, link_index], ...]`, oldest first.
/// (Opens are no longer counted here: see [`SCHEMA_OPENS_IN_LOG`].)
pub(super) const SCHEMA_ENGAGEMENT: &str = r#"
ALTER TABLE recipients ADD COLUMN opens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN clicks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE recipients ADD COLUMN recent_clicks TEXT;
"#;

/// Whether a recipient opened before is answered by the event log, not by
/// a count on its row: an open then writes the event alone, where the
/// count put one more page (a random one: opens come in any order) into
/// nearly every commit. `events_message` takes the recipient and the type,
/// so the question needs no table row, and lists a message's events by
/// recipient.
pub(super) const SCHEMA_OPENS_IN_LOG: &str = r#"
DROP INDEX events_message;
CREATE INDEX events_message ON events(
    account_id, json_extract(data, '$.message_id'), json_extract(data, '$.email'), type);
ALTER TABLE recipients DROP COLUMN opens;
"#;

/// Sending domains and their DKIM keys.
pub(super) const SCHEMA_DKIM: &str = r#"
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

fn domain_key_row(r: &Row) -> rusqlite::Result<DomainKey> {
    Ok(DomainKey {
        account_id: parse_col(r.get(0)?)?,
        domain: r.get(1)?,
        selector: r.get(2)?,
        algorithm: r.get(3)?,
        private_pem: tidings_types::SecretString::new(r.get::<_, String>(4)?),
        created_at: ts(r.get(5)?),
    })
}

const MSG_COLS: &str = "id, account_id, created_at, source, mail_from, from_addr, subject, \
    smtp_message_id, custom_id, grp, tags, track_opens, track_clicks, length(raw), \
    track_unsubscribe, tracking_base";

/// [`MSG_COLS`] qualified with the alias `m`, for joins.
fn msg_cols_m() -> &'static str {
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

fn message_row(r: &Row) -> rusqlite::Result<MessageRecord> {
    message_row_at(r, 0)
}

fn is_suppressed(c: &Connection, account: AccountId, email: &str) -> Result<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM suppressions WHERE account_id = ?1 AND email = ?2")?
            .query_row(params![account.to_string(), email], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

fn accept(c: &Connection, m: NewMessage, recipients: Vec<NewRecipient>) -> Result<Vec<String>> {
    if let Some(k) = &m.idempotency {
        super::idempotency::take(c, m.account_id, k, &m.id.to_string(), 0, m.created_at)?;
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
        super::events::record(c, dropped_events)?;
    }
    Ok(dropped)
}

const MSG_COLS_INSERT: &str = "id, account_id, created_at, source, mail_from, from_addr, subject, \
    smtp_message_id, custom_id, grp, tags, track_opens, track_clicks, raw, track_unsubscribe, \
    tracking_base";

fn recipients_of(c: &Connection, id: &str) -> Result<Vec<RecipientState>> {
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

fn get(c: &Connection, account: AccountId, id: MessageId) -> Result<MessageRecord> {
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

fn lease(c: &Connection, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<OutboundJob>> {
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

/// [`message_row`] for columns starting at `at`.
fn message_row_at(r: &Row, at: usize) -> rusqlite::Result<MessageRecord> {
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

fn add_suppression(
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

fn complete(c: &Connection, results: Vec<OutboundResult>, rule: &dyn SoftBounceRule) -> Result<()> {
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
    super::events::record(c, events)?;
    Ok(())
}

/// Count one more consecutive soft bounce; the new count.
fn count_soft(c: &Connection, account: AccountId, email: &str) -> Result<u32> {
    Ok(c.prepare_cached(
        "INSERT INTO soft_bounces (account_id, email, count) VALUES (?1, ?2, 1)
             ON CONFLICT (account_id, email) DO UPDATE SET count = count + 1
             RETURNING count",
    )?
    .query_row(params![account.to_string(), email], |row| row.get(0))?)
}

fn record_inbound(c: &Connection, fx: InboundEffects, rule: &dyn SoftBounceRule) -> Result<()> {
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
        super::events::record(c, fx.events)?;
    }
    Ok(())
}

/// Messages never change once stored, and a burst of opens and clicks
/// names a few thousand of them over and over: the latest read are kept,
/// so that finding a recipient's message costs no read. One cache for the
/// whole process, the writer and the readers alike (message ids are
/// unique): a cache per thread grew with the pool of threads that reads
/// run on, to hundreds of megabytes under a burst of clicks.
static MESSAGES: std::sync::LazyLock<moka::sync::Cache<String, Arc<MessageRecord>>> =
    std::sync::LazyLock::new(|| moka::sync::Cache::new(4096));

/// The stored message `id` (not its recipients), from the cache or the
/// database.
fn cached_message(c: &Connection, id: String) -> Result<Option<Arc<MessageRecord>>> {
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

/// A recipient with its message, and its click history (whether it opened
/// before is [`opened_before`]'s).
fn recipient_ref(
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
fn opened_before(c: &Connection, r: &RecipientRef) -> Result<bool> {
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

fn record_engagement(
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
    super::events::record(c, vec![event])?;
    Ok(true)
}

fn unmatched_row(r: &Row) -> rusqlite::Result<UnmatchedReport> {
    Ok(UnmatchedReport {
        id: r.get(0)?,
        received_at: ts(r.get(1)?),
        kind: r.get(2)?,
        reason: r.get(3)?,
        envelope_to: r.get(4)?,
        summary: r.get(5)?,
    })
}

fn suppression_row(r: &Row) -> rusqlite::Result<Suppression> {
    Ok(Suppression {
        email: r.get(0)?,
        reason: r.get(1)?,
        created_at: ts(r.get(2)?),
    })
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn accept_message(
        &self,
        message: NewMessage,
        recipients: Vec<NewRecipient>,
    ) -> Result<Vec<String>> {
        let n = self.outbound_notify.clone();
        // Dropped events may fan out to webhooks: wake both queues.
        let jobs = self.notify.clone();
        let r = self
            .write_notify(Some(n), move |c| accept(c, message, recipients))
            .await;
        jobs.notify_one();
        r
    }
    async fn get_message(&self, account: AccountId, id: MessageId) -> Result<MessageRecord> {
        self.read(move |c| get(c, account, id)).await
    }
    async fn message_events(&self, account: AccountId, id: MessageId) -> Result<Vec<Event>> {
        // Up to the durable head, as every read of the log.
        let head = self.durable_head();
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {EVENT_COLS} FROM events e
                 WHERE e.account_id = ?1 AND json_extract(e.data, '$.message_id') = ?2 AND e.test = 0
                   AND e.seq <= ?3
                 ORDER BY e.seq"
            ))?;
            let rows = st.query_map(params![account.to_string(), id.to_string(), head], |r| {
                event_at(r, 0)
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
    async fn lease_outbound(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboundJob>> {
        // A lease lost in a power cut only makes its deliveries due again
        // (and they were not recorded either: that commit's fsync would
        // have covered the lease, the WAL being written in order), so it
        // needs no fsync of its own.
        self.write_volatile(move |c| lease(c, now, until, limit))
            .await
    }
    async fn complete_outbound(
        &self,
        results: Vec<OutboundResult>,
        rule: Arc<dyn SoftBounceRule>,
    ) -> Result<()> {
        let n = self.notify.clone();
        let r = self
            .write_notify(Some(n), move |c| complete(c, results, &*rule))
            .await;
        self.outbound_notify.notify_one();
        r
    }
    async fn next_outbound_due(&self) -> Result<Option<Timestamp>> {
        self.read(|c| {
            let v: Option<i64> = c
                .prepare_cached("SELECT MIN(due_at) FROM recipients WHERE due_at IS NOT NULL")?
                .query_row([], |r| r.get(0))?;
            Ok(opt_ts(v))
        })
        .await
    }
    async fn outbound_queue(&self) -> Result<OutboundQueueStats> {
        self.read(super::outbound_queue::stats).await
    }
    async fn message_raw(&self, id: MessageId) -> Result<bytes::Bytes> {
        self.read(move |c| {
            let raw: Vec<u8> = c
                .prepare_cached("SELECT raw FROM messages WHERE id = ?1")?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()?
                .ok_or(StoreError::NotFound)?;
            Ok(raw.into())
        })
        .await
    }
    async fn release_outbound_leases(&self, now: Timestamp) -> Result<u64> {
        let n = self.outbound_notify.clone();
        self.write_notify(Some(n), move |c| {
            Ok(
                c.prepare_cached("UPDATE recipients SET due_at = ?1, leased = 0 WHERE leased = 1")?
                    .execute([ms(now)])? as u64,
            )
        })
        .await
    }
    fn outbound_notify(&self) -> Arc<Notify> {
        self.outbound_notify.clone()
    }
    async fn list_suppressions(
        &self,
        account: AccountId,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<Suppression>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT email, reason, created_at FROM suppressions
                 WHERE account_id = ?1 AND (?2 IS NULL OR email > ?2) ORDER BY email LIMIT ?3",
            )?;
            let rows = st.query_map(params![account.to_string(), after, limit], suppression_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
    async fn get_suppression(&self, account: AccountId, email: String) -> Result<Suppression> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT email, reason, created_at FROM suppressions WHERE account_id = ?1 AND email = ?2",
            )?
            .query_row(params![account.to_string(), email], suppression_row)
            .optional()?
            .ok_or(StoreError::NotFound)
        })
        .await
    }
    async fn add_suppression(
        &self,
        account: AccountId,
        email: String,
        reason: String,
        at: Timestamp,
    ) -> Result<Suppression> {
        self.write(false, move |c| {
            add_suppression(c, account, &email, &reason, at)?;
            c.prepare_cached(
                "SELECT email, reason, created_at FROM suppressions WHERE account_id = ?1 AND email = ?2",
            )?
            .query_row(params![account.to_string(), email], suppression_row)
            .map_err(Into::into)
        })
        .await
    }
    async fn find_recipient(&self, recipient_id: i64) -> Result<Option<(MessageRecord, String)>> {
        self.read(move |c| {
            let row: Option<(String, String, String)> = c
                .prepare_cached(
                    "SELECT message_id, account_id, email FROM recipients WHERE id = ?1",
                )?
                .query_row([recipient_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let Some((mid, account, email)) = row else {
                return Ok(None);
            };
            let account: AccountId = account
                .parse()
                .map_err(|_| StoreError::Corrupt("account id".into()))?;
            let id: MessageId = mid
                .parse()
                .map_err(|_| StoreError::Corrupt("message id".into()))?;
            Ok(Some((get(c, account, id)?, email)))
        })
        .await
    }
    async fn find_by_smtp_id(&self, smtp_message_id: String) -> Result<Vec<MessageRecord>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {MSG_COLS} FROM messages WHERE smtp_message_id = ?1 LIMIT 10"
            ))?;
            let rows = st.query_map([smtp_message_id], message_row)?;
            let mut out: Vec<MessageRecord> = rows.collect::<rusqlite::Result<_>>()?;
            for m in &mut out {
                m.recipients = recipients_of(c, &m.id.to_string())?;
            }
            Ok(out)
        })
        .await
    }
    async fn recipient(&self, recipient_id: i64) -> Result<Option<RecipientRef>> {
        self.read(move |c| Ok(recipient_ref(c, recipient_id)?.map(|(r, _)| r)))
            .await
    }
    async fn record_engagement(
        &self,
        recipient_id: i64,
        engagement: Engagement,
        build: BuildEngagement,
    ) -> Result<bool> {
        self.write_bare(true, move |c| {
            record_engagement(c, recipient_id, engagement, build)
        })
        .await
    }
    async fn record_inbound(
        &self,
        effects: InboundEffects,
        rule: Arc<dyn SoftBounceRule>,
    ) -> Result<()> {
        self.write(true, move |c| record_inbound(c, effects, &*rule))
            .await
    }
    async fn record_unmatched(&self, r: UnmatchedReport) -> Result<()> {
        self.write(false, move |c| {
            c.prepare_cached(
                "INSERT INTO inbound_unmatched (received_at, kind, reason, envelope_to, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                ms(r.received_at),
                r.kind,
                r.reason,
                r.envelope_to,
                r.summary
            ])?;
            Ok(())
        })
        .await
    }
    async fn list_unmatched(&self, limit: u32) -> Result<Vec<UnmatchedReport>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, received_at, kind, reason, envelope_to, summary FROM inbound_unmatched
                 ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st.query_map([limit], unmatched_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
    async fn add_domain_key(&self, k: DomainKey) -> Result<()> {
        self.write(false, move |c| {
            let n = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO domain_keys
                     (account_id, domain, selector, algorithm, private_pem, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    k.account_id.to_string(),
                    k.domain,
                    k.selector,
                    k.algorithm,
                    k.private_pem.expose(),
                    ms(k.created_at)
                ])?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "{} already has a key",
                    k.domain
                )));
            }
            Ok(())
        })
        .await
    }
    async fn domain_keys(&self, account: Option<AccountId>) -> Result<Vec<DomainKey>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT account_id, domain, selector, algorithm, private_pem, created_at
                 FROM domain_keys WHERE ?1 IS NULL OR account_id = ?1 ORDER BY domain",
            )?;
            let rows = st.query_map([account.map(|a| a.to_string())], domain_key_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
    async fn remove_domain_key(&self, account: AccountId, domain: String) -> Result<()> {
        self.write(false, move |c| {
            let n = c
                .prepare_cached("DELETE FROM domain_keys WHERE account_id = ?1 AND domain = ?2")?
                .execute(params![account.to_string(), domain])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
    async fn remove_suppression(&self, account: AccountId, email: String) -> Result<()> {
        self.write(false, move |c| {
            let n = c
                .prepare_cached("DELETE FROM suppressions WHERE account_id = ?1 AND email = ?2")?
                .execute(params![account.to_string(), email])?;
            c.prepare_cached("DELETE FROM soft_bounces WHERE account_id = ?1 AND email = ?2")?
                .execute(params![account.to_string(), email])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }
}
