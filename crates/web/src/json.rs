//! JSON in and out, with rejections mapped to API errors: a body that is
//! too large is 413 `payload_too_large`, malformed JSON is 400
//! `invalid_json`, and JSON of the wrong shape is 422 with a code that
//! says which rule it broke (`unknown_field`, `invalid_event_type`, …).

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

fn shape_error(text: String) -> ApiError {
    let code = if text.contains("unknown field") {
        "unknown_field"
    } else if text.contains("unknown event type") || text.contains("expected one of `sent`") {
        "invalid_event_type"
    } else {
        "invalid_request"
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, text)
}

/// `application/json`, or a `+json` type.
fn is_json(headers: &HeaderMap) -> bool {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body, read up to the route's limit.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {} bytes", crate::MAX_BODY),
            )
        } else {
            ApiError::bad_request("invalid_request", e.body_text())
        }
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ApiJsonBytes(v, _) = ApiJsonBytes::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// Decode JSON already read into memory, with the same error mapping.
/// Every body of the API is one JSON object: an array or a scalar is
/// refused (422 `invalid_request`), rather than read as a struct's fields
/// in order, and anything after the object is malformed JSON.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(match serde_json::from_slice::<IgnoredAny>(body) {
            Err(e) => {
                ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
            }
            Ok(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "the body must be a JSON object",
            ),
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(
                "invalid_json",
                format!("the body is not valid JSON: {inner}"),
            )
        } else {
            shape_error(e.to_string())
        }
    })?;
    // Nothing but white space may follow the object.
    de.end().map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    Ok(value)
}

/// Like [`ApiJson`], with the body as it came too (for a digest of it).
pub struct ApiJsonBytes<T>(pub T, pub Bytes);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJsonBytes<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let body = read_body(req, state).await?;
        parse_json(&body).map(|v| ApiJsonBytes(v, body))
    }
}

pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(shape_error(e.body_text()))
            }
            Err(e) => Err(ApiError::bad_request("invalid_request", e.body_text())),
        }
    }
}

/// Like [`ApiJson`], but an empty body, or `null`, means `T::default()`
/// (for actions whose options are all optional, such as resume and rotate).
pub struct ApiJsonOrEmpty<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for ApiJsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v == "0")
            || (!req.headers().contains_key(axum::http::header::CONTENT_TYPE)
                && !req
                    .headers()
                    .contains_key(axum::http::header::TRANSFER_ENCODING)
                && !req
                    .headers()
                    .contains_key(axum::http::header::CONTENT_LENGTH));
        if empty {
            return Ok(ApiJsonOrEmpty(T::default()));
        }
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json, or none",
            ));
        }
        let body = read_body(req, state).await?;
        if body.trim_ascii() == b"null" || body.trim_ascii().is_empty() {
            return Ok(ApiJsonOrEmpty(T::default()));
        }
        parse_json(&body).map(ApiJsonOrEmpty)
    }
}

/// A path parameter. One that cannot be decoded (say, percent-encoded
/// bytes that are not UTF-8) names no resource: 404 `not_found`, in the
/// API's error shape.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|_| ApiError::not_found())
    }
}
