//! What an operator asks of a running tidings: whether the store answers,
//! and how long the queues are (for the health check and the metrics).

use tidings_store::{OutboundQueueStats, QueueStats};
use tidings_types::Timestamp;

use crate::{CoreError, Tidings};

impl Tidings {
    /// Whether the store answers a read (the health check).
    pub async fn check_store(&self) -> Result<(), CoreError> {
        self.store.next_due().await?;
        Ok(())
    }

    /// The webhook delivery queue as of `now`.
    pub async fn queue_stats(&self, now: Timestamp) -> Result<QueueStats, CoreError> {
        Ok(self.store.queue_stats(now).await?)
    }

    /// The outbound queue; `None` when sending is not configured.
    pub async fn outbound_queue(&self) -> Result<Option<OutboundQueueStats>, CoreError> {
        let Some(messages) = &self.messages else {
            return Ok(None);
        };
        Ok(Some(messages.outbound_queue().await?))
    }
}
