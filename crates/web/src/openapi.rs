//! The OpenAPI 3.1 document at `/openapi.json`. The event and field
//! schemas are generated from the field catalogue, so they cannot drift
//! from what is actually sent.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use tidings_types::fields::FieldKind;
use tidings_types::{EventType, Field};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

fn field_schema(f: Field) -> Value {
    match f.kind() {
        FieldKind::String => json!({"type": "string"}),
        FieldKind::Integer => json!({"type": "integer"}),
        FieldKind::Boolean => json!({"type": "boolean"}),
        FieldKind::StringList => json!({"type": "array", "items": {"type": "string"}}),
        FieldKind::Timestamp => json!({"type": "string", "format": "date-time"}),
    }
}

fn event_schema() -> Value {
    let mut one_of = Vec::new();
    for t in EventType::ALL {
        let props: Map<String, Value> = t
            .fields()
            .map(|f| (f.as_str().to_string(), field_schema(f)))
            .collect();
        one_of.push(json!({
            "title": t.as_str(),
            "type": "object",
            "properties": {
                "id": {"type": "string", "pattern": "^evt_[0-9a-z]{26}$"},
                "type": {"const": t.as_str()},
                "timestamp": {"type": "string", "format": "date-time"},
                "data": {"type": "object", "properties": props, "additionalProperties": false},
            },
            "required": ["id", "type", "timestamp", "data"],
        }));
    }
    json!({"oneOf": one_of})
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn op(summary: &str, responses: Value) -> Value {
    let mut r = responses;
    r["401"] = error_response("Missing or invalid API key");
    json!({"summary": summary, "security": [{"bearer": []}], "responses": r})
}

fn with_body(mut op: Value, schema: Value) -> Value {
    op["requestBody"] =
        json!({"required": true, "content": {"application/json": {"schema": schema}}});
    op["responses"]["413"] = error_response("Body too large");
    op["responses"]["422"] = error_response("Invalid request");
    op["responses"]["400"] = error_response("Malformed JSON");
    op
}

fn id_param() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}])
}

