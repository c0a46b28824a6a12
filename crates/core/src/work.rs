//! What the workers — webhook delivery and outbound mail — lease, read and
//! complete through: the store's trait and the types of its live streams,
//! jobs and outcomes, re-exported so that the workers depend on
//! `tidings-core` alone (outbound leases and records through the use
//! cases themselves, and needs only [`OutboundJob`]). Re-exports, not wrappers: a streamed event or a
//! leased job reaches the dispatcher exactly as the store made it.

pub use tidings_store::{
    AttemptOutcome, AttemptRecord, Completion, Hold, JobKind, JobOutcome, LeasedJob, Next,
    OutboundJob, PauseReason, PauseState, Store, StoreError, StreamItem, Unlease,
};
