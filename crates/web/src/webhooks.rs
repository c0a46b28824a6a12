//! `/v1/webhooks`: manage webhooks, see their state, test, replay, rotate,
//! and read the call log.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use tidings_core::webhooks::{WebhookInput, WebhookPatch};
use tidings_core::{AttemptFilter, AttemptOutcome};
use tidings_types::time::rfc3339;
use tidings_types::{AttemptId, EventId, EventType, Timestamp, WebhookId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorBody};
use crate::idempotent;
use crate::json::{ApiJson, ApiJsonBytes, ApiJsonOrEmpty, ApiPath, ApiQuery};
use crate::openapi::{IdempotencyHeader, JsonBodyErrors, KeyErrors, NotFound, QueryErrors};
use crate::views::{
    AttemptView, CreatedWebhook, Enqueued, List, Page, Resumed, SecretView, WebhookStatus,
    WebhookTestView, WebhookView,
};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
        .routes(routes!(status))
        .routes(routes!(resume))
        .routes(routes!(test))
        .routes(routes!(replay))
        .routes(routes!(secret))
        .routes(routes!(rotate))
        .routes(routes!(webhook_attempts))
        .routes(routes!(account_attempts))
}

fn parse_id(s: &str) -> Result<WebhookId, ApiError> {
    s.parse().map_err(|_| ApiError::not_found())
}

/// Create a webhook. Events of the last 7 days are queued for it unless
/// `backfill` is false.
#[utoipa::path(
    post, path = "/v1/webhooks", operation_id = "create_webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(IdempotencyHeader),
    request_body = WebhookInput,
    responses((status = 201, description = "Created, with its secret (`Idempotent-Replayed: true` when it answers an earlier request with the same `Idempotency-Key`)", body = CreatedWebhook),
        (status = 409, description = "The webhook an `Idempotency-Key` created was deleted (`conflict`)", body = ErrorBody),
        JsonBodyErrors, KeyErrors)
)]
async fn create(
    State(st): State<AppState>,
    Auth(account): Auth,
    headers: HeaderMap,
    ApiJsonBytes(input, body): ApiJsonBytes<WebhookInput>,
) -> Result<(StatusCode, HeaderMap, Json<CreatedWebhook>), ApiError> {
    let idem = idempotent::from_request(&headers, "POST /v1/webhooks", &body)?;
    let (w, backfilled, replayed) = st
        .app
        .create_webhook_once(account, input, idem.as_ref())
        .await?;
    let created = CreatedWebhook {
        webhook: WebhookView::from(&w),
        secret: w.secret.expose().to_string(),
        backfilled,
    };
    Ok((
        StatusCode::CREATED,
        idempotent::answer_headers(replayed),
        Json(created),
    ))
}

/// The account's webhooks.
#[utoipa::path(
    get, path = "/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    security(("bearer" = [])),
    responses((status = 200, description = "Every webhook of the account", body = List<WebhookView>),
        KeyErrors)
)]
async fn list(
    State(st): State<AppState>,
    Auth(account): Auth,
) -> Result<Json<List<WebhookView>>, ApiError> {
    let hooks = st.app.list_webhooks(account).await?;
    Ok(Json(List {
        data: hooks.iter().map(WebhookView::from).collect(),
    }))
}

/// One webhook.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = WebhookId, Path)),
    responses((status = 200, description = "The webhook", body = WebhookView), NotFound, KeyErrors)
)]
async fn read(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let w = st.app.get_webhook(account, parse_id(&id)?).await?;
    Ok(Json(WebhookView::from(&w)))
}

