//! The decisions a store applies but does not make.
//!
//! Some outcomes must be decided inside the transaction that records
//! them: a webhook's event type pauses on the failure that reaches the
//! limit, an address is suppressed by the soft bounce that reaches it.
//! Deciding outside would mean reading a count, deciding, and writing in a
//! second transaction, which races with the next outcome. So the store
//! counts (the facts), asks the rule it was handed, and applies the answer
//! in the same transaction; the rule itself, the product's decision, is
//! the domain's (`tidings-core` implements these traits). A backend holds
//! no threshold and names no reason of its own.

use crate::model::PauseReason;

/// What a store knows about a (webhook, event type) once it has counted a
/// failed delivery attempt of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureFacts {
    /// Failed attempts in a row, this one included.
    pub consecutive_failures: u32,
    /// The receiver answered that the endpoint is gone (`410`).
    pub gone: bool,
}

/// Whether a failed attempt pauses its (webhook, event type).
pub trait PauseRule: Send + Sync + std::fmt::Debug + 'static {
    fn pause(&self, facts: FailureFacts) -> Option<PauseReason>;
}

/// Whether an address that soft-bounced is suppressed, and with what
/// reason.
pub trait SoftBounceRule: Send + Sync + std::fmt::Debug + 'static {
    /// `consecutive` counts the address's soft bounces in a row, this one
    /// included (a delivery starts the count over).
    fn suppress(&self, consecutive: u32) -> Option<String>;
}