/// The whole document.
pub fn document() -> Value {
    let event_types: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    let fields: Vec<&str> = Field::ALL.iter().map(|f| f.as_str()).collect();
    let webhook_ref = json!({"$ref": "#/components/schemas/Webhook"});
    let input_ref = json!({"$ref": "#/components/schemas/WebhookInput"});
    let not_found = error_response("No such webhook (or not this account's)");
    json!({
        "openapi": "3.1.0",
        "info": {"title": "tidings", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The Transactional Event API: webhooks and polling for email events."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "EventType": {"type": "string", "enum": event_types},
                "Field": {"type": "string", "enum": fields},
                "Event": event_schema(),
                "Batch": {"type": "object", "additionalProperties": false, "required": ["max_events"],
                    "properties": {"max_events": {"type": "integer", "minimum": 1, "maximum": 1000},
                                   "max_wait_ms": {"type": "integer", "minimum": 0, "maximum": 60000}}},
                "WebhookInput": {"type": "object", "additionalProperties": false, "required": ["url"],
                    "properties": {
                        "url": {"type": "string", "format": "uri"},
                        "event_types": {"type": "array", "items": {"$ref": "#/components/schemas/EventType"}},
                        "format": {"type": "string", "enum": ["json", "form", "get"]},
                        "fields": {"type": ["array", "null"], "items": {"$ref": "#/components/schemas/Field"}},
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                        "description": {"type": ["string", "null"]},
                        "max_in_flight": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "max_per_second": {"type": ["integer", "null"], "minimum": 1},
                        "batch": {"oneOf": [{"$ref": "#/components/schemas/Batch"}, {"type": "null"}]},
                        "secret": {"type": "string", "pattern": "^whsec_"},
                        "backfill": {"type": "boolean"}}},
                "Webhook": {"type": "object", "properties": {
                        "id": {"type": "string"}, "url": {"type": "string"},
                        "event_types": {"type": "array", "items": {"$ref": "#/components/schemas/EventType"}},
                        "format": {"type": "string"}, "fields": {"type": ["array", "null"]},
                        "headers": {"type": "object"}, "description": {"type": ["string", "null"]},
                        "max_in_flight": {"type": "integer"}, "max_per_second": {"type": ["integer", "null"]},
                        "batch": {}, "created_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                        "secret": {"type": "string", "description": "Only on create"},
                        "backfilled": {"type": "integer", "description": "Only on create"}}},
                "TrackingSettings": {"type": "object", "required": ["opens", "clicks", "unsubscribe", "domain", "base_url"],
                    "properties": {
                        "opens": {"type": "boolean", "description": "Open pixel in messages that do not say (default true)"},
                        "clicks": {"type": "boolean", "description": "Tracked links in messages that do not say (default true)"},
                        "unsubscribe": {"type": "boolean", "description": "RFC 8058 List-Unsubscribe on every message (default: the server's tracking.unsubscribe)"},
                        "domain": {"type": ["string", "null"], "format": "uri", "description": "Custom tracking base URL, CNAMEd to tidings; null: the server's"},
                        "base_url": {"type": ["string", "null"], "description": "The base URL new messages' tracking links use"}}},
                "TrackingPatch": {"type": "object", "additionalProperties": false,
                    "description": "Absent fields stay as they are. Each message's own `track` options still win; a message keeps the settings it was accepted with.",
                    "properties": {
                        "opens": {"type": "boolean"},
                        "clicks": {"type": "boolean"},
                        "unsubscribe": {"type": ["boolean", "null"], "description": "null: back to the server's default"},
                        "domain": {"type": ["string", "null"], "format": "uri", "maxLength": 512,
                            "description": "http(s) base URL without query or fragment, e.g. https://track.example.com; stored normalized; null: back to the server's. Invalid: 422 invalid_url"}}},
                "Attempt": {"type": "object", "properties": {
                        "id": {"type": "string"}, "webhook_id": {"type": "string"}, "event_id": {"type": "string"},
                        "event_type": {"$ref": "#/components/schemas/EventType"}, "at": {"type": "string"},
                        "url": {"type": "string"}, "outcome": {"type": "string", "enum": ["delivered", "failed"]},
                        "status_code": {"type": ["integer", "null"]},
                        "error": {"type": ["string", "null"], "enum": ["timeout", "connect", "dns", "tls", "blocked", "other", null]},
                        "duration_ms": {"type": "integer"}, "response": {"type": "string"},
                        "attempt": {"type": "integer"}, "next_attempt_at": {"type": ["string", "null"]}}},
            }
        },
        "paths": {
            "/v1/webhooks": {
                "get": op("List webhooks", json!({"200": ok("Webhooks", json!({"type": "object", "properties": {"data": {"type": "array", "items": webhook_ref}}}))})),
                "post": with_body(op("Create a webhook (backfills the last 7 days by default)", json!({"201": ok("Created, with its secret", webhook_ref.clone())})), input_ref.clone()),
            },
            "/v1/webhooks/{id}": {
                "parameters": id_param(),
                "get": op("Get a webhook", json!({"200": ok("The webhook", webhook_ref.clone()), "404": not_found})),
                "patch": with_body(op("Update a webhook; resumes paused event types", json!({"200": ok("Updated", webhook_ref.clone()), "404": not_found})), json!({"type": "object", "additionalProperties": false, "properties": {}})),
                "delete": op("Delete a webhook", json!({"204": {"description": "Deleted"}, "404": not_found})),
            },
            "/v1/webhooks/{id}/status": {"parameters": id_param(), "get": op("Delivery state per event type", json!({"200": ok("State", json!({"type": "object"})), "404": not_found}))},
            "/v1/webhooks/{id}/resume": {"parameters": id_param(), "post": op("Resume paused event types (all when none given)", json!({"200": ok("Resumed types", json!({"type": "object"})), "404": not_found}))},
            "/v1/webhooks/{id}/test": {"parameters": id_param(), "post": with_body(op("Send an example event of a type", json!({"202": ok("The test event", json!({"$ref": "#/components/schemas/Event"})), "404": not_found})),
                json!({"type": "object", "required": ["type"], "properties": {"type": {"$ref": "#/components/schemas/EventType"}}}))},
            "/v1/webhooks/{id}/replay": {"parameters": id_param(), "post": with_body(op("Re-send the account's events in a time range", json!({"202": ok("Count enqueued", json!({"type": "object", "properties": {"enqueued": {"type": "integer"}}})), "404": not_found})),
                json!({"type": "object", "required": ["from"], "properties": {"from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"}, "event_types": {"type": "array", "items": {"$ref": "#/components/schemas/EventType"}}}}))},
            "/v1/webhooks/{id}/secret": {"parameters": id_param(), "get": op("The signing secret", json!({"200": ok("Secret", json!({"type": "object"})), "404": not_found}))},
            "/v1/webhooks/{id}/rotate-secret": {"parameters": id_param(), "post": op("Rotate the signing secret; the old one signs too during the overlap (default 24 h)", json!({"200": ok("New secret", json!({"type": "object"})), "404": not_found}))},
            "/v1/webhooks/{id}/attempts": {"parameters": id_param(), "get": op("The call log of a webhook (filters: event_type, event_id, outcome, from, to; cursor: before)", json!({"200": ok("Attempts, newest first", json!({"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}}, "next_cursor": {"type": ["string", "null"]}}})), "404": not_found}))},
            "/v1/attempts": {"get": op("The call log of the account", json!({"200": ok("Attempts, newest first", json!({"type": "object"}))}))},
            "/v1/events": {"get": {
                "summary": "Poll events after a cursor, in log order, each exactly once",
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "after", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
                "responses": {"200": ok("Events", json!({"type": "object", "properties": {
                    "data": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                    "next_cursor": {"type": "string"}, "has_more": {"type": "boolean"}}})),
                    "401": error_response("Missing or invalid API key")}}},
            "/v1/events/{id}": {"parameters": id_param(), "get": op("One event", json!({"200": ok("The event", json!({"$ref": "#/components/schemas/Event"})), "404": error_response("No such event")}))},
            "/v1/tracking": {
                "get": op("The account's tracking settings", json!({"200": ok("Settings", json!({"$ref": "#/components/schemas/TrackingSettings"}))})),
                "patch": with_body(op("Change the account's tracking settings (partial update)", json!({"200": ok("Settings after the change", json!({"$ref": "#/components/schemas/TrackingSettings"}))})), json!({"$ref": "#/components/schemas/TrackingPatch"})),
            },
            "/healthz": {"get": {"summary": "Liveness and store health", "responses": {"200": {"description": "Healthy"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "OpenMetrics text"}}}},
        }
    })
}
