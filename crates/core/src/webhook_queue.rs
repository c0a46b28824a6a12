//! The webhook dispatcher's use cases: what it reads (the live streams of
//! the log, the webhooks and their pause states), what it leases (due
//! jobs), and what it commits (attempts, holds, settled streams, and the
//! pauses they cause). Each is one store call, passed
//! through as the store made it — no copy of a streamed event or a leased
//! job on the way — so that the dispatcher is a front end of the use cases
//! and never holds the store itself.

use std::sync::Arc;

use tidings_store::{
    Completion, CompletionSummary, LeasedJob, LogActivity, PauseState, StoreError, StreamHead,
    StreamItem,
};
use tidings_types::{Timestamp, Webhook, WebhookId};

use crate::Tidings;

type Result<T> = std::result::Result<T, StoreError>;

impl Tidings {
    /// Make every leased job due again (at start, when this process is
    /// the store's only user); how many there were.
    pub async fn release_webhook_leases(&self) -> Result<u64> {
        self.store.release_leases(self.clock.now()).await
    }

    /// Notified when new events or jobs may be waiting.
    pub fn webhook_jobs_notify(&self) -> Arc<tokio::sync::Notify> {
        self.store.jobs_notify()
    }

    /// A counter that moves when a webhook is created, changed or deleted,
    /// or a job may have become due (see `Store::changes`).
    pub fn webhook_changes(&self) -> u64 {
        self.store.changes()
    }

    /// The earliest due time of any job that is not held.
    pub async fn next_webhook_job_due(&self) -> Result<Option<Timestamp>> {
        self.store.next_due().await
    }

    /// Lease up to `limit` due jobs of webhooks not in `skip`, until `until`.
    pub async fn lease_webhook_jobs(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
        skip: &[WebhookId],
    ) -> Result<Vec<LeasedJob>> {
        self.store.lease_jobs(now, until, limit, skip).await
    }

    /// Which accounts recorded events after `after`, and the log's head.
    pub async fn log_activity(&self, after: i64) -> Result<LogActivity> {
        self.store.log_activity(after).await
    }

    /// Where every webhook's live stream is settled.
    pub async fn stream_heads(&self) -> Result<Vec<StreamHead>> {
        self.store.stream_heads().await
    }

    /// Up to `limit` events of `webhook`'s live stream after `after`.
    pub async fn read_stream(
        &self,
        webhook: WebhookId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StreamItem>> {
        self.store.stream(webhook, after, limit).await
    }

    /// A webhook as deliveries use it (whichever account it is of).
    pub async fn webhook_for_delivery(&self, id: WebhookId) -> Result<Webhook> {
        self.store.load_webhook(id).await
    }

    /// Which event types are paused on a webhook.
    pub async fn webhook_pause_states(&self, id: WebhookId) -> Result<Vec<PauseState>> {
        self.store.pause_states(id).await
    }

    /// Commit a batch of attempts, holds and settled streams, pausing an
    /// event type as [`crate::rules::pause`] says (the rule the
    /// dispatcher's gates close on). Shared, so that the same batch can be
    /// tried again after an error.
    pub async fn complete_webhook_jobs(&self, done: Arc<Completion>) -> Result<CompletionSummary> {
        self.store
            .complete_jobs(done, self.pause_rule.clone())
            .await
    }
}
