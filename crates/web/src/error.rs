//! The one table from errors to HTTP responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tidings_core::{CoreError, ErrorCode};

/// An API error: a stable code, a human message, a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
}

/// The body of every error: `{"error": {"code", "message"}}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `not_found`, `unauthorized`,
    /// `invalid_request`, `unknown_field`, `invalid_json`, …
    #[schema(value_type = String)]
    pub code: &'static str,
    /// For people; may change.
    pub message: String,
}

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidRequest
        | ErrorCode::InvalidUrl
        | ErrorCode::BlockedUrl
        | ErrorCode::UnknownField
        | ErrorCode::InvalidEventType
        | ErrorCode::InvalidMessage
        | ErrorCode::InvalidAddress
        | ErrorCode::InvalidHeader
        | ErrorCode::ReservedHeader
        | ErrorCode::InvalidIdempotencyKey
        | ErrorCode::IdempotencyKeyReused
        | ErrorCode::TooManyRecipients => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::MessageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnknownSenderDomain | ErrorCode::DomainUnverified => StatusCode::FORBIDDEN,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let code = e.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = ?e, "internal error");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code.as_str(),
                "internal error",
            );
        }
        let message = match &e {
            CoreError::NotFound => "no such resource".to_string(),
            other => other.to_string(),
        };
        ApiError::new(status_of(code), code.as_str(), message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut res = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

/// The message of the 404 for a path the API does not have.
pub const NO_ROUTE: &str = "no such route";

/// What a path the API does not have gets.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", NO_ROUTE)
}
