//! The outbound queue as the metrics see it: its depth and how long its
//! oldest recipient has waited.
//!
//! Both come from one pass over `recipients_due`, the partial index of the
//! recipients that still wait (queued, deferred or leased): the cost grows
//! with the queue, never with the recipients already delivered. Row ids
//! grow with acceptance, so the smallest one waiting is the oldest.

use rusqlite::{Connection, OptionalExtension};

use super::opt_ts;
use crate::messages::OutboundQueueStats;
use crate::Result;

pub(super) fn stats(c: &Connection) -> Result<OutboundQueueStats> {
    let (depth, oldest): (u64, Option<i64>) = c
        .prepare_cached(
            "SELECT COUNT(*), MIN(id) FROM recipients INDEXED BY recipients_due
             WHERE due_at IS NOT NULL",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let accepted: Option<i64> = match oldest {
        Some(id) => c
            .prepare_cached(
                "SELECT m.created_at FROM recipients r JOIN messages m ON m.id = r.message_id
                 WHERE r.id = ?1",
            )?
            .query_row([id], |r| r.get(0))
            .optional()?,
        None => None,
    };
    Ok(OutboundQueueStats {
        depth,
        oldest_accepted_at: opt_ts(accepted),
    })
}
