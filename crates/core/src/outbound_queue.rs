//! The outbound worker's use cases: leasing the recipients due for
//! delivery, and recording what each reply meant. The worker only sends;
//! what a reply means is [`crate::outcomes`]'s, and each transaction's
//! outcomes commit together with their events, the recipients' states and
//! any suppression.

use std::sync::Arc;
use std::time::Duration;

use tidings_store::OutboundJob;
use tidings_types::Timestamp;

use crate::outcomes::{outbound_result, ReplyFacts};
use crate::{CoreError, Tidings};

impl Tidings {
    /// Make every leased delivery due again (at start, when this process
    /// is the store's only user); how many there were.
    pub async fn release_outbound_leases(&self) -> Result<u64, CoreError> {
        Ok(self
            .messages()?
            .release_outbound_leases(self.clock.now())
            .await?)
    }

    /// Notified when something is queued for outbound delivery.
    pub fn outbound_notify(&self) -> Result<Arc<tokio::sync::Notify>, CoreError> {
        Ok(self.messages()?.outbound_notify())
    }

    /// Lease up to `limit` recipients due at `now`, until `until`.
    pub async fn lease_outbound(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboundJob>, CoreError> {
        Ok(self.messages()?.lease_outbound(now, until, limit).await?)
    }

    /// When the next recipient is due, if any is queued.
    pub async fn next_outbound_due(&self) -> Result<Option<Timestamp>, CoreError> {
        Ok(self.messages()?.next_outbound_due().await?)
    }

    /// Record the replies of one transaction, one per leased recipient,
    /// temporary failures being retried for `max_age`.
    pub async fn record_outbound<'a>(
        &self,
        replies: impl IntoIterator<Item = (OutboundJob, ReplyFacts<'a>)>,
        max_age: Duration,
    ) -> Result<(), CoreError> {
        let now = self.clock.now();
        let results = replies
            .into_iter()
            .map(|(job, reply)| outbound_result(job, reply, now, max_age))
            .collect();
        self.messages()?
            .complete_outbound(results, self.soft_bounce_rule.clone())
            .await?;
        Ok(())
    }
}
