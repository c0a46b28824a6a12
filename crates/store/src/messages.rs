//! Persistence of the sending side: accepted messages, one delivery job per
//! recipient, and the suppression list. Kept in its own trait so the event
//! log's [`crate::Store`] stays readable; both are implemented by every
//! backend.

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use tidings_types::{AccountId, Event, MessageId, NewEvent, Timestamp};

use crate::{Result, SoftBounceRule};
use std::sync::Arc;

/// Where a message came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Http,
    Smtp,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Http => "http",
            Source::Smtp => "smtp",
        }
    }
}

/// A message as the accept path stores it.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub account_id: AccountId,
    pub created_at: Timestamp,
    pub source: Source,
    /// Envelope sender.
    pub mail_from: String,
    /// The From header address.
    pub from: String,
    pub subject: Option<String>,
    pub smtp_message_id: String,
    pub custom_id: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<String>,
    pub track_opens: bool,
    pub track_clicks: bool,
    /// Whether `List-Unsubscribe` goes out with it (`None`: tracking is
    /// not configured).
    pub track_unsubscribe: Option<bool>,
    /// The base URL of its tracking links (`None`: tracking is not
    /// configured).
    pub tracking_base: Option<String>,
    pub raw: Bytes,
    /// The request's `Idempotency-Key`, taken in the message's transaction.
    pub idempotency: Option<crate::IdempotencyKey>,
}

/// A recipient of a new message, with the `dropped` event to record if
/// the address turns out to be suppressed when the message commits.
#[derive(Debug, Clone)]
pub struct NewRecipient {
    /// Normalized address.
    pub email: String,
    pub dropped: NewEvent,
}

/// Where a recipient's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecipientStatus {
    Queued,
    Deferred,
    Sent,
    Bounced,
    Blocked,
    Dropped,
}

impl RecipientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Queued => "queued",
            RecipientStatus::Deferred => "deferred",
            RecipientStatus::Sent => "sent",
            RecipientStatus::Bounced => "bounced",
            RecipientStatus::Blocked => "blocked",
            RecipientStatus::Dropped => "dropped",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Deferred,
            Self::Sent,
            Self::Bounced,
            Self::Blocked,
            Self::Dropped,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
    /// Whether more attempts will be made.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Queued | Self::Deferred)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RecipientState {
    pub email: String,
    pub status: RecipientStatus,
    pub attempts: u32,
    pub last_response: Option<String>,
    pub updated_at: Timestamp,
}

/// A stored message with its recipients.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    pub id: MessageId,
    pub account_id: AccountId,
    pub created_at: Timestamp,
    pub source: Source,
    pub mail_from: String,
    pub from: String,
    pub subject: Option<String>,
    pub smtp_message_id: String,
    pub custom_id: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<String>,
    pub track_opens: bool,
    pub track_clicks: bool,
    /// Whether `List-Unsubscribe` went out with it, as decided at accept
    /// time; `None` for messages stored before that was recorded.
    pub track_unsubscribe: Option<bool>,
    /// The base URL its tracking links were made with, as decided at
    /// accept time; `None` for messages stored before that was recorded.
    pub tracking_base: Option<String>,
    pub size: u64,
    pub recipients: Vec<RecipientState>,
}

/// One recipient of a stored message, as a tracking request needs it: the
/// message without its recipient list, and this recipient's delivery.
#[derive(Debug, Clone)]
pub struct RecipientRef {
    pub message: std::sync::Arc<MessageRecord>,
    pub email: String,
    pub status: RecipientStatus,
    /// When the status last changed (for `sent`: when it was delivered).
    pub updated_at: Timestamp,
}

/// What kind of engagement [`MessageStore::record_engagement`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engagement {
    Open,
    Click { link_index: u32 },
}

/// A recipient's engagement before the one being recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngagementHistory {
    /// An open of this recipient is in the event log already (only
    /// looked up when recording an open).
    pub opened: bool,
    pub clicks: u64,
    /// The latest clicks (at most [`RECENT_CLICKS`]), oldest first.
    pub recent_clicks: Vec<(Timestamp, u32)>,
}

