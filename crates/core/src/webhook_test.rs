//! Testing a webhook: one real attempt, made now, whose outcome is the
//! answer.
//!
//! The example event is built, signed and sent exactly as a delivery of
//! that webhook would be — its format, field selection, custom headers and
//! signing secrets, through the shared delivery client with its address
//! policy and timeout (the [`WebhookAttempts`](crate::ports::WebhookAttempts) port) — but outside the queue: it is never retried, it is
//! not part of the account's event log, and its outcome does not count
//! toward pausing. It is recorded in the call log, as every attempt is, so
//! the call log stays the full record of what tidings sent.

use tidings_store::{AttemptOutcome, AttemptRecord};
use tidings_types::{AccountId, AttemptId, Event, EventType, NewEvent, WebhookId};

use crate::{samples, CoreError, Tidings};

/// What a webhook test sent and what came back.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTest {
    /// The example event that was sent, in its JSON form
    /// (`{"id","type","timestamp","data"}`), its data limited to the
    /// webhook's field selection. A `form` or `get` webhook received the
    /// same fields as parameters.
    pub event: serde_json::Value,
    /// The attempt, as the call log keeps it.
    pub attempt: AttemptRecord,
}

impl Tidings {
    /// Send an example event of `event_type` to one webhook, once, and
    /// return the receiver's answer. A receiver that fails is a successful
    /// test with outcome `failed`; only an unknown webhook, or a store
    /// failure while recording, is an error.
    pub async fn test_webhook(
        &self,
        account: AccountId,
        id: WebhookId,
        event_type: EventType,
    ) -> Result<WebhookTest, CoreError> {
        let webhook = self.store.get_webhook(account, id).await?;
        let client = self
            .webhook_attempts
            .as_deref()
            .ok_or_else(|| CoreError::Internal("webhook delivery is not configured".into()))?;
        let started = self.clock.now();
        let new = NewEvent::new(
            account,
            event_type,
            started,
            samples::example_data(event_type),
        )?;
        let event = Event {
            seq: 0,
            id: new.id,
            account_id: account,
            event_type,
            timestamp: started,
            data: new.data.clone(),
        };
        let settings = &webhook.settings;
        let result = client
            .attempt(&webhook, &event, &*self.clock)
            .await
            .map_err(|e| CoreError::Internal(format!("building the test request: {e}")))?;
        let attempt = AttemptRecord {
            id: AttemptId::new(),
            webhook_id: id,
            event_id: event.id,
            event_type,
            at: started,
            url: settings.url.to_string(),
            outcome: if result.delivered {
                AttemptOutcome::Delivered
            } else {
                AttemptOutcome::Failed
            },
            status_code: result.status,
            error: result.error,
            duration_ms: result.duration.as_millis().min(u128::from(u32::MAX)) as u32,
            response: result.response,
            attempt: 1,
            next_attempt_at: None,
        };
        let event = event.to_json(settings.fields.as_deref());
        self.store.record_test_attempt(new, attempt.clone()).await?;
        Ok(WebhookTest { event, attempt })
    }
}
