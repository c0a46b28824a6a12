//! Webhook delivery jobs over SQLite, by phase: leasing, reading the live
//! streams, completing outcomes, and upkeep (stats, the call log,
//! pruning).

mod complete;
mod lease;
mod streams;
mod upkeep;

pub use complete::complete;
pub use lease::{lease, next_due, release_leases};
pub use streams::{log_activity, stream, stream_heads};
pub use upkeep::{list_attempts, prune, stats};
