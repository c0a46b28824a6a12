//! The `Idempotency-Key` request header, for the operations that make
//! something (`POST /v1/messages`, `POST /v1/webhooks`); the rules are
//! [`tidings_core::idempotency`]'s. An answer that replays an earlier
//! request's carries `Idempotent-Replayed: true`.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use tidings_core::idempotency::Idempotency;
use tidings_core::{CoreError, ErrorCode};

use crate::error::ApiError;

pub const KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The request's key, if it sent one, bound to its route and body.
pub fn from_request(
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
) -> Result<Option<Idempotency>, ApiError> {
    let Some(v) = headers.get(&KEY) else {
        return Ok(None);
    };
    let key = v.to_str().map_err(|_| {
        ApiError::from(CoreError::invalid(
            ErrorCode::InvalidIdempotencyKey,
            "an Idempotency-Key is printable ASCII",
        ))
    })?;
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(Some(Idempotency::new(key, route, ct, body)?))
}

/// The answer's headers: `Idempotent-Replayed: true` on a replay.
pub fn answer_headers(replayed: bool) -> HeaderMap {
    let mut h = HeaderMap::new();
    if replayed {
        h.insert(REPLAYED, HeaderValue::from_static("true"));
    }
    h
}
