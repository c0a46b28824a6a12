//! `Authorization: Bearer <api key>` → the account it belongs to.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use tidings_types::AccountId;

use crate::error::ApiError;
use crate::AppState;

/// The authenticated account of a request.
pub struct Auth(pub AccountId);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send a valid API key as `Authorization: Bearer <key>`",
            )
        };
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthorized)?;
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(unauthorized)?
            .trim();
        state
            .app
            .authenticate(key)
            .await
            .map(Auth)
            .map_err(|e| match e {
                tidings_core::CoreError::Unauthorized => unauthorized(),
                other => other.into(),
            })
    }
}
