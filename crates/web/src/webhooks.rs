//! `/v1/webhooks`: manage webhooks, see their state, test, replay, rotate,
//! and read the call log.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tidings_core::webhook_test::WebhookTest;
use tidings_core::webhooks::{WebhookInput, WebhookPatch};
use tidings_store::{AttemptFilter, AttemptOutcome, AttemptRecord, TypeState};
use tidings_types::time::rfc3339;
use tidings_types::{AttemptId, EventId, EventType, Timestamp, Webhook, WebhookId};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::{ApiJson, ApiJsonOrEmpty, ApiQuery};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks", get(list).post(create))
        .route("/v1/webhooks/{id}", get(read).patch(update).delete(remove))
        .route("/v1/webhooks/{id}/status", get(status))
        .route("/v1/webhooks/{id}/resume", post(resume))
        .route("/v1/webhooks/{id}/test", post(test))
        .route("/v1/webhooks/{id}/replay", post(replay))
        .route("/v1/webhooks/{id}/secret", get(secret))
        .route("/v1/webhooks/{id}/rotate-secret", post(rotate))
        .route("/v1/webhooks/{id}/attempts", get(webhook_attempts))
        .route("/v1/attempts", get(account_attempts))
}

fn parse_id(s: &str) -> Result<WebhookId, ApiError> {
    s.parse().map_err(|_| ApiError::not_found())
}

pub(crate) fn webhook_json(w: &Webhook) -> Value {
    let s = &w.settings;
    json!({
        "id": w.id,
        "url": s.url.as_str(),
        "event_types": s.event_types,
        "format": s.format,
        "fields": s.fields,
        "headers": s.headers,
        "description": s.description,
        "max_in_flight": s.max_in_flight,
        "max_per_second": s.max_per_second,
        "batch": s.batch,
        "created_at": rfc3339(w.created_at),
        "updated_at": rfc3339(w.updated_at),
    })
}

fn with_secret(w: &Webhook) -> Value {
    let mut v = webhook_json(w);
    v["secret"] = json!(w.secret.expose());
    v
}

async fn create(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (w, backfilled) = st.app.create_webhook(account, input).await?;
    let mut v = with_secret(&w);
    v["backfilled"] = json!(backfilled);
    Ok((StatusCode::CREATED, Json(v)))
}

async fn list(State(st): State<AppState>, Auth(account): Auth) -> Result<Json<Value>, ApiError> {
    let hooks = st.app.list_webhooks(account).await?;
    Ok(Json(
        json!({"data": hooks.iter().map(webhook_json).collect::<Vec<_>>()}),
    ))
}

async fn read(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let w = st.app.get_webhook(account, parse_id(&id)?).await?;
    Ok(Json(webhook_json(&w)))
}

