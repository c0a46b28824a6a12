//! `/v1/messages` (send, and read back with the event timeline) and
//! `/v1/suppressions`.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use tidings_core::inbound::InboundSummary;
use tidings_core::sending::{Accepted, SendRequest};
use tidings_core::Source;
use tidings_types::MessageId;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorBody};
use crate::idempotent;
use crate::json::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::{
    IdempotencyHeader, JsonBodyErrors, KeyErrors, NotFound, QueryErrors, RawMessage,
};
use crate::views::{MessageView, Page, SuppressionView};
use crate::AppState;

/// Largest body of `POST /v1/messages` (attachments travel base64-encoded).
pub const MAX_MESSAGE_BODY: usize = 40 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send).layer(DefaultBodyLimit::max(MAX_MESSAGE_BODY)))
        .routes(routes!(read))
        .routes(routes!(inbound).layer(DefaultBodyLimit::max(MAX_MESSAGE_BODY)))
        .routes(routes!(list_suppressions, add_suppression))
        .routes(routes!(get_suppression, remove_suppression))
}

/// Send a message: as JSON parts, or as a raw message whose recipients
/// are its `To`, `Cc` and `Bcc` (`Bcc` is removed). `202` means it is
/// stored with one delivery per recipient; suppressed recipients are
/// `dropped`.
#[utoipa::path(
    post, path = "/v1/messages", operation_id = "send_message", tag = "messages",
    security(("bearer" = [])),
    params(IdempotencyHeader),
    request_body(content(
        (SendRequest = "application/json"),
        (RawMessage = "message/rfc822"),
        (RawMessage = "text/plain"),
    )),
    responses((status = 202, description = "Accepted for delivery (`Idempotent-Replayed: true` when it answers an earlier request with the same `Idempotency-Key`)", body = Accepted),
        (status = 403, description = "The sender's domain is not one of the account's sending domains (`unknown_sender_domain`); add it with `POST /v1/domains`. Or it is, but still waits for its DNS proof (`domain_unverified`): `POST /v1/domains/{domain}/verify`", body = ErrorBody),
        JsonBodyErrors, KeyErrors)
)]
async fn send(
    State(st): State<AppState>,
    Auth(account): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Json<Accepted>), ApiError> {
    let idem = idempotent::from_request(&headers, "POST /v1/messages", &body)?;
    let idem = idem.as_ref();
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (accepted, replayed) = if ct.starts_with("message/rfc822") || ct.starts_with("text/plain") {
        st.app
            .send_raw_once(account, &body, Source::Http, idem)
            .await?
    } else if ct.starts_with("application/json") {
        let req: SendRequest = crate::json::parse_json(&body)?;
        st.app.send_json_once(account, req, idem).await?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json, or a raw message as message/rfc822",
        ));
    };
    Ok((
        StatusCode::ACCEPTED,
        idempotent::answer_headers(replayed),
        Json(accepted),
    ))
}

/// A message, its recipients' delivery state and its events so far.
#[utoipa::path(
    get, path = "/v1/messages/{id}", operation_id = "get_message", tag = "messages",
    security(("bearer" = [])),
    params(("id" = MessageId, Path)),
    responses((status = 200, description = "The message", body = MessageView), NotFound, KeyErrors)
)]
async fn read(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MessageView>, ApiError> {
    let id: MessageId = id.parse().map_err(|_| ApiError::not_found())?;
    let (m, events) = st.app.get_message(account, id).await?;
    Ok(Json(MessageView::new(&m, &events)))
}

/// A bounce or feedback-loop report received by another MTA, posted raw.
/// Only this account's messages are affected.
#[utoipa::path(
    post, path = "/v1/inbound", operation_id = "post_inbound", tag = "inbound",
    security(("bearer" = [])),
    request_body(content = RawMessage, content_type = "message/rfc822"),
    responses((status = 202, description = "What the report did", body = InboundSummary),
        (status = 413, description = "Larger than the limit (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "Not a message (`invalid_message`)", body = ErrorBody),
        KeyErrors)
)]
async fn inbound(
    State(st): State<AppState>,
    Auth(account): Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<InboundSummary>), ApiError> {
    if !starts_with_header_field(&body) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_message",
            "post the report as the raw message, header fields first",
        ));
    }
    let summary = st.app.receive_report(&body, &[], Some(account)).await?;
    Ok((StatusCode::ACCEPTED, Json(summary)))
}

/// Does the text open with an RFC 5322 header field (`Name: value`)? A
/// body that does not is no message at all.
fn starts_with_header_field(raw: &[u8]) -> bool {
    let name_len = raw
        .iter()
        .take_while(|b| b.is_ascii_graphic() && **b != b':')
        .count();
    name_len > 0 && raw.get(name_len) == Some(&b':')
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// The cursor: `next_cursor` of the previous page (addresses sort
    /// after it).
    #[serde(default)]
    after: Option<String>,
    /// Page size (default 100); clamped to 1 to 1000.
    #[serde(default)]
    #[param(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// The suppression list, by address.
#[utoipa::path(
    get, path = "/v1/suppressions", operation_id = "list_suppressions", tag = "suppressions",
    security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "Suppressed addresses", body = Page<SuppressionView>),
        QueryErrors, KeyErrors)
)]
async fn list_suppressions(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<SuppressionView>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = st.app.list_suppressions(account, q.after, limit).await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|s| s.email.clone()))
        .flatten();
    Ok(Json(Page {
        data: rows.iter().map(SuppressionView::from).collect(),
        next_cursor: next,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AddBody {
    email: String,
    /// Default `manual`.
    #[serde(default)]
    reason: Option<String>,
}

/// Suppress an address: nothing more is sent to it.
#[utoipa::path(
    post, path = "/v1/suppressions", operation_id = "add_suppression", tag = "suppressions",
    security(("bearer" = [])),
    request_body = AddBody,
    responses((status = 201, description = "Suppressed", body = SuppressionView),
        JsonBodyErrors, KeyErrors)
)]
async fn add_suppression(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiJson(body): ApiJson<AddBody>,
) -> Result<(StatusCode, Json<SuppressionView>), ApiError> {
    let s = st
        .app
        .add_suppression(account, &body.email, body.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(SuppressionView::from(&s))))
}

/// One suppressed address.
#[utoipa::path(
    get, path = "/v1/suppressions/{email}", operation_id = "get_suppression", tag = "suppressions",
    security(("bearer" = [])),
    params(("email" = String, Path)),
    responses((status = 200, description = "The suppression", body = SuppressionView),
        NotFound, (status = 422, description = "Not an email address (`invalid_address`)", body = ErrorBody),
        KeyErrors)
)]
async fn get_suppression(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(email): ApiPath<String>,
) -> Result<Json<SuppressionView>, ApiError> {
    Ok(Json(SuppressionView::from(
        &st.app.get_suppression(account, &email).await?,
    )))
}

/// Stop suppressing an address.
#[utoipa::path(
    delete, path = "/v1/suppressions/{email}", operation_id = "remove_suppression",
    tag = "suppressions",
    security(("bearer" = [])),
    params(("email" = String, Path)),
    responses((status = 204, description = "No longer suppressed"), NotFound,
        (status = 422, description = "Not an email address (`invalid_address`)", body = ErrorBody),
        KeyErrors)
)]
async fn remove_suppression(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(email): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    st.app.remove_suppression(account, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}
