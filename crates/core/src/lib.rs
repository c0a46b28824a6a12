//! The use cases of tidings, independent of how they are reached.
//!
//! The HTTP API, the CLI, and (later) the SMTP and tracking front ends all
//! call [`Tidings`]; none of them talks to the store directly. This is where
//! input is validated against the rules of the product (a webhook's URL must
//! not point into private networks, a field selection must name catalogue
//! fields, an event's data must fit its type), and where a use case becomes
//! exactly one store transaction — so an event and the deliveries it causes
//! are always committed together.
//!
//! Every outcome is decided here, whichever front end meets it: what an
//! outbound SMTP reply means for a recipient ([`outcomes`]), what a message
//! looks like on its way out (tracking, DKIM, VERP), what an inbound report
//! or a tracking request records. The workers (webhook delivery, outbound
//! mail) are front ends too: they lease and complete through [`work`] and
//! the outbound use cases, and the I/O core does not own — resolving a
//! webhook's host, making a webhook attempt — is reached through
//! [`ports`], which the delivery crate implements.

pub mod accounts;
pub mod compose;
pub mod domain_proof;
pub mod domains;
mod error;
pub mod idempotency;
pub mod inbound;
pub mod metrics;
pub mod operations;
pub mod outbound_queue;
pub mod outcomes;
pub mod payloads;
pub mod ports;
mod prepare;
pub mod rules;
pub mod samples;
pub mod sending;
pub mod suppressions;
pub mod tracking;
pub mod tracking_hosts;
pub mod tracking_settings;
pub mod webhook_queue;
pub mod webhook_test;
pub mod webhooks;
pub mod work;

use std::sync::Arc;
use std::time::Duration;

use metrics::Metrics;
use ports::{HostResolver, WebhookAttempts};
use tidings_store::{MessageStore, Store};
use tidings_types::address::AddressPolicy;
use tidings_types::{AccountId, Clock, Event, EventData, EventType, NewEvent};

pub use error::{CoreError, ErrorCode};
/// The stored records the use cases take and return, for the front ends
/// (which never reach the store themselves).
pub use tidings_store::{
    Account, ApiKeyRecord, AttemptFilter, AttemptOutcome, AttemptRecord, MessageRecord,
    OutboundJob, OutboundQueueStats, PauseReason, PruneSummary, QueueStats, RecipientStatus,
    Source, Suppression, TypeState, UnmatchedReport,
};

/// Rules the operator sets.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// How far back a new webhook is backfilled (zero disables).
    pub backfill: Duration,
    /// Which webhook targets are allowed.
    pub address_policy: AddressPolicy,
    /// How long the old secret keeps signing after a rotation, by default.
    pub secret_overlap: Duration,
    /// Domain used in generated Message-IDs and the SMTP greeting.
    pub hostname: String,
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most recipients of one message.
    pub max_recipients: usize,
    /// Consecutive soft bounces that suppress an address.
    pub soft_bounce_limit: u32,
    /// A complaint also records an `unsubscribe` (method `complaint`).
    pub complaint_unsubscribes: bool,
    /// Consecutive failed attempts of one type on one webhook that pause it.
    pub pause_after: u32,
    /// How long events and attempts are kept.
    pub retention: Duration,
    /// Accept mail from any From domain, not only the account's sending
    /// domains (development only: anyone with a key could send as anyone).
    pub allow_any_sender: bool,
    /// Whose sending and tracking domains must be proven by DNS first.
    pub domain_proof: domain_proof::ProofPolicy,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            backfill: Duration::from_secs(7 * 24 * 3600),
            address_policy: AddressPolicy::default(),
            secret_overlap: Duration::from_secs(24 * 3600),
            pause_after: 100,
            hostname: "localhost".into(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 100,
            soft_bounce_limit: 3,
            complaint_unsubscribes: false,
            retention: Duration::from_secs(30 * 24 * 3600),
            allow_any_sender: false,
            domain_proof: domain_proof::ProofPolicy::default(),
        }
    }
}

/// The application: cheap to clone, shared by every front end.
#[derive(Clone)]
pub struct Tidings {
    store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<CoreConfig>,
    metrics: Option<Arc<Metrics>>,
    messages: Option<Arc<dyn MessageStore>>,
    verp: Option<Arc<tidings_mail::verp::VerpCodec>>,
    dkim: Arc<domains::DkimRegistry>,
    tracker: Option<Arc<tracking::Tracker>>,
    txt_resolver: Option<Arc<dyn domain_proof::TxtResolver>>,
    operator: Arc<std::sync::OnceLock<AccountId>>,
    pause_rule: Arc<dyn tidings_store::PauseRule>,
    soft_bounce_rule: Arc<dyn tidings_store::SoftBounceRule>,
    signed: Arc<prepare::SignedOnce>,
    webhook_attempts: Option<Arc<dyn WebhookAttempts>>,
    host_resolver: Option<Arc<dyn HostResolver>>,
}

