//! Persistence for tidings: the only crate that speaks SQL.
//!
//! The domain talks to a [`Store`], an async trait whose methods are whole
//! use-case-sized transactions ("record these events", "lease due jobs",
//! "complete these attempts and settle these streams"), never
//! individual statements. That is what lets every state change commit
//! together with the work it causes (no dual writes), and what lets a
//! PostgreSQL backend sit behind the same trait without the domain noticing.
//!
//! A new event costs one row: each webhook reads its account's events
//! straight from the log (its *live stream*), and stores only how far the
//! stream is settled. An event becomes a delivery *job* only when it must
//! wait: to be retried, or held while its type is paused. Backfill, replay
//! and test events are jobs from the start. Jobs are leased, not locked:
//! leasing moves a job's `due_at` to the lease's expiry, so a job whose
//! worker died simply becomes due again. A paused (webhook, event type)
//! pair *holds* its jobs instead of dropping them; resuming releases them
//! in log order. A stream is settled only past events whose outcome is
//! committed, so after a crash its unsettled events are read again.
//!
//! The SQLite backend ([`sqlite::SqliteStore`]) funnels every write through
//! one writer thread that commits whatever has queued up in a single
//! transaction (group commit), so many small writes share one fsync while
//! each caller still gets its answer only after its data is durable.

#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod messages;
pub mod model;
pub mod rules;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use tidings_types::{
    AccountId, ApiKeyId, Event, EventType, NewEvent, Timestamp, Variant, Webhook, WebhookId,
};

pub use messages::*;
pub use model::*;
pub use rules::{FailureFacts, PauseRule, SoftBounceRule};

/// A backend's own error, kept only as the source of a [`StoreError`].
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A store failure, in words that hold for every backend. `NotFound` and
/// `Conflict` are expected outcomes the API maps to 404/409; the rest are
/// operational failures. A backend maps its own errors to these where it
/// meets them, and keeps them only as the boxed source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend cannot serve the request now (busy, locked, out of
    /// space, unreachable); the same request may succeed later.
    #[error("the store is unavailable")]
    Unavailable(#[source] BackendError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The backend failed for a reason of its own (a bug, a broken
    /// invariant, an I/O error).
    #[error("storage error")]
    Internal(#[source] BackendError),
    #[error("the store is shutting down")]
    Closed,
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Internal(Box::new(e))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An event a backend committed to the log, as an [`EventObserver`] is
/// told of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommittedEvent {
    pub event_type: EventType,
    pub variant: Variant,
}

impl CommittedEvent {
    pub fn new(event_type: EventType, data: &tidings_types::EventData) -> Self {
        Self {
            event_type,
            variant: Variant::of(event_type, data),
        }
    }
}

/// Told of the events a store commits to the log, whichever use case
/// committed them: the one place that sees every event (the metrics count
/// there). Called once per committed write, after the commit is durable,
/// never for a write that rolled back, nor for test events (which are not
/// in the log). It runs on the store's own threads: it must be quick and
/// must not block.
pub trait EventObserver: Send + Sync + 'static {
    fn committed(&self, events: &[CommittedEvent]);
}

