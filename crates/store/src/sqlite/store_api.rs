//! [`Store`] over SQLite: each method is one write on the writer thread
//! or one read on a reader's, delegating the SQL to the module of its area
//! (accounts, events, webhooks, jobs, idempotency keys).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use tidings_types::{
    AccountId, ApiKeyId, Event, EventId, EventType, NewEvent, Timestamp, Webhook, WebhookId,
};
use tokio::sync::Notify;

use super::{accounts, events, idempotency, jobs, webhooks, SqliteStore};
use crate::model::*;
use crate::{EventObserver, Result, Store};

#[async_trait]
impl Store for SqliteStore {
    async fn create_account(&self, account: &Account) -> Result<()> {
        let a = account.clone();
        self.write(false, move |c| accounts::create_account(c, &a))
            .await
    }
    async fn get_account(&self, id: AccountId) -> Result<Account> {
        self.read(move |c| accounts::get_account(c, id)).await
    }
    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.read(accounts::list_accounts).await
    }
    async fn create_api_key(&self, key: &ApiKeyRecord, hash: [u8; 32]) -> Result<()> {
        let k = key.clone();
        self.write(false, move |c| accounts::create_api_key(c, &k, hash))
            .await
    }
    async fn find_api_key(&self, hash: [u8; 32]) -> Result<Option<ApiKeyRecord>> {
        self.read(move |c| accounts::find_api_key(c, hash)).await
    }
    async fn list_api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyRecord>> {
        self.read(move |c| accounts::list_api_keys(c, account))
            .await
    }
    async fn revoke_api_key(&self, account: AccountId, id: ApiKeyId) -> Result<()> {
        self.write(false, move |c| accounts::revoke_api_key(c, account, id))
            .await
    }

    async fn account_tracking(&self, account: AccountId) -> Result<AccountTracking> {
        self.read(move |c| accounts::account_tracking(c, account))
            .await
    }

    async fn update_account_tracking(
        &self,
        account: AccountId,
        patch: AccountTrackingPatch,
        now: Timestamp,
    ) -> Result<AccountTracking> {
        self.write(false, move |c| {
            accounts::update_account_tracking(c, account, &patch, now)
        })
        .await
    }

    async fn tracking_domains(&self) -> Result<Vec<TrackingDomain>> {
        self.read(accounts::tracking_domains).await
    }

    fn observe_events(&self, observer: Arc<dyn EventObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }
    async fn record_events(&self, evs: Vec<NewEvent>) -> Result<Vec<Event>> {
        let evs = evs
            .into_iter()
            .map(events::Encoded::new)
            .collect::<Result<Vec<_>>>()?;
        self.write_bare(true, move |c| events::record_encoded(c, evs))
            .await
    }
    async fn events_after(&self, account: AccountId, after: i64, limit: u32) -> Result<Vec<Event>> {
        let head = self.durable_head();
        self.read(move |c| events::after(c, account, after, head, limit))
            .await
    }
    async fn get_event(&self, account: AccountId, id: EventId) -> Result<Event> {
        let head = self.durable_head();
        self.read(move |c| events::get(c, account, id, head)).await
    }

    async fn create_webhook(
        &self,
        webhook: &Webhook,
        since: Option<Timestamp>,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<u64> {
        let w = webhook.clone();
        self.write_change(move |c| {
            let n = webhooks::create(c, &w, since)?;
            if let Some(k) = &idempotency {
                let id = w.id.to_string();
                idempotency::take(c, w.account_id, k, &id, n as i64, w.created_at)?;
            }
            Ok(n)
        })
        .await
    }
    async fn idempotency_key(
        &self,
        account: AccountId,
        key: String,
        expired_before: Timestamp,
    ) -> Result<Option<IdempotencyRecord>> {
        self.read(move |c| idempotency::get(c, account, &key, expired_before))
            .await
    }
    async fn update_webhook(&self, webhook: &Webhook, resume: bool, now: Timestamp) -> Result<()> {
        let w = webhook.clone();
        self.write_change(move |c| webhooks::update(c, &w, resume, now))
            .await
    }
    async fn delete_webhook(&self, account: AccountId, id: WebhookId) -> Result<()> {
        self.write_change(move |c| webhooks::delete(c, account, id))
            .await
    }
    async fn get_webhook(&self, account: AccountId, id: WebhookId) -> Result<Webhook> {
        self.read(move |c| webhooks::get(c, Some(account), id))
            .await
    }
    async fn load_webhook(&self, id: WebhookId) -> Result<Webhook> {
        self.read(move |c| webhooks::get(c, None, id)).await
    }
    async fn list_webhooks(&self, account: AccountId) -> Result<Vec<Webhook>> {
        self.read(move |c| webhooks::list(c, account)).await
    }
    async fn webhook_status(&self, account: AccountId, id: WebhookId) -> Result<Vec<TypeState>> {
        self.read(move |c| webhooks::status(c, account, id)).await
    }
    async fn pause_states(&self, id: WebhookId) -> Result<Vec<PauseState>> {
        self.read(move |c| webhooks::pause_states(c, id)).await
    }
    async fn resume_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
        types: &[EventType],
        now: Timestamp,
    ) -> Result<Vec<EventType>> {
        let types = types.to_vec();
        self.write_change(move |c| webhooks::resume(c, account, id, &types, now))
            .await
    }
    async fn replay(
        &self,
        account: AccountId,
        id: WebhookId,
        from: Timestamp,
        to: Timestamp,
        types: &[EventType],
        now: Timestamp,
    ) -> Result<u64> {
        let types = types.to_vec();
        self.write_change(move |c| webhooks::replay(c, account, id, from, to, &types, now))
            .await
    }
    async fn enqueue_test_event(&self, webhook: WebhookId, event: NewEvent) -> Result<Event> {
        let event = events::Encoded::new(event)?;
        self.write_change(move |c| events::record_test(c, webhook, event))
            .await
    }

    async fn record_test_attempt(&self, event: NewEvent, attempt: AttemptRecord) -> Result<()> {
        let event = events::Encoded::new(event)?;
        self.write(false, move |c| {
            events::record_test_attempt(c, event, &attempt)
        })
        .await
    }

    async fn lease_jobs(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip: &[WebhookId],
    ) -> Result<Vec<LeasedJob>> {
        let skip = skip.to_vec();
        let raw = self
            .write_volatile(move |c| jobs::lease(c, now, lease_until, limit, &skip))
            .await?;
        // A job whose event does not parse is left leased (and logged each
        // time its lease runs out) rather than failing the whole batch.
        Ok(raw
            .into_iter()
            .filter_map(|r| {
                r.parse()
                    .map_err(|e| tracing::error!(error = %e, "cannot deliver a job"))
                    .ok()
            })
            .collect())
    }
    async fn stream_heads(&self) -> Result<Vec<StreamHead>> {
        self.read(jobs::stream_heads).await
    }
    async fn log_activity(&self, after: i64) -> Result<LogActivity> {
        let head = self.durable_head();
        if after >= head {
            return Ok(LogActivity {
                head,
                accounts: Vec::new(),
            });
        }
        self.read(move |c| jobs::log_activity(c, after, head)).await
    }
    async fn stream(&self, webhook: WebhookId, after: i64, limit: u32) -> Result<Vec<StreamItem>> {
        let head = self.durable_head();
        let raw = self
            .read(move |c| jobs::stream(c, webhook, after, head, limit))
            .await?;
        // Parsed here, off the pool's connection. An event whose data does
        // not parse can never be sent: it is logged and stepped over.
        Ok(raw
            .into_iter()
            .map(|r| {
                let seq = r.seq;
                r.parse().unwrap_or_else(|e| {
                    tracing::error!(error = %e, "cannot deliver an event");
                    StreamItem {
                        seq,
                        job: None,
                        hold: false,
                    }
                })
            })
            .collect())
    }
    fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }
    async fn complete_jobs(
        &self,
        done: Arc<Completion>,
        rule: Arc<dyn crate::PauseRule>,
    ) -> Result<CompletionSummary> {
        // Deliveries and give-ups make nothing due; retries, holds and
        // unsent jobs do (those of a type resumed meanwhile are due at once).
        let makes_jobs = !done.holds.is_empty()
            || !done.unleases.is_empty()
            || done
                .outcomes
                .iter()
                .any(|o| !matches!(o.next, Next::Done | Next::Exhausted));
        let summary = self
            .write_bare(false, move |c| jobs::complete(c, &done, &*rule))
            .await?;
        if makes_jobs {
            self.changed();
        }
        Ok(summary)
    }
    async fn next_due(&self) -> Result<Option<Timestamp>> {
        self.read(jobs::next_due).await
    }
    async fn release_leases(&self, now: Timestamp) -> Result<u64> {
        self.write_change(move |c| jobs::release_leases(c, now))
            .await
    }
    async fn queue_stats(&self, now: Timestamp) -> Result<QueueStats> {
        self.read(move |c| jobs::stats(c, now)).await
    }

    async fn list_attempts(
        &self,
        account: AccountId,
        filter: &AttemptFilter,
    ) -> Result<Vec<AttemptRecord>> {
        let f = filter.clone();
        self.read(move |c| jobs::list_attempts(c, account, &f))
            .await
    }

    async fn prune(&self, before: Timestamp) -> Result<PruneSummary> {
        self.write(false, move |c| {
            let summary = jobs::prune(c, before)?;
            idempotency::prune(c, before)?;
            Ok(summary)
        })
        .await
    }

    fn jobs_notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }
}
