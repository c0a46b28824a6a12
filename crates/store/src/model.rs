//! Records the store reads and writes that are not already domain types.

use serde::{Deserialize, Serialize};
use tidings_types::{
    AccountId, ApiKeyId, AttemptId, Event, EventId, EventType, Timestamp, WebhookId,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub contact_email: Option<String>,
    pub created_at: Timestamp,
}

/// An API key as stored: never the key itself, only its hash (kept apart)
/// and a short prefix so people can tell their keys apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub account_id: AccountId,
    pub name: String,
    pub prefix: String,
    pub created_at: Timestamp,
}

/// Why an event type stopped being posted to a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// The failure threshold of consecutive failed attempts was reached.
    ConsecutiveFailures,
    /// The receiver answered `410 Gone`.
    Gone,
}

impl PauseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::ConsecutiveFailures => "consecutive_failures",
            PauseReason::Gone => "gone",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "consecutive_failures" => Some(Self::ConsecutiveFailures),
            "gone" => Some(Self::Gone),
            _ => None,
        }
    }
}

/// The state of one event type on one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeState {
    pub event_type: EventType,
    pub paused: bool,
    pub pause_reason: Option<PauseReason>,
    pub paused_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub last_success_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// Jobs waiting (held while paused, or scheduled).
    pub pending: u64,
}

/// Whether one event type is paused on a webhook, and how many attempts
/// of it have failed in a row: what a dispatcher needs to stop sending the
/// type the moment the failure rule pauses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseState {
    pub event_type: EventType,
    pub paused: bool,
    pub consecutive_failures: u32,
}

/// Why a job exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    Live,
    Backfill,
    Replay,
    Test,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Live => "live",
            JobKind::Backfill => "backfill",
            JobKind::Replay => "replay",
            JobKind::Test => "test",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(Self::Live),
            "backfill" => Some(Self::Backfill),
            "replay" => Some(Self::Replay),
            "test" => Some(Self::Test),
            _ => None,
        }
    }
}

/// A delivery handed to a dispatcher: a leased job, or an event read from
/// a webhook's live stream (which has no job row until it must be retried
/// or held).
#[derive(Debug, Clone)]
pub struct LeasedJob {
    /// The job's row; `None` for an event from the live stream.
    pub job_id: Option<i64>,
    pub webhook_id: WebhookId,
    /// The webhook's version, bumped on every change, so a dispatcher can
    /// tell its cached copy of the webhook is stale.
    pub webhook_version: i64,
    /// Attempts made before this one.
    pub attempts: u32,
    pub kind: JobKind,
    /// The event. Its `data` is left empty when `stored_data` holds it.
    pub event: Event,
    /// The event's data as the log keeps it (JSON text), unparsed: the
    /// `json` format sends it as it is. [`LeasedJob::parse_data`] puts it
    /// into `event.data` for the formats that need the fields.
    pub stored_data: Option<Box<serde_json::value::RawValue>>,
}

impl LeasedJob {
    /// Move `stored_data`, if any, into `event.data`.
    pub fn parse_data(&mut self) -> Result<(), serde_json::Error> {
        if let Some(raw) = self.stored_data.take() {
            self.event.data = serde_json::from_str(raw.get())?;
        }
        Ok(())
    }
}

/// Whether an attempt reached the receiver successfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Delivered,
    Failed,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One row of the call log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    pub id: AttemptId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub at: Timestamp,
    pub url: String,
    pub outcome: AttemptOutcome,
    pub status_code: Option<u16>,
    /// Error class when no HTTP status was received (timeout, connect, …).
    pub error: Option<String>,
    pub duration_ms: u32,
    /// The first bytes of the response body.
    pub response: String,
    /// 1-based attempt number for this job.
    pub attempt: u32,
    pub next_attempt_at: Option<Timestamp>,
}

/// What happens to a job after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Delivered: the job is finished.
    Done,
    /// Failed; try again at the given time.
    RetryAt(Timestamp),
    /// The receiver said `410 Gone`: pause the type now, keep the job.
    Gone,
    /// Failed and the schedule is exhausted: the job is dead.
    Exhausted,
}

/// The result of one attempt of one job (a batch request yields one per job).
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// The job's row; `None` for an event from the live stream, which gets
    /// a job only if it is to be tried again.
    pub job_id: Option<i64>,
    pub event_seq: i64,
    pub account_id: AccountId,
    pub attempt: AttemptRecord,
    pub next: Next,
    /// Whether this attempt counts toward the type's failure state (test
    /// events do not).
    pub counts: bool,
}

/// An event of a webhook's live stream whose type is paused there: it is
/// kept as a held job, to go out when the type resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub webhook_id: WebhookId,
    pub event_seq: i64,
    pub event_type: EventType,
    pub at: Timestamp,
}

/// A leased job the dispatcher did not send, because its type paused
/// after it was leased: it goes back, held while the type is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlease {
    pub job_id: i64,
    pub webhook_id: WebhookId,
    pub event_type: EventType,
    /// When it was given back: when it is due if its type is neither paused
    /// nor ever resumed.
    pub at: Timestamp,
}