async fn update(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> Result<Json<Value>, ApiError> {
    let w = st
        .app
        .update_webhook(account, parse_id(&id)?, patch)
        .await?;
    Ok(Json(webhook_json(&w)))
}

async fn remove(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.app.delete_webhook(account, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn state_json(t: &TypeState) -> Value {
    json!({
        "event_type": t.event_type,
        "state": if t.paused { "paused" } else { "active" },
        "pause_reason": t.pause_reason,
        "paused_at": t.paused_at.map(rfc3339),
        "consecutive_failures": t.consecutive_failures,
        "last_success_at": t.last_success_at.map(rfc3339),
        "last_error": t.last_error,
        "last_error_at": t.last_error_at.map(rfc3339),
        "pending": t.pending,
    })
}

async fn status(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let states = st.app.webhook_status(account, id).await?;
    Ok(Json(json!({
        "webhook_id": id,
        "event_types": states.iter().map(state_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResumeBody {
    #[serde(default)]
    event_types: Vec<EventType>,
}

async fn resume(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
    ApiJsonOrEmpty(body): ApiJsonOrEmpty<ResumeBody>,
) -> Result<Json<Value>, ApiError> {
    let resumed = st
        .app
        .resume_webhook(account, parse_id(&id)?, &body.event_types)
        .await?;
    Ok(Json(json!({"resumed": resumed})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    #[serde(rename = "type", alias = "event_type")]
    event_type: EventType,
}

/// One real attempt, answered with the receiver's answer (a receiver that
/// fails is still a 200: the test was made).
async fn test(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<Json<WebhookTest>, ApiError> {
    let answer = st
        .app
        .test_webhook(account, parse_id(&id)?, body.event_type)
        .await?;
    Ok(Json(answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    from: Timestamp,
    #[serde(default)]
    to: Option<Timestamp>,
    #[serde(default)]
    event_types: Vec<EventType>,
}

async fn replay(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let n = st
        .app
        .replay(
            account,
            parse_id(&id)?,
            body.from,
            body.to,
            &body.event_types,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"enqueued": n}))))
}

async fn secret(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let w = st.app.get_webhook(account, parse_id(&id)?).await?;
    let now = st.app.clock.now();
    Ok(Json(json!({
        "secret": w.secret.expose(),
        "previous_secret_expires_at": w.previous_secret.as_ref()
            .filter(|(_, until)| *until > now).map(|(_, until)| rfc3339(*until)),
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    overlap_seconds: Option<u64>,
    #[serde(default)]
    secret: Option<String>,
}

async fn rotate(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
    ApiJsonOrEmpty(body): ApiJsonOrEmpty<RotateBody>,
) -> Result<Json<Value>, ApiError> {
    let w = st
        .app
        .rotate_secret(
            account,
            parse_id(&id)?,
            body.overlap_seconds.map(Duration::from_secs),
            body.secret,
        )
        .await?;
    Ok(Json(json!({
        "secret": w.secret.expose(),
        "previous_secret_expires_at": w.previous_secret.as_ref().map(|(_, u)| rfc3339(*u)),
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AttemptQuery {
    #[serde(default)]
    webhook_id: Option<WebhookId>,
    #[serde(default)]
    event_type: Option<EventType>,
    #[serde(default)]
    event_id: Option<EventId>,
    #[serde(default)]
    outcome: Option<AttemptOutcome>,
    #[serde(default)]
    from: Option<Timestamp>,
    #[serde(default)]
    to: Option<Timestamp>,
    #[serde(default)]
    before: Option<AttemptId>,
    #[serde(default)]
    limit: Option<u32>,
}

fn attempt_json(a: &AttemptRecord) -> Value {
    json!({
        "id": a.id,
        "webhook_id": a.webhook_id,
        "event_id": a.event_id,
        "event_type": a.event_type,
        "at": rfc3339(a.at),
        "url": a.url,
        "outcome": a.outcome,
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "response": a.response,
        "attempt": a.attempt,
        "next_attempt_at": a.next_attempt_at.map(rfc3339),
    })
}

async fn attempts_page(
    st: &AppState,
    account: tidings_types::AccountId,
    q: AttemptQuery,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let filter = AttemptFilter {
        webhook_id: q.webhook_id,
        event_type: q.event_type,
        event_id: q.event_id,
        outcome: q.outcome,
        from: q.from,
        to: q.to,
        before: q.before,
        limit,
    };
    let rows = st.app.attempts(account, filter).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|a| a.id))
        .flatten();
    Ok(Json(json!({
        "data": rows.iter().map(attempt_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

async fn webhook_attempts(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
    ApiQuery(mut q): ApiQuery<AttemptQuery>,
) -> Result<Json<Value>, ApiError> {
    q.webhook_id = Some(parse_id(&id)?);
    attempts_page(&st, account, q).await
}

async fn account_attempts(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiQuery(q): ApiQuery<AttemptQuery>,
) -> Result<Json<Value>, ApiError> {
    attempts_page(&st, account, q).await
}
