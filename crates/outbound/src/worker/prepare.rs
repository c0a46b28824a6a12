//! Preparing: which leased recipients share a mail transaction. One per
//! (message, domain); one per recipient when `tidings-core` gives each its
//! own return path (VERP) or its own links (tracking). The transaction's
//! return path and bytes are asked of `tidings-core` when it is sent
//! ([`Tidings::return_path`], [`Tidings::outbound_bytes`]).

use std::collections::HashMap;

use tidings_core::work::OutboundJob;
use tidings_core::Tidings;

/// `jobs` grouped into transactions, each with its destination domain.
pub(super) fn transactions(
    app: &Tidings,
    jobs: Vec<OutboundJob>,
) -> Vec<(String, Vec<OutboundJob>)> {
    let per_rcpt = app.per_recipient_transactions();
    let mut groups: HashMap<(String, String, i64), Vec<OutboundJob>> = HashMap::new();
    for j in jobs {
        let domain = j
            .email
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        let rcpt = if per_rcpt { j.recipient_id } else { 0 };
        groups
            .entry((j.message.id.to_string(), domain, rcpt))
            .or_default()
            .push(j);
    }
    groups
        .into_iter()
        .map(|((_, domain, _), group)| (domain, group))
        .collect()
}