/// What one completion commits: attempt outcomes, events to hold, leased
/// jobs given back unsent, and how far each live stream is now settled
/// (every event of the webhook's account up to that `seq` delivered,
/// given up on, or made a job).
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub outcomes: Vec<JobOutcome>,
    pub holds: Vec<Hold>,
    pub unleases: Vec<Unlease>,
    pub settled: Vec<(WebhookId, i64)>,
}

/// A webhook's live stream as stored: everything of its account after
/// `settled` (in log order) is still to be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHead {
    pub webhook_id: WebhookId,
    pub account_id: AccountId,
    pub settled: i64,
}

/// Which accounts recorded events in a stretch of the log: what tells a
/// dispatcher which live streams have something new.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogActivity {
    /// The log's durable head (see [`crate::Store::log_activity`]).
    pub head: i64,
    /// The accounts with events after the seq asked about, up to `head`.
    pub accounts: Vec<AccountId>,
}

/// An event read from a webhook's live stream. `job` is `None` for an
/// event whose type the webhook does not take: it only moves the stream on.
#[derive(Debug, Clone)]
pub struct StreamItem {
    pub seq: i64,
    pub job: Option<LeasedJob>,
    /// Hold it instead of sending it: its type is paused on the webhook,
    /// or was resumed after this event was recorded (held, it queues
    /// behind the older events the resume released).
    pub hold: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompletionSummary {
    /// (webhook, type) pairs paused by this batch.
    pub paused: Vec<(WebhookId, EventType, PauseReason)>,
    /// The types of this batch's holds and unleases that are not paused
    /// once it is committed (they were resumed meanwhile), with their
    /// consecutive failures: the dispatcher that held them may send them
    /// again.
    pub active: Vec<(WebhookId, PauseState)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    /// Jobs not yet delivered, including held ones.
    pub pending: u64,
    pub held: u64,
    /// The oldest event among jobs that are due now, if any.
    pub oldest_due_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneSummary {
    pub events: u64,
    pub attempts: u64,
}

/// Filters for the call log. Results are newest first; `before` is the
/// cursor (an attempt's `seq`-ordered position, exclusive).
#[derive(Debug, Clone, Default)]
pub struct AttemptFilter {
    pub webhook_id: Option<WebhookId>,
    pub event_type: Option<EventType>,
    pub event_id: Option<EventId>,
    pub outcome: Option<AttemptOutcome>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub before: Option<AttemptId>,
    pub limit: u32,
}

/// An account's tracking settings as stored. `unsubscribe` is `None` while
/// the account follows the operator's default; `domain` is `None` while it
/// uses the global tracking base URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountTracking {
    pub opens: bool,
    pub clicks: bool,
    pub unsubscribe: Option<bool>,
    /// A normalized `http(s)://host[:port][/path]` base, no trailing slash.
    pub domain: Option<String>,
    /// When `domain`'s verification record was found in DNS.
    pub domain_verified_at: Option<Timestamp>,
}

impl Default for AccountTracking {
    /// What an account that never changed its settings gets.
    fn default() -> Self {
        Self {
            opens: true,
            clicks: true,
            unsubscribe: None,
            domain: None,
            domain_verified_at: None,
        }
    }
}

/// A partial update of [`AccountTracking`]: `None` leaves a setting as it
/// is; `Some(None)` resets an optional one to its default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountTrackingPatch {
    pub opens: Option<bool>,
    pub clicks: Option<bool>,
    pub unsubscribe: Option<Option<bool>>,
    pub domain: Option<Option<String>>,
    pub domain_verified_at: Option<Option<Timestamp>>,
}

impl AccountTrackingPatch {
    /// The settings after this update.
    pub fn apply(&self, mut to: AccountTracking) -> AccountTracking {
        if let Some(v) = self.opens {
            to.opens = v;
        }
        if let Some(v) = self.clicks {
            to.clicks = v;
        }
        if let Some(v) = self.unsubscribe {
            to.unsubscribe = v;
        }
        if let Some(v) = &self.domain {
            to.domain = v.clone();
        }
        if let Some(v) = self.domain_verified_at {
            to.domain_verified_at = v;
        }
        to
    }
}

/// An account's custom tracking domain, as the host table is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingDomain {
    pub account_id: AccountId,
    pub base_url: String,
    /// When its verification record was found in DNS.
    pub verified_at: Option<Timestamp>,
}

/// An `Idempotency-Key` to record, in the same transaction, with what its
/// request made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    /// A digest of the request (its route and body): a later request with
    /// the same key and another digest is a different request.
    pub fingerprint: String,
    /// Keys recorded before this are expired: they may be used again.
    pub expired_before: Timestamp,
}

/// What a [`crate::StoreError::Conflict`] says when an `Idempotency-Key`
/// is taken already: another request with it committed first.
pub const IDEMPOTENCY_KEY_TAKEN: &str = "idempotency key taken";

/// A recorded key and what its first request made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    /// The id of the message or webhook the request made.
    pub target: String,
    /// A number the first answer carried besides (a webhook's backfilled
    /// events), `0` otherwise.
    pub detail: i64,
    pub created_at: Timestamp,
}
