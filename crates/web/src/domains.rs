//! `/v1/domains`: sending domains and the DKIM records to publish.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tidings_core::domains::DomainInput;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/domains", get(list).post(create))
        .route("/v1/domains/{domain}", get(read).delete(remove))
}

async fn create(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiJson(input): ApiJson<DomainInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let d = st.app.add_domain(account, input).await?;
    Ok((StatusCode::CREATED, Json(json!(d))))
}

async fn list(State(st): State<AppState>, Auth(account): Auth) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"data": st.app.list_domains(account).await?})))
}

async fn read(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(domain): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let all = st.app.list_domains(account).await?;
    let d = all
        .into_iter()
        .find(|d| d.domain.eq_ignore_ascii_case(&domain))
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(json!(d)))
}

async fn remove(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.app.remove_domain(account, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
