//! The public tracking endpoints: `/o/{token}` (open pixel), `/c/{token}`
//! (click redirect), `/u/{token}` (unsubscribe: GET shows a confirmation
//! page, POST unsubscribes — including the RFC 8058 one-click POST). No
//! key: the signed token is the credential. A forged or altered token gets
//! 404 and records nothing; the pixel is served whatever the token. On an
//! account's own tracking domain, only that account's tokens are honoured.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use tidings_core::tracking::{UnsubscribeMethod, Visit};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open))
        .routes(routes!(click, click_head))
        .routes(routes!(unsubscribe_page, unsubscribe))
}

fn ua(h: &HeaderMap) -> Option<&str> {
    h.get(header::USER_AGENT).and_then(|v| v.to_str().ok())
}

/// The host the request named: `Host`, or the authority of an HTTP/2
/// request.
fn host<'a>(h: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    h.get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

fn visit<'a>(peer: SocketAddr, method: &'a Method, h: &'a HeaderMap, uri: &'a Uri) -> Visit<'a> {
    Visit {
        method,
        ip: peer.ip(),
        user_agent: ua(h),
        host: host(h, uri),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// The token of a tracking URL; one that cannot be decoded is no token
/// (the same 404 as a forged one).
struct Token(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Token {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| Token(t))
            .map_err(|_| not_found())
    }
}

/// The open pixel. The hottest endpoint a mail service has: it reads the
/// request's own parts rather than having them copied out.
#[utoipa::path(
    get, path = "/o/{token}", operation_id = "track_open", tag = "tracking",
    params(("token" = String, Path, description = "The signed token of a message's pixel; `.gif` may follow")),
    responses((status = 200, description = "A transparent 1×1 GIF, whatever the token",
        content_type = "image/gif", body = Vec<u8>))
)]
async fn open(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Token(token): Token,
    request: axum::extract::Request,
) -> Response {
    let token = token.trim_end_matches(".gif");
    if let Err(e) = st
        .app
        .track_open(
            token,
            visit(peer, request.method(), request.headers(), request.uri()),
        )
        .await
    {
        tracing::error!(error = %e, "recording an open failed");
    }
    (
        [
            (header::CONTENT_TYPE, "image/gif"),
            (
                header::CACHE_CONTROL,
                "no-store, no-cache, must-revalidate, private",
            ),
        ],
        PIXEL,
    )
        .into_response()
}

/// A tracked link: records the click and redirects to the link's target.
#[utoipa::path(
    get, path = "/c/{token}", operation_id = "track_click", tag = "tracking",
    params(("token" = String, Path, description = "The signed token of a tracked link")),
    responses(
        (status = 303, description = "To the link's target", headers(("Location" = String))),
        (status = 404, description = "Not a valid token", content_type = "text/plain", body = String),
        (status = 503, description = "The click could not be recorded; try again", content_type = "text/plain", body = String))
)]
async fn click(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    Token(token): Token,
    headers: HeaderMap,
) -> Response {
    match st
        .app
        .track_click(&token, visit(peer, &method, &headers, &uri))
        .await
    {
        Ok(Some(url)) => Redirect::to(url.as_str()).into_response(),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "recording a click failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
    }
}

/// What `GET /c/{token}` does, for link checkers that ask with `HEAD`.
#[utoipa::path(
    head, path = "/c/{token}", operation_id = "track_click_head", tag = "tracking",
    params(("token" = String, Path, description = "The signed token of a tracked link")),
    responses(
        (status = 303, description = "To the link's target", headers(("Location" = String))),
        (status = 404, description = "Not a valid token"),
        (status = 503, description = "The click could not be recorded; try again"))
)]
async fn click_head(
    st: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    token: Token,
    headers: HeaderMap,
) -> Response {
    click(st, peer, method, uri, token, headers).await
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The unsubscribe page of a message's recipient: asks to confirm.
#[utoipa::path(
    get, path = "/u/{token}", operation_id = "unsubscribe_page", tag = "tracking",
    params(("token" = String, Path, description = "The signed unsubscribe token")),
    responses(
        (status = 200, description = "A page that asks to confirm", content_type = "text/html", body = String),
        (status = 404, description = "Not a valid token", content_type = "text/plain", body = String),
        (status = 503, description = "Try again", content_type = "text/plain", body = String))
)]
async fn unsubscribe_page(
    State(st): State<AppState>,
    uri: Uri,
    Token(token): Token,
    headers: HeaderMap,
) -> Response {
    match st.app.unsubscribe_target(&token, host(&headers, &uri)).await {
        Ok(Some(email)) => Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>Unsubscribe</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\">\
<h1>Unsubscribe</h1><p>Stop sending email to <strong>{}</strong>?</p>\
<form method=\"post\"><button type=\"submit\">Unsubscribe</button></form></body></html>",
            escape(&email)
        ))
        .into_response(),
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe page failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
    }
}

/// The unsubscribe form's fields, as the document describes them. The
/// handler reads the body itself: any body is accepted, and only
/// `List-Unsubscribe=One-Click` makes the unsubscribe a one-click one.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UnsubscribeForm {
    /// `One-Click` for the RFC 8058 one-click POST that mail clients send.
    #[schema(rename = "List-Unsubscribe")]
    list_unsubscribe: Option<String>,
}

/// Unsubscribe: the confirmation form, or the RFC 8058 one-click POST
/// (`List-Unsubscribe=One-Click`). The address is suppressed.
#[utoipa::path(
    post, path = "/u/{token}", operation_id = "unsubscribe", tag = "tracking",
    params(("token" = String, Path, description = "The signed unsubscribe token")),
    request_body(content = UnsubscribeForm, content_type = "application/x-www-form-urlencoded",
        description = "`List-Unsubscribe=One-Click` for a one-click unsubscribe; empty for the confirmation form"),
    responses(
        (status = 200, description = "Unsubscribed", content_type = "text/html", body = String),
        (status = 404, description = "Not a valid token", content_type = "text/plain", body = String),
        (status = 503, description = "Try again", content_type = "text/plain", body = String))
)]
async fn unsubscribe(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    Token(token): Token,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let one_click =
        std::str::from_utf8(&body).is_ok_and(|b| b.contains("List-Unsubscribe=One-Click"));
    let method = if one_click {
        UnsubscribeMethod::OneClick
    } else {
        UnsubscribeMethod::Link
    };
    match st
        .app
        .unsubscribe(&token, method, visit(peer, &Method::POST, &headers, &uri))
        .await
    {
        Ok(true) => Html(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unsubscribed</title></head>\
<body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\"><h1>You are unsubscribed</h1>\
<p>You will not receive these emails any more.</p></body></html>",
        )
        .into_response(),
        Ok(false) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "unsubscribe failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
    }
}