/// Everything tidings persists. Each method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- accounts and keys ----
    async fn create_account(&self, account: &Account) -> Result<()>;
    async fn get_account(&self, id: AccountId) -> Result<Account>;
    async fn list_accounts(&self) -> Result<Vec<Account>>;
    async fn create_api_key(&self, key: &ApiKeyRecord, hash: [u8; 32]) -> Result<()>;
    /// The key whose SHA-256 hash is `hash`, if it exists and is not revoked.
    async fn find_api_key(&self, hash: [u8; 32]) -> Result<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self, account: AccountId) -> Result<Vec<ApiKeyRecord>>;
    async fn revoke_api_key(&self, account: AccountId, id: ApiKeyId) -> Result<()>;
    /// An account's tracking settings; the defaults when it never set any.
    async fn account_tracking(&self, account: AccountId) -> Result<AccountTracking>;
    /// Apply a partial update to an account's tracking settings (read,
    /// change and write in one transaction, so concurrent updates of
    /// different settings both stick). Returns the settings after it;
    /// `NotFound` for an unknown account.
    async fn update_account_tracking(
        &self,
        account: AccountId,
        patch: AccountTrackingPatch,
        now: Timestamp,
    ) -> Result<AccountTracking>;
    /// Every account's custom tracking domain (its base URL), for the
    /// accounts that set one.
    async fn tracking_domains(&self) -> Result<Vec<TrackingDomain>>;

    // ---- the event log ----
    /// Tell `observer` of every event committed from now on. One observer
    /// per store: a second call is ignored (and answers `false`).
    fn observe_events(&self, observer: Arc<dyn EventObserver>) -> bool;
    /// Append events. Every webhook of the account that takes their type
    /// reads them from its live stream.
    async fn record_events(&self, events: Vec<NewEvent>) -> Result<Vec<Event>>;
    /// Events of an account with `seq > after`, in log order, up to the
    /// log's durable head: a poller is never handed an event that a power
    /// cut could still take back.
    async fn events_after(&self, account: AccountId, after: i64, limit: u32) -> Result<Vec<Event>>;
    async fn get_event(&self, account: AccountId, id: tidings_types::EventId) -> Result<Event>;

    // ---- webhooks ----
    /// Insert a webhook, its per-type state, and backfill jobs for the
    /// account's matching events at or after `backfill_since`. Returns the
    /// number of backfilled events.
    /// With an `Idempotency-Key`, the key is taken in the same transaction
    /// (a live key already taken: [`StoreError::Conflict`] with
    /// [`IDEMPOTENCY_KEY_TAKEN`], and nothing is created).
    async fn create_webhook(
        &self,
        webhook: &Webhook,
        backfill_since: Option<Timestamp>,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<u64>;
    /// Replace a webhook's settings and secrets. When `resume` is set, every
    /// paused event type resumes and its held jobs become due at `now`.
    async fn update_webhook(&self, webhook: &Webhook, resume: bool, now: Timestamp) -> Result<()>;
    async fn delete_webhook(&self, account: AccountId, id: WebhookId) -> Result<()>;
    async fn get_webhook(&self, account: AccountId, id: WebhookId) -> Result<Webhook>;
    /// A webhook by id alone, for the dispatcher.
    async fn load_webhook(&self, id: WebhookId) -> Result<Webhook>;
    async fn list_webhooks(&self, account: AccountId) -> Result<Vec<Webhook>>;
    async fn webhook_status(&self, account: AccountId, id: WebhookId) -> Result<Vec<TypeState>>;
    /// Whether each of a webhook's types is paused, and its consecutive
    /// failures, for the dispatcher.
    async fn pause_states(&self, id: WebhookId) -> Result<Vec<PauseState>>;
    /// Resume the given (or all, when empty) event types of a webhook. A
    /// resume moves the webhook's version, as a change does, so that a
    /// dispatcher learns it.
    async fn resume_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
        types: &[EventType],
        now: Timestamp,
    ) -> Result<Vec<EventType>>;
    /// Enqueue the account's events in `[from, to)` for one webhook, whatever
    /// its current subscriptions say about the past. Returns how many.
    async fn replay(
        &self,
        account: AccountId,
        id: WebhookId,
        from: Timestamp,
        to: Timestamp,
        types: &[EventType],
        now: Timestamp,
    ) -> Result<u64>;
    /// Record a test event outside the account's log and enqueue it for one
    /// webhook only.
    async fn enqueue_test_event(&self, webhook: WebhookId, event: NewEvent) -> Result<Event>;
    /// Record a test attempt made outside the queue: its example event,
    /// outside the account's log like every test event, and its row in the
    /// call log. No job, and no failure count or pause.
    async fn record_test_attempt(&self, event: NewEvent, attempt: AttemptRecord) -> Result<()>;

    // ---- delivery jobs ----
    /// Lease up to `limit` due jobs (oldest due first, then log order),
    /// skipping webhooks in `skip`; each leased job becomes due again at
    /// `lease_until` unless completed first.
    async fn lease_jobs(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        skip: &[WebhookId],
    ) -> Result<Vec<LeasedJob>>;
    /// Every webhook's live stream, as far as it is settled.
    async fn stream_heads(&self) -> Result<Vec<StreamHead>>;
    /// The log's durable head, and the accounts with events after `after`
    /// up to it: which streams have something new. Everything at or below
    /// the head is committed for good (fsync'd where the store promises
    /// that), so a dispatcher may ask next from there.
    async fn log_activity(&self, after: i64) -> Result<LogActivity>;
    /// The next `limit` events of a webhook's live stream after `after`, up
    /// to the log's durable head. The stream belongs to one dispatcher: it
    /// alone reads and settles it.
    async fn stream(&self, webhook: WebhookId, after: i64, limit: u32) -> Result<Vec<StreamItem>>;
    /// A count that moves whenever a webhook is created, changed or
    /// deleted, or a job may have become due, by any write but leasing:
    /// what tells a dispatcher to read the stream heads and the next due
    /// time again. New events do not move it; they only wake the dispatcher.
    fn changes(&self) -> u64;
    /// Record attempts and move each job on (done, retry, held or dead),
    /// updating per-type failure state and pausing where `rule` says (asked
    /// after each counted failure, in the same transaction); hold live
    /// events of paused types; settle live streams.
    /// Shared, so that a caller can try the same batch again after an error.
    async fn complete_jobs(
        &self,
        done: Arc<Completion>,
        rule: Arc<dyn PauseRule>,
    ) -> Result<CompletionSummary>;
    /// The earliest `due_at` of any job that is not held.
    async fn next_due(&self) -> Result<Option<Timestamp>>;
    /// Make every leased job due now (single-process startup after a crash).
    async fn release_leases(&self, now: Timestamp) -> Result<u64>;
    async fn queue_stats(&self, now: Timestamp) -> Result<QueueStats>;

    // ---- call log ----
    async fn list_attempts(
        &self,
        account: AccountId,
        filter: &AttemptFilter,
    ) -> Result<Vec<AttemptRecord>>;

    /// The live record of an `Idempotency-Key`: taken at or after
    /// `expired_before`.
    async fn idempotency_key(
        &self,
        account: AccountId,
        key: String,
        expired_before: Timestamp,
    ) -> Result<Option<IdempotencyRecord>>;

    // ---- operations ----
    /// Delete events and attempts older than `before`, and idempotency keys
    /// taken before it. Events that still
    /// have pending jobs, or that a live stream has not settled, are kept.
    async fn prune(&self, before: Timestamp) -> Result<PruneSummary>;
    /// Resolves after there may be something new to deliver: new events,
    /// or a [`Store::changes`]. Spurious wakes are allowed.
    fn jobs_notify(&self) -> std::sync::Arc<tokio::sync::Notify>;
}
