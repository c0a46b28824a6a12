//! `/v1/messages` (send, and read back with the event timeline) and
//! `/v1/suppressions`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tidings_core::sending::SendRequest;
use tidings_store::{Source, Suppression};
use tidings_types::time::rfc3339;
use tidings_types::MessageId;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::{ApiJson, ApiQuery};
use crate::AppState;

/// Largest body of `POST /v1/messages` (attachments travel base64-encoded).
pub const MAX_MESSAGE_BODY: usize = 40 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/messages",
            axum::routing::post(send).layer(axum::extract::DefaultBodyLimit::max(MAX_MESSAGE_BODY)),
        )
        .route("/v1/messages/{id}", get(read))
        .route(
            "/v1/inbound",
            axum::routing::post(inbound)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_MESSAGE_BODY)),
        )
        .route(
            "/v1/suppressions",
            get(list_suppressions).post(add_suppression),
        )
        .route(
            "/v1/suppressions/{email}",
            get(get_suppression).delete(remove_suppression),
        )
}

async fn send(
    State(st): State<AppState>,
    Auth(account): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let accepted = if ct.starts_with("message/rfc822") || ct.starts_with("text/plain") {
        st.app.send_raw(account, &body, None, Source::Http).await?
    } else if ct.starts_with("application/json") {
        let req: SendRequest = crate::json::parse_json(&body)?;
        st.app.send_json(account, req).await?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json, or a raw message as message/rfc822",
        ));
    };
    Ok((StatusCode::ACCEPTED, Json(json!(accepted))))
}

async fn read(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: MessageId = id.parse().map_err(|_| ApiError::not_found())?;
    let (m, events) = st.app.get_message(account, id).await?;
    Ok(Json(json!({
        "id": m.id,
        "created_at": rfc3339(m.created_at),
        "source": m.source,
        "from": m.from,
        "mail_from": m.mail_from,
        "subject": m.subject,
        "smtp_message_id": m.smtp_message_id,
        "custom_id": m.custom_id,
        "group": m.group,
        "tags": m.tags,
        "size": m.size,
        "track": {"opens": m.track_opens, "clicks": m.track_clicks, "unsubscribe": m.track_unsubscribe},
        "recipients": m.recipients.iter().map(|r| json!({
            "email": r.email,
            "status": r.status,
            "attempts": r.attempts,
            "last_response": r.last_response,
            "updated_at": rfc3339(r.updated_at),
        })).collect::<Vec<_>>(),
        "events": events.iter().map(|e| e.to_json(None)).collect::<Vec<_>>(),
    })))
}

/// A bounce or feedback-loop report received by another MTA, posted raw.
/// Only this account's messages are affected.
async fn inbound(
    State(st): State<AppState>,
    Auth(account): Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_message",
            "post the report as the raw message",
        ));
    }
    let summary = st.app.receive_report(&body, &[], Some(account)).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(summary))))
}

fn suppression_json(s: &Suppression) -> Value {
    json!({"email": s.email, "reason": s.reason, "created_at": rfc3339(s.created_at)})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn list_suppressions(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = st.app.list_suppressions(account, q.after, limit).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|s| s.email.clone()))
        .flatten();
    Ok(Json(json!({
        "data": rows.iter().map(suppression_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    email: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn add_suppression(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiJson(body): ApiJson<AddBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let s = st
        .app
        .add_suppression(account, &body.email, body.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(suppression_json(&s))))
}

async fn get_suppression(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(suppression_json(
        &st.app.get_suppression(account, &email).await?,
    )))
}

async fn remove_suppression(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(email): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.app.remove_suppression(account, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}