impl Tidings {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: CoreConfig) -> Self {
        Self {
            store,
            clock,
            pause_rule: Arc::new(rules::PauseAfter(config.pause_after)),
            soft_bounce_rule: Arc::new(rules::SoftBounceLimit(config.soft_bounce_limit)),
            config: Arc::new(config),
            metrics: None,
            messages: None,
            verp: None,
            dkim: Arc::default(),
            tracker: None,
            txt_resolver: None,
            operator: Arc::default(),
            signed: Arc::default(),
            webhook_attempts: None,
            host_resolver: None,
        }
    }

    /// Check domains' DNS records through this resolver.
    pub fn with_txt_resolver(mut self, resolver: Arc<dyn domain_proof::TxtResolver>) -> Self {
        self.txt_resolver = Some(resolver);
        self
    }

    /// Make webhook tests through this port: the client deliveries use,
    /// so a test meets the same address policy and timeout.
    pub fn with_webhook_attempts(mut self, attempts: Arc<dyn WebhookAttempts>) -> Self {
        self.webhook_attempts = Some(attempts);
        self
    }

    /// Resolve a webhook's host name when it is saved, through this port,
    /// so a name that resolves only to refused addresses is refused then.
    pub fn with_host_resolver(mut self, resolver: Arc<dyn HostResolver>) -> Self {
        self.host_resolver = Some(resolver);
        self
    }

    /// Use VERP return paths (and recognise them in inbound reports).
    pub fn with_verp(mut self, codec: Arc<tidings_mail::verp::VerpCodec>) -> Self {
        self.verp = Some(codec);
        self
    }

    pub fn verp(&self) -> Option<&Arc<tidings_mail::verp::VerpCodec>> {
        self.verp.as_ref()
    }

    /// Enable sending, with the store of messages and suppressions.
    pub fn with_messages(mut self, messages: Arc<dyn MessageStore>) -> Self {
        self.messages = Some(messages);
        self
    }

    pub(crate) fn messages(&self) -> Result<&Arc<dyn MessageStore>, CoreError> {
        self.messages
            .as_ref()
            .ok_or_else(|| CoreError::Internal("sending is not configured".into()))
    }

    /// Count what the use cases do (accepted messages, inbound reports)
    /// in these metrics. Events are counted by the store, where they
    /// commit (see [`tidings_store::EventObserver`]).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The metrics, for the front ends to count in (SMTP sessions).
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Record one event for an account: the entry point every producer of
    /// events (sending, tracking, inbound) calls. The event is durable when
    /// this returns, and so is its delivery: every webhook that takes its
    /// type reads it from the log.
    pub async fn record_event(
        &self,
        account: AccountId,
        event_type: EventType,
        data: EventData,
    ) -> Result<Event, CoreError> {
        let ev = NewEvent::new(account, event_type, self.clock.now(), data)?;
        let mut out = self.store.record_events(vec![ev]).await?;
        out.pop()
            .ok_or_else(|| CoreError::Internal("no event recorded".into()))
    }

    /// Record several events in one transaction.
    pub async fn record_events(
        &self,
        events: Vec<(AccountId, EventType, EventData)>,
    ) -> Result<Vec<Event>, CoreError> {
        let now = self.clock.now();
        let evs = events
            .into_iter()
            .map(|(a, t, d)| NewEvent::new(a, t, now, d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.store.record_events(evs).await?)
    }

    /// Events after a polling cursor, in log order.
    pub async fn events_after(
        &self,
        account: AccountId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, CoreError> {
        Ok(self
            .store
            .events_after(account, after, limit.clamp(1, 1000))
            .await?)
    }

    /// One event of an account's log, by id.
    pub async fn get_event(
        &self,
        account: AccountId,
        id: tidings_types::EventId,
    ) -> Result<Event, CoreError> {
        Ok(self.store.get_event(account, id).await?)
    }

    /// Delete events and attempts past the retention period.
    pub async fn prune(&self) -> Result<tidings_store::PruneSummary, CoreError> {
        let before = self.clock.now()
            - chrono::Duration::from_std(self.config.retention).unwrap_or(chrono::Duration::MAX);
        Ok(self.store.prune(before).await?)
    }
}