/// How many of a recipient's latest clicks are kept for [`EngagementHistory`].
pub const RECENT_CLICKS: usize = 8;

/// Builds an engagement's event from the recipient and its engagement
/// history (`None`: record nothing). The event must carry the recipient's
/// `message_id` and `email` (as [`MessageRecord::event_data`] has them):
/// that is how a later open of the recipient finds this one. It runs inside the transaction that
/// records the event, so concurrent engagements of one recipient see each
/// other (first open, bursts of clicks).
pub type BuildEngagement =
    Box<dyn FnOnce(&RecipientRef, &EngagementHistory) -> Option<NewEvent> + Send>;

impl MessageRecord {
    /// The fields every event about this message carries, for one recipient.
    pub fn event_data(&self, email: &str) -> tidings_types::EventData {
        let mut d = tidings_types::EventData::new();
        let mut put = |k: &str, v: serde_json::Value| {
            if !v.is_null() {
                d.insert(k.to_string(), v);
            }
        };
        put("email", email.into());
        put("message_id", self.id.to_string().into());
        put("smtp_message_id", self.smtp_message_id.clone().into());
        put("custom_id", self.custom_id.clone().into());
        put("group", self.group.clone().into());
        put("tags", self.tags.clone().into());
        put("subject", self.subject.clone().into());
        put("from", self.from.clone().into());
        d
    }
}

/// One recipient's delivery, leased to an outbound worker.
#[derive(Debug, Clone)]
pub struct OutboundJob {
    pub recipient_id: i64,
    pub email: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub first_attempt_at: Option<Timestamp>,
    pub message: std::sync::Arc<MessageRecord>,
    pub raw: Bytes,
}

/// What an outbound attempt did to a recipient.
#[derive(Debug, Clone)]
pub struct OutboundResult {
    pub recipient_id: i64,
    pub account_id: AccountId,
    pub email: String,
    pub status: RecipientStatus,
    /// When to try again (for `Deferred`).
    pub retry_at: Option<Timestamp>,
    pub response: String,
    /// The event this outcome produces, committed with it.
    pub event: NewEvent,
    /// Add the address to the suppression list with this reason.
    pub suppress: Option<String>,
    /// A soft failure that counts toward suppression after N in a row.
    pub soft_failure: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub email: String,
    pub reason: String,
    pub created_at: Timestamp,
}

/// The outbound queue at one moment, for the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundQueueStats {
    /// Recipients waiting for a delivery attempt: queued, deferred, or
    /// leased to a worker right now.
    pub depth: u64,
    /// When the message of the longest-waiting of them was accepted.
    pub oldest_accepted_at: Option<Timestamp>,
}

/// What an inbound report does, committed in one transaction.
#[derive(Debug, Clone, Default)]
pub struct InboundEffects {
    pub events: Vec<NewEvent>,
    /// (account, email, reason) to add to suppression lists.
    pub suppress: Vec<(AccountId, String, String)>,
    /// (account, email) soft bounces that count toward suppression.
    pub soft: Vec<(AccountId, String)>,
    /// (message, recipient address, status): what the report says became
    /// of the recipient. A recipient still waiting to be sent is taken out
    /// of the queue.
    pub statuses: Vec<(MessageId, String, RecipientStatus)>,
}

/// A report nobody could be matched to, kept for the operator.
#[derive(Debug, Clone, Serialize)]
pub struct UnmatchedReport {
    pub id: i64,
    pub received_at: Timestamp,
    pub kind: String,
    pub reason: String,
    pub envelope_to: String,
    pub summary: String,
}

/// A DKIM key of an account's sending domain.
#[derive(Debug, Clone)]
pub struct DomainKey {
    pub account_id: AccountId,
    pub domain: String,
    pub selector: String,
    /// `rsa2048` or `ed25519`.
    pub algorithm: String,
    pub private_pem: tidings_types::SecretString,
    pub created_at: Timestamp,
    /// When its DKIM record was found published; `None` until then.
    pub verified_at: Option<Timestamp>,
}

