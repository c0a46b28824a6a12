//! What the API answers, as types: each handler returns one of these (or a
//! type of `tidings-core`), and the OpenAPI document takes its response
//! schemas from the same types, so the two cannot drift apart.
//!
//! Timestamps are strings made by [`rfc3339`] (milliseconds and `Z`), the
//! format of every payload. Events keep their one canonical JSON form
//! ([`tidings_types::Event::to_json`]); their schema is built from the field
//! catalogue.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use tidings_core::{
    AttemptOutcome, AttemptRecord, MessageRecord, PauseReason, RecipientStatus, Source,
    Suppression, TypeState,
};
use tidings_types::time::rfc3339;
use tidings_types::{
    AttemptId, BatchSettings, Event, EventId, EventType, Field, MessageId, Webhook, WebhookFormat,
    WebhookId,
};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// `{"data": [...]}`: a whole list.
#[derive(Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    pub data: Vec<T>,
}

/// One page of a list read by cursor. Pass `next_cursor` back as the
/// cursor parameter for the next page; `null` means there is none.
#[derive(Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A webhook as listed and read (the secret is not shown).
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub id: WebhookId,
    #[schema(format = "uri")]
    pub url: String,
    pub event_types: Vec<EventType>,
    pub format: WebhookFormat,
    /// The catalogue fields sent in `data`; `null`: all of them.
    pub fields: Option<Vec<Field>>,
    pub headers: BTreeMap<String, String>,
    pub description: Option<String>,
    pub max_in_flight: u32,
    /// `null`: no limit.
    pub max_per_second: Option<u32>,
    pub batch: Option<BatchSettings>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        let s = &w.settings;
        WebhookView {
            id: w.id,
            url: s.url.to_string(),
            event_types: s.event_types.clone(),
            format: s.format,
            fields: s.fields.clone(),
            headers: s.headers.clone(),
            description: s.description.clone(),
            max_in_flight: s.max_in_flight,
            max_per_second: s.max_per_second,
            batch: s.batch,
            created_at: rfc3339(w.created_at),
            updated_at: rfc3339(w.updated_at),
        }
    }
}

/// A webhook just created: as read, plus its signing secret (shown here
/// and by `GET /v1/webhooks/{id}/secret`) and how many recent events were
/// queued for it.
#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    #[schema(pattern = "^whsec_")]
    pub secret: String,
    pub backfilled: u64,
}

/// The delivery state of one event type on a webhook.
#[derive(Serialize, ToSchema)]
pub struct TypeStateView {
    pub event_type: EventType,
    pub state: DeliveryState,
    pub pause_reason: Option<PauseReason>,
    #[schema(format = DateTime)]
    pub paused_at: Option<String>,
    pub consecutive_failures: u32,
    #[schema(format = DateTime)]
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub last_error_at: Option<String>,
    /// Deliveries waiting: held while paused, or scheduled.
    pub pending: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Active,
    Paused,
}

