//! The ports through which the use cases reach I/O that is not the store:
//! resolving a webhook's host name when it is saved, and making one
//! webhook attempt for a test. The webhook delivery crate implements both
//! (with its guarded resolver and its shared HTTP client); the binary wires
//! them into [`Tidings`](crate::Tidings). Without them, saving a webhook
//! skips the early host check (delivery checks at connect time anyway) and
//! a webhook test is refused as not configured.

use std::time::Duration;

use tidings_types::address::BlockedAddress;
use tidings_types::{Clock, Event, Webhook};

/// What a host name resolved to, as far as the address policy is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostLookup {
    /// At least one address the policy allows.
    Allowed,
    /// Only addresses the policy refuses; the first of them.
    Blocked(BlockedAddress),
    /// No answer (no such name, no address, a lookup failure).
    Unresolved,
}

/// Resolves a webhook's host name and applies the address policy.
#[async_trait::async_trait]
pub trait HostResolver: Send + Sync {
    async fn lookup(&self, host: &str) -> HostLookup;
}

/// The outcome of one webhook attempt, as the call log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    /// The receiver accepted the event.
    pub delivered: bool,
    /// The response status, when a response came back.
    pub status: Option<u16>,
    /// Why no response came back, as a stable code.
    pub error: Option<String>,
    pub duration: Duration,
    /// The start of the response body, or the error in words.
    pub response: String,
}

/// Makes one webhook attempt: `event` rendered in the webhook's format and
/// field selection, signed with its secrets as of the event's timestamp,
/// sent with its custom headers. `clock` says when the answer came.
#[async_trait::async_trait]
pub trait WebhookAttempts: Send + Sync {
    async fn attempt(
        &self,
        webhook: &Webhook,
        event: &Event,
        clock: &dyn Clock,
    ) -> Result<AttemptReport, String>;
}
