//! What the workers — webhook delivery and outbound mail — lease, read and
//! complete: the types of the store's live streams, jobs and outcomes,
//! re-exported so that the workers depend on `tidings-core` alone. They
//! reach the store only through the use cases (`webhook_queue`,
//! `outbound_queue`). Re-exports, not wrappers: a streamed event or a
//! leased job reaches the dispatcher exactly as the store made it.

pub use tidings_store::{
    AttemptOutcome, AttemptRecord, Completion, FailureFacts, Hold, JobKind, JobOutcome, LeasedJob,
    Next, OutboundJob, PauseReason, PauseState, StoreError, StreamItem, Unlease,
};