impl From<&TypeState> for TypeStateView {
    fn from(t: &TypeState) -> Self {
        TypeStateView {
            event_type: t.event_type,
            state: if t.paused {
                DeliveryState::Paused
            } else {
                DeliveryState::Active
            },
            pause_reason: t.pause_reason,
            paused_at: t.paused_at.map(rfc3339),
            consecutive_failures: t.consecutive_failures,
            last_success_at: t.last_success_at.map(rfc3339),
            last_error: t.last_error.clone(),
            last_error_at: t.last_error_at.map(rfc3339),
            pending: t.pending,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookStatus {
    pub webhook_id: WebhookId,
    pub event_types: Vec<TypeStateView>,
}

#[derive(Serialize, ToSchema)]
pub struct Resumed {
    /// The event types that were paused and are now active.
    pub resumed: Vec<EventType>,
}

#[derive(Serialize, ToSchema)]
pub struct Enqueued {
    /// Events queued for delivery.
    pub enqueued: u64,
}

#[derive(Serialize, ToSchema)]
pub struct SecretView {
    #[schema(pattern = "^whsec_")]
    pub secret: String,
    /// Until when the previous secret still signs; `null`: it no longer does.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
}

/// One row of the call log.
#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    pub id: AttemptId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event_type: EventType,
    #[schema(format = DateTime)]
    pub at: String,
    pub url: String,
    pub outcome: AttemptOutcome,
    /// The receiver's HTTP status; `null` when none was received.
    pub status_code: Option<u16>,
    /// Why no status was received: `timeout`, `connect`, `dns`, `tls`,
    /// `blocked`, `other`.
    pub error: Option<String>,
    pub duration_ms: u32,
    /// The first bytes of the receiver's answer.
    pub response: String,
    /// 1-based attempt number of this delivery.
    pub attempt: u32,
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
}

impl From<&AttemptRecord> for AttemptView {
    fn from(a: &AttemptRecord) -> Self {
        AttemptView {
            id: a.id,
            webhook_id: a.webhook_id,
            event_id: a.event_id,
            event_type: a.event_type,
            at: rfc3339(a.at),
            url: a.url.clone(),
            outcome: a.outcome,
            status_code: a.status_code,
            error: a.error.clone(),
            duration_ms: a.duration_ms,
            response: a.response.clone(),
            attempt: a.attempt,
            next_attempt_at: a.next_attempt_at.map(rfc3339),
        }
    }
}

/// The answer of `POST /v1/webhooks/{id}/test`: the example sent and the
/// receiver's answer, in the call log's shape.
#[derive(Serialize, ToSchema)]
pub struct WebhookTestView {
    /// The example event that was sent (`{"id","type","timestamp","data"}`),
    /// its data limited to the webhook's field selection; a `form` or `get`
    /// webhook received the same fields as parameters.
    #[schema(value_type = Object)]
    pub event: Value,
    pub attempt: AttemptView,
}

impl From<tidings_core::webhook_test::WebhookTest> for WebhookTestView {
    fn from(t: tidings_core::webhook_test::WebhookTest) -> Self {
        WebhookTestView {
            event: t.event,
            attempt: AttemptView::from(&t.attempt),
        }
    }
}

/// An event in its canonical form `{"id","type","timestamp","data"}`; the
/// schema has one variant per event type, with the catalogue fields that
/// type carries.
#[derive(Serialize)]
#[serde(transparent)]
pub struct EventJson(pub Value);

impl From<&Event> for EventJson {
    fn from(e: &Event) -> Self {
        EventJson(e.to_json(None))
    }
}

/// The component names of an event type's schemas: the event, its
/// `data`, and the event as polled (`SentEvent`, `SentEventData`,
/// `PolledSentEvent`).
fn event_names(t: EventType) -> [String; 3] {
    let mut chars = t.as_str().chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase());
    let camel: String = first.into_iter().chain(chars).collect();
    [
        format!("{camel}Event"),
        format!("{camel}EventData"),
        format!("Polled{camel}Event"),
    ]
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
}

/// The schema of one event type; polled events also carry their `cursor`.
fn event_variant(t: EventType, polled: bool) -> ObjectBuilder {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let mut variant = ObjectBuilder::new()
        .property("id", EventId::schema())
        .property("type", string().enum_values(Some([t.as_str()])))
        .property("timestamp", string().format(Some(date_time())))
        .property("data", reference(&event_names(t)[1]))
        .required("id")
        .required("type")
        .required("timestamp")
        .required("data");
    if polled {
        variant = variant
            .property(
                "cursor",
                string()
                    .pattern(Some("^[0-9]+$"))
                    .description(Some("Pass as `after` to poll what follows")),
            )
            .required("cursor");
    }
    variant
}

/// The `data` of one event type: the catalogue fields it carries.
fn event_data(t: EventType) -> ObjectBuilder {
    let mut data = ObjectBuilder::new().additional_properties(Some(
        utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
    ));
    for f in t.fields() {
        data = data.property(f.as_str(), f.kind().schema());
    }
    data
}

/// One of the variants, by component name.
fn one_of(names: impl Iterator<Item = String>) -> RefOr<Schema> {
    names
        .fold(OneOfBuilder::new(), |o, n| o.item(reference(&n)))
        .into()
}

impl PartialSchema for EventJson {
    fn schema() -> RefOr<Schema> {
        one_of(EventType::ALL.iter().map(|t| event_names(*t)[0].clone()))
    }
}

impl ToSchema for EventJson {
    fn name() -> std::borrow::Cow<'static, str> {
        "Event".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for t in EventType::ALL {
            let [event, data, _] = event_names(t);
            schemas.push((event, event_variant(t, false).into()));
            schemas.push((data, event_data(t).into()));
        }
    }
}

