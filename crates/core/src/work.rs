//! What the workers — webhook delivery and outbound mail — lease, read and
//! complete through: the store's trait objects and the types of its live
//! streams, jobs and outcomes, re-exported so that the workers depend on
//! `tidings-core` alone. Re-exports, not wrappers: a streamed event or a
//! leased job reaches the dispatcher exactly as the store made it.

pub use tidings_store::{
    AttemptOutcome, AttemptRecord, Completion, Hold, JobKind, JobOutcome, LeasedJob, MessageStore,
    Next, OutboundJob, OutboundResult, PauseReason, PauseState, RecipientStatus, Store, StoreError,
    StreamItem, Unlease,
};