/// The sending side of the store. Each method is one transaction.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Store a message and its recipients; recipients on the suppression
    /// list are marked dropped and their `dropped` events recorded, all in
    /// one transaction. Returns the emails that were dropped.
    async fn accept_message(
        &self,
        message: NewMessage,
        recipients: Vec<NewRecipient>,
    ) -> Result<Vec<String>>;
    async fn get_message(&self, account: AccountId, id: MessageId) -> Result<MessageRecord>;
    /// Events about one message, in log order.
    async fn message_events(&self, account: AccountId, id: MessageId) -> Result<Vec<Event>>;

    /// Lease due recipient deliveries.
    async fn lease_outbound(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboundJob>>;
    /// Record outcomes: recipient states, events, suppressions. A soft
    /// failure counts toward the address's soft bounces, and `rule` says
    /// (in the same transaction) whether the count suppresses it; a
    /// delivery starts the count over.
    async fn complete_outbound(
        &self,
        results: Vec<OutboundResult>,
        rule: Arc<dyn SoftBounceRule>,
    ) -> Result<()>;
    async fn next_outbound_due(&self) -> Result<Option<Timestamp>>;
    /// How many recipients wait, and since when. Reads only what waits
    /// (an index of it), never the whole table.
    async fn outbound_queue(&self) -> Result<OutboundQueueStats>;
    /// Make every leased delivery due now (single-process startup).
    async fn release_outbound_leases(&self, now: Timestamp) -> Result<u64>;
    fn outbound_notify(&self) -> std::sync::Arc<tokio::sync::Notify>;

    async fn list_suppressions(
        &self,
        account: AccountId,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<Suppression>>;
    async fn get_suppression(&self, account: AccountId, email: String) -> Result<Suppression>;
    /// Add (or refresh the reason of) a suppressed address.
    async fn add_suppression(
        &self,
        account: AccountId,
        email: String,
        reason: String,
        at: Timestamp,
    ) -> Result<Suppression>;
    async fn remove_suppression(&self, account: AccountId, email: String) -> Result<()>;

    /// The stored message itself.
    async fn message_raw(&self, id: MessageId) -> Result<Bytes>;
    /// A recipient by its row id, with its message (without the message's
    /// other recipients). One indexed read.
    async fn recipient(&self, recipient_id: i64) -> Result<Option<RecipientRef>>;
    /// Record an open or click of one recipient, in one transaction: look
    /// the recipient up, let `build` make the event from it and its
    /// engagement history, add this engagement to the history, record the
    /// event and its delivery jobs. `false` (and nothing recorded) when
    /// there is no such recipient or `build` declines.
    async fn record_engagement(
        &self,
        recipient_id: i64,
        engagement: Engagement,
        build: BuildEngagement,
    ) -> Result<bool>;
    /// A recipient by its row id: the message (with its recipients) and
    /// the recipient's address.
    async fn find_recipient(&self, recipient_id: i64) -> Result<Option<(MessageRecord, String)>>;
    /// Messages with this Message-ID header (normally one).
    async fn find_by_smtp_id(&self, smtp_message_id: String) -> Result<Vec<MessageRecord>>;
    /// Record what an inbound report does; each soft bounce counts as in
    /// [`MessageStore::complete_outbound`], judged by `rule`.
    async fn record_inbound(
        &self,
        effects: InboundEffects,
        rule: Arc<dyn SoftBounceRule>,
    ) -> Result<()>;
    async fn record_unmatched(&self, report: UnmatchedReport) -> Result<()>;
    async fn list_unmatched(&self, limit: u32) -> Result<Vec<UnmatchedReport>>;

    /// Add a sending domain's key; `Conflict` if the account has the domain.
    async fn add_domain_key(&self, key: DomainKey) -> Result<()>;
    /// Every account's keys (`None`) or one account's.
    async fn domain_keys(&self, account: Option<AccountId>) -> Result<Vec<DomainKey>>;
    /// Record that a domain's DKIM record was found at `at` (NotFound if
    /// the account has no such domain).
    async fn set_domain_verified(
        &self,
        account: AccountId,
        domain: String,
        at: Timestamp,
    ) -> Result<()>;
    async fn remove_domain_key(&self, account: AccountId, domain: String) -> Result<()>;
}
