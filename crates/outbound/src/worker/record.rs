//! Recording: each recipient's reply becomes its outcome — event, state,
//! suppression, retry — as `tidings-core` decides
//! ([`tidings_core::outcomes`]), and the outcomes of one transaction
//! commit together. A failed commit leaves the recipients leased; they
//! are delivered again when the lease expires.

use tidings_core::outcomes::{outbound_result, ReplyFacts};
use tidings_core::work::{MessageStore, OutboundJob};
use tidings_types::Clock;

use super::transact::RcptOutcome;
use super::OutboundConfig;

/// Commit what `replies` (one per job, in order) mean for `jobs`.
pub(super) async fn record(
    store: &dyn MessageStore,
    clock: &dyn Clock,
    config: &OutboundConfig,
    jobs: Vec<OutboundJob>,
    replies: Vec<RcptOutcome>,
) {
    let now = clock.now();
    let results = jobs
        .into_iter()
        .zip(&replies)
        .map(|(job, o)| {
            let facts = ReplyFacts {
                code: o.reply.code,
                text: &o.reply.text,
                remote: (!o.remote.is_empty()).then_some(o.remote.as_str()),
                tls: o.tls,
            };
            outbound_result(job, facts, now, config.max_age)
        })
        .collect();
    if let Err(e) = store
        .complete_outbound(results, config.soft_bounce_limit)
        .await
    {
        tracing::error!(error = %e, "recording outbound results failed; they will be retried");
    }
}
