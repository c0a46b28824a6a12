//! Recording: each recipient's reply is handed back to `tidings-core`,
//! which decides its outcome — event, state, suppression, retry
//! ([`tidings_core::outcomes`]) — and commits the outcomes of one
//! transaction together. A failed commit leaves the recipients leased;
//! they are delivered again when the lease expires.

use tidings_core::outcomes::ReplyFacts;
use tidings_core::work::OutboundJob;
use tidings_core::Tidings;

use super::transact::RcptOutcome;
use super::OutboundConfig;

/// Record what `replies` (one per job, in order) mean for `jobs`.
pub(super) async fn record(
    app: &Tidings,
    config: &OutboundConfig,
    jobs: Vec<OutboundJob>,
    replies: Vec<RcptOutcome>,
) {
    let facts = jobs.into_iter().zip(&replies).map(|(job, o)| {
        let facts = ReplyFacts {
            code: o.reply.code,
            text: &o.reply.text,
            remote: (!o.remote.is_empty()).then_some(o.remote.as_str()),
            tls: o.tls,
        };
        (job, facts)
    });
    if let Err(e) = app.record_outbound(facts, config.max_age).await {
        tracing::error!(error = %e, "recording outbound results failed; they will be retried");
    }
}