fn date_time() -> utoipa::openapi::SchemaFormat {
    utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)
}

/// An event as polled: the event and its position in the log.
#[derive(Serialize)]
#[serde(transparent)]
pub struct PolledEvent(pub Value);

impl PartialSchema for PolledEvent {
    fn schema() -> RefOr<Schema> {
        one_of(EventType::ALL.iter().map(|t| event_names(*t)[2].clone()))
    }
}

impl ToSchema for PolledEvent {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for t in EventType::ALL {
            let [_, data, polled] = event_names(t);
            schemas.push((polled, event_variant(t, true).into()));
            schemas.push((data, event_data(t).into()));
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<PolledEvent>,
    /// The cursor of the last event returned (or the one given when none
    /// was): pass it as `after`.
    #[schema(pattern = "^[0-9]+$")]
    pub next_cursor: String,
    /// Whether a full page was returned, so more may follow at once.
    pub has_more: bool,
}

/// A message as stored, with its recipients and its events so far.
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    pub id: MessageId,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub source: Source,
    /// The `From` header address.
    pub from: String,
    /// The envelope sender.
    pub mail_from: String,
    pub subject: Option<String>,
    pub smtp_message_id: String,
    pub custom_id: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<String>,
    /// Bytes of the message as accepted.
    pub size: u64,
    pub track: MessageTracking,
    pub recipients: Vec<RecipientView>,
    pub events: Vec<EventJson>,
}

/// The tracking a message was accepted with.
#[derive(Serialize, ToSchema)]
pub struct MessageTracking {
    pub opens: bool,
    pub clicks: bool,
    /// Whether `List-Unsubscribe` went out with it; `null` when unknown.
    pub unsubscribe: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct RecipientView {
    pub email: String,
    pub status: RecipientStatus,
    pub attempts: u32,
    pub last_response: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl MessageView {
    pub fn new(m: &MessageRecord, events: &[Event]) -> Self {
        MessageView {
            id: m.id,
            created_at: rfc3339(m.created_at),
            source: m.source,
            from: m.from.clone(),
            mail_from: m.mail_from.clone(),
            subject: m.subject.clone(),
            smtp_message_id: m.smtp_message_id.clone(),
            custom_id: m.custom_id.clone(),
            group: m.group.clone(),
            tags: m.tags.clone(),
            size: m.size,
            track: MessageTracking {
                opens: m.track_opens,
                clicks: m.track_clicks,
                unsubscribe: m.track_unsubscribe,
            },
            recipients: m
                .recipients
                .iter()
                .map(|r| RecipientView {
                    email: r.email.clone(),
                    status: r.status,
                    attempts: r.attempts,
                    last_response: r.last_response.clone(),
                    updated_at: rfc3339(r.updated_at),
                })
                .collect(),
            events: events.iter().map(EventJson::from).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SuppressionView {
    pub email: String,
    /// Why: `bounce`, `complaint`, `unsubscribe`, `manual`, or the reason
    /// given when it was added.
    pub reason: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&Suppression> for SuppressionView {
    fn from(s: &Suppression) -> Self {
        SuppressionView {
            email: s.email.clone(),
            reason: s.reason.clone(),
            created_at: rfc3339(s.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when the store cannot be read.
    pub status: String,
    /// What went wrong, when unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
