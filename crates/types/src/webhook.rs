//! A webhook: where an account wants its events, in which shape, and how
//! gently tidings must treat the receiver.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::EventType;
use crate::fields::Field;
use crate::ids::{AccountId, WebhookId};
use crate::secret::WebhookSecret;
use crate::time::Timestamp;

/// How events are put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// POST `application/json`: `{"id","type","timestamp","data":{…}}`.
    #[default]
    Json,
    /// POST `application/x-www-form-urlencoded` of the selected fields
    /// plus `event`, `event_id`, `timestamp`.
    Form,
    /// GET with the same parameters as `form` in the query string.
    Get,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Form => "form",
            WebhookFormat::Get => "get",
        }
    }
}

/// Optional batching (json format only): up to `max_events` events in one
/// POST of a JSON array, waiting at most `max_wait_ms` to fill it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    #[schema(minimum = 1, maximum = 1000)]
    pub max_events: u32,
    #[serde(default = "default_batch_wait")]
    #[schema(maximum = 60000, default = 1000)]
    pub max_wait_ms: u32,
}

fn default_batch_wait() -> u32 {
    1000
}

/// What the account chooses for a webhook. Changing any of it counts as
/// "the URL or parameters were modified" and resumes paused event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettings {
    pub url: url::Url,
    /// The event types delivered here, at least one.
    pub event_types: Vec<EventType>,
    pub format: WebhookFormat,
    /// Catalogue fields to include in `data`; `None` means all.
    pub fields: Option<Vec<Field>>,
    /// Extra request headers sent with every delivery.
    pub headers: BTreeMap<String, String>,
    pub description: Option<String>,
    /// Requests in flight at once to this webhook.
    pub max_in_flight: u32,
    /// Requests started per second; `None` means no limit.
    pub max_per_second: Option<u32>,
    pub batch: Option<BatchSettings>,
}

impl WebhookSettings {
    pub const DEFAULT_MAX_IN_FLIGHT: u32 = 32;

    pub fn wants(&self, t: EventType) -> bool {
        self.event_types.contains(&t)
    }
}

/// A stored webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub account_id: AccountId,
    pub settings: WebhookSettings,
    pub secret: WebhookSecret,
    /// The secret before the last rotation, still signing until the time given.
    pub previous_secret: Option<(WebhookSecret, Timestamp)>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Webhook {
    /// The secrets that sign a delivery made at `now`: the current one, and
    /// the previous one while its overlap lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&WebhookSecret> {
        let mut v = vec![&self.secret];
        if let Some((old, until)) = &self.previous_secret {
            if *until > now {
                v.push(old);
            }
        }
        v
    }
}
