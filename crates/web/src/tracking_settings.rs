//! `/v1/tracking`: the account's tracking settings — default open and
//! click tracking, `List-Unsubscribe`, and a custom tracking domain.

use axum::extract::State;
use axum::Json;
use tidings_core::domain_proof::VerificationView;
use tidings_core::tracking_settings::{TrackingPatch, TrackingView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::openapi::{JsonBodyErrors, KeyErrors, NotFound};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read, update))
        .routes(routes!(verify))
}

/// Check the tracking domain's TXT record (`domain_record`) in DNS. Once it
/// is found the domain is verified, and new messages' links are made with
/// it. The answer says what this check found either way.
#[utoipa::path(
    post, path = "/v1/tracking/verify", operation_id = "verify_tracking_domain", tag = "tracking",
    security(("bearer" = [])),
    responses((status = 200, description = "What the check found", body = VerificationView),
        NotFound, KeyErrors)
)]
async fn verify(
    State(st): State<AppState>,
    Auth(account): Auth,
) -> Result<Json<VerificationView>, ApiError> {
    Ok(Json(st.app.verify_tracking_domain(account).await?))
}

/// The account's tracking settings, defaults resolved.
#[utoipa::path(
    get, path = "/v1/tracking", operation_id = "get_tracking", tag = "tracking",
    security(("bearer" = [])),
    responses((status = 200, description = "Settings", body = TrackingView), KeyErrors)
)]
async fn read(
    State(st): State<AppState>,
    Auth(account): Auth,
) -> Result<Json<TrackingView>, ApiError> {
    Ok(Json(st.app.tracking_settings(account).await?))
}

/// Change the account's tracking settings: absent fields stay as they
/// are. Each message's own `track` options still win, and a message keeps
/// the settings it was accepted with.
#[utoipa::path(
    patch, path = "/v1/tracking", operation_id = "update_tracking", tag = "tracking",
    security(("bearer" = [])),
    request_body = TrackingPatch,
    responses((status = 200, description = "Settings after the change", body = TrackingView),
        (status = 409, description = "The tracking domain is another account's (`conflict`)", body = crate::error::ErrorBody),
        JsonBodyErrors, KeyErrors)
)]
async fn update(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiJson(patch): ApiJson<TrackingPatch>,
) -> Result<Json<TrackingView>, ApiError> {
    Ok(Json(st.app.update_tracking_settings(account, patch).await?))
}
