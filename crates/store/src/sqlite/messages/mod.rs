//! SQLite implementation of [`MessageStore`]: each method is one write or
//! read on the engine, with its SQL in the module of its concern.

mod accept;
mod domain_keys;
mod engagement;
mod inbound;
mod queue;
mod records;
mod schema;
mod suppressions;

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use tidings_types::{AccountId, Event, MessageId, Timestamp};
use tokio::sync::Notify;

use super::events::{event_at, EVENT_COLS};
use super::{ms, opt_ts, SqliteStore};
use crate::messages::*;
use crate::{Result, SoftBounceRule, StoreError};
use records::{get, message_row, recipients_of, MSG_COLS};
use suppressions::suppression_row;

pub(super) use domain_keys::SCHEMA_DKIM;
pub(super) use schema::{SCHEMA, SCHEMA_ENGAGEMENT, SCHEMA_OPENS_IN_LOG};

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
            .write_notify(Some(n), move |c| accept::accept(c, message, recipients))
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
        self.write_volatile(move |c| queue::lease(c, now, until, limit))
            .await
    }
    async fn complete_outbound(
        &self,
        results: Vec<OutboundResult>,
        rule: Arc<dyn SoftBounceRule>,
    ) -> Result<()> {
        let n = self.notify.clone();
        let r = self
            .write_notify(Some(n), move |c| queue::complete(c, results, &*rule))
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
            suppressions::add_suppression(c, account, &email, &reason, at)?;
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
        self.read(move |c| Ok(engagement::recipient_ref(c, recipient_id)?.map(|(r, _)| r)))
            .await
    }
    async fn record_engagement(
        &self,
        recipient_id: i64,
        engagement: Engagement,
        build: BuildEngagement,
    ) -> Result<bool> {
        self.write_bare(true, move |c| {
            engagement::record_engagement(c, recipient_id, engagement, build)
        })
        .await
    }
    async fn record_inbound(
        &self,
        effects: InboundEffects,
        rule: Arc<dyn SoftBounceRule>,
    ) -> Result<()> {
        self.write(true, move |c| inbound::record_inbound(c, effects, &*rule))
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
            let rows = st.query_map([limit], inbound::unmatched_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
    async fn add_domain_key(&self, k: DomainKey) -> Result<()> {
        self.write(false, move |c| domain_keys::add(c, k)).await
    }
    async fn domain_keys(&self, account: Option<AccountId>) -> Result<Vec<DomainKey>> {
        self.read(move |c| domain_keys::list(c, account)).await
    }
    async fn set_domain_verified(
        &self,
        account: AccountId,
        domain: String,
        at: Timestamp,
    ) -> Result<()> {
        self.write(false, move |c| {
            domain_keys::set_verified(c, account, domain, at)
        })
        .await
    }
    async fn remove_domain_key(&self, account: AccountId, domain: String) -> Result<()> {
        self.write(false, move |c| domain_keys::remove(c, account, domain))
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