/// Change a webhook: absent fields stay as they are, `null` clears an
/// optional one. Any change resumes its paused event types.
#[utoipa::path(
    patch, path = "/v1/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = WebhookId, Path)),
    request_body = WebhookPatch,
    responses((status = 200, description = "The webhook after the change", body = WebhookView),
        NotFound, JsonBodyErrors, KeyErrors)
)]
async fn update(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> Result<Json<WebhookView>, ApiError> {
    let w = st
        .app
        .update_webhook(account, parse_id(&id)?, patch)
        .await?;
    Ok(Json(WebhookView::from(&w)))
}

/// Delete a webhook; nothing more is posted to it.
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = WebhookId, Path)),
    responses((status = 204, description = "Deleted"), NotFound, KeyErrors)
)]
async fn remove(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    st.app.delete_webhook(account, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The delivery state of each event type of a webhook.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/status", operation_id = "webhook_status", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = WebhookId, Path)),
    responses((status = 200, description = "State per event type", body = WebhookStatus),
        NotFound, KeyErrors)
)]
async fn status(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookStatus>, ApiError> {
    let id = parse_id(&id)?;
    let states = st.app.webhook_status(account, id).await?;
    Ok(Json(WebhookStatus {
        webhook_id: id,
        event_types: states.iter().map(Into::into).collect(),
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ResumeBody {
    /// The event types to resume; none (or no body): all paused ones.
    #[serde(default)]
    event_types: Vec<EventType>,
}

/// Resume paused event types; their held events are delivered.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/resume", operation_id = "resume_webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = WebhookId, Path)),
    request_body(content = Option<ResumeBody>, description = "Optional"),
    responses((status = 200, description = "The event types resumed", body = Resumed),
        NotFound, JsonBodyErrors, KeyErrors)
)]
async fn resume(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJsonOrEmpty(body): ApiJsonOrEmpty<ResumeBody>,
) -> Result<Json<Resumed>, ApiError> {
    let resumed = st
        .app
        .resume_webhook(account, parse_id(&id)?, &body.event_types)
        .await?;
    Ok(Json(Resumed { resumed }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TestBody {
    /// The type of the example event (also accepted as `event_type`).
    #[serde(rename = "type", alias = "event_type")]
    event_type: EventType,
}

/// Make one real attempt with an example event of a type, and answer with
/// the receiver's answer (a receiver that fails is still a 200: the test was
/// made). The attempt is in the call log; it never counts toward pausing.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/test", operation_id = "test_webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = WebhookId, Path)),
    request_body = TestBody,
    responses((status = 200, description = "The example sent and the receiver's answer", body = WebhookTestView),
        NotFound, JsonBodyErrors, KeyErrors)
)]
async fn test(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<Json<WebhookTestView>, ApiError> {
    let answer = st
        .app
        .test_webhook(account, parse_id(&id)?, body.event_type)
        .await?;
    Ok(Json(WebhookTestView::from(answer)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[schema(value_type = String, format = DateTime)]
    from: Timestamp,
    /// Default: now.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// Default: every type the webhook takes.
    #[serde(default)]
    event_types: Vec<EventType>,
}

/// Post the account's events of a time range to the webhook again.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/replay", operation_id = "replay_webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = WebhookId, Path)),
    request_body = ReplayBody,
    responses((status = 202, description = "How many events were queued", body = Enqueued),
        NotFound, JsonBodyErrors, KeyErrors)
)]
async fn replay(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<(StatusCode, Json<Enqueued>), ApiError> {
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
    Ok((StatusCode::ACCEPTED, Json(Enqueued { enqueued: n })))
}

/// The signing secret, and until when the previous one still signs.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/secret", operation_id = "get_webhook_secret", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = WebhookId, Path)),
    responses((status = 200, description = "The secret", body = SecretView), NotFound, KeyErrors)
)]
async fn secret(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SecretView>, ApiError> {
    let w = st.app.get_webhook(account, parse_id(&id)?).await?;
    let now = st.app.clock.now();
    Ok(Json(SecretView {
        secret: w.secret.expose().to_string(),
        previous_secret_expires_at: w
            .previous_secret
            .as_ref()
            .filter(|(_, until)| *until > now)
            .map(|(_, until)| rfc3339(*until)),
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old secret keeps signing too (default 24 hours).
    #[serde(default)]
    overlap_seconds: Option<u64>,
    /// Bring your own `whsec_…` secret; one is generated otherwise.
    #[serde(default)]
    secret: Option<String>,
}

/// Rotate the signing secret; the old one signs too during the overlap.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate-secret", operation_id = "rotate_webhook_secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = WebhookId, Path)),
    request_body(content = Option<RotateBody>, description = "Optional"),
    responses((status = 200, description = "The new secret", body = SecretView),
        NotFound, JsonBodyErrors, KeyErrors)
)]
async fn rotate(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJsonOrEmpty(body): ApiJsonOrEmpty<RotateBody>,
) -> Result<Json<SecretView>, ApiError> {
    let w = st
        .app
        .rotate_secret(
            account,
            parse_id(&id)?,
            body.overlap_seconds.map(Duration::from_secs),
            body.secret,
        )
        .await?;
    Ok(Json(SecretView {
        secret: w.secret.expose().to_string(),
        previous_secret_expires_at: w.previous_secret.as_ref().map(|(_, u)| rfc3339(*u)),
    }))
}

/// Filters of the call log, newest first; page with `before`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AttemptQuery {
    /// Only this webhook's attempts (`/v1/attempts` only).
    #[serde(default)]
    webhook_id: Option<WebhookId>,
    #[serde(default)]
    event_type: Option<EventType>,
    #[serde(default)]
    event_id: Option<EventId>,
    #[serde(default)]
    outcome: Option<AttemptOutcome>,
    /// Attempts at or after this time.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// Attempts before this time.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// The cursor: `next_cursor` of the previous page.
    #[serde(default)]
    before: Option<AttemptId>,
    /// Page size (default 50); clamped to 1 to 500.
    #[serde(default)]
    #[param(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

async fn attempts_page(
    st: &AppState,
    account: tidings_types::AccountId,
    q: AttemptQuery,
) -> Result<Json<Page<AttemptView>>, ApiError> {
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
        .then(|| rows.last().map(|a| a.id.to_string()))
        .flatten();
    Ok(Json(Page {
        data: rows.iter().map(AttemptView::from).collect(),
        next_cursor: next,
    }))
}

/// The call log of one webhook.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/attempts", operation_id = "list_webhook_attempts",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = WebhookId, Path), AttemptQuery),
    responses((status = 200, description = "Attempts, newest first", body = Page<AttemptView>),
        NotFound, QueryErrors, KeyErrors)
)]
async fn webhook_attempts(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(mut q): ApiQuery<AttemptQuery>,
) -> Result<Json<Page<AttemptView>>, ApiError> {
    q.webhook_id = Some(parse_id(&id)?);
    attempts_page(&st, account, q).await
}

/// The call log of the whole account.
#[utoipa::path(
    get, path = "/v1/attempts", operation_id = "list_attempts", tag = "webhooks",
    security(("bearer" = [])),
    params(AttemptQuery),
    responses((status = 200, description = "Attempts, newest first", body = Page<AttemptView>),
        (status = 404, description = "`webhook_id` names no webhook of the account (`not_found`)",
            body = crate::error::ErrorBody),
        QueryErrors, KeyErrors)
)]
async fn account_attempts(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiQuery(q): ApiQuery<AttemptQuery>,
) -> Result<Json<Page<AttemptView>>, ApiError> {
    attempts_page(&st, account, q).await
}
