//! The vocabulary of tidings, with no I/O.
//!
//! Everything that crosses a crate boundary is named here once: prefixed ids
//! (`evt_…`, `wh_…`), the event types of the Transactional Event API, the
//! field catalogue that every payload format and every field selection is
//! derived from, and the settings of a webhook. Keeping these as types (not
//! strings) means an unknown event type or field is rejected at the edge, and
//! the catalogue cannot drift between the JSON, form and query-string formats.

pub mod address;
pub mod clock;
pub mod event;
pub mod fields;
pub mod ids;
pub mod payload;
pub mod secret;
pub mod time;
pub mod webhook;

pub use clock::{Clock, ManualClock, SystemClock};
pub use event::{Event, EventData, EventType, NewEvent, Variant};
pub use fields::Field;
pub use ids::{AccountId, ApiKeyId, AttemptId, EventId, MessageId, WebhookId};
pub use payload::Payload;
pub use secret::{SecretString, WebhookSecret};
pub use time::Timestamp;
pub use webhook::{BatchSettings, Webhook, WebhookFormat, WebhookSettings};
