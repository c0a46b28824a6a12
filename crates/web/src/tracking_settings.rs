//! `/v1/tracking`: the account's tracking settings — default open and
//! click tracking, `List-Unsubscribe`, and a custom tracking domain.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tidings_core::tracking_settings::{TrackingPatch, TrackingView};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/tracking", get(read).patch(update))
}

async fn read(
    State(st): State<AppState>,
    Auth(account): Auth,
) -> Result<Json<TrackingView>, ApiError> {
    Ok(Json(st.app.tracking_settings(account).await?))
}

async fn update(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiJson(patch): ApiJson<TrackingPatch>,
) -> Result<Json<TrackingView>, ApiError> {
    Ok(Json(st.app.update_tracking_settings(account, patch).await?))
}
