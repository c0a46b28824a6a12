//! `/v1/events`: the polling API. `after` is the cursor of the last event
//! the consumer has seen (`0` or absent to start from the beginning of the
//! retained log); every committed event appears exactly once, in log order.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tidings_types::EventId;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::ApiQuery;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/events", get(poll))
        .route("/v1/events/{id}", get(one))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PollQuery {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn poll(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiQuery(q): ApiQuery<PollQuery>,
) -> Result<Json<Value>, ApiError> {
    let after =
        match q.after.as_deref() {
            None | Some("") => 0,
            Some(c) => c.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "`after` is not a cursor")
            })?,
        };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let events = st.app.events_after(account, after, limit).await?;
    let next = events.last().map(|e| e.seq).unwrap_or(after);
    let data: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut v = e.to_json(None);
            v["cursor"] = json!(e.seq.to_string());
            v
        })
        .collect();
    Ok(Json(json!({
        "data": data,
        "next_cursor": next.to_string(),
        "has_more": events.len() == limit as usize,
    })))
}

async fn one(
    State(st): State<AppState>,
    Auth(account): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: EventId = id.parse().map_err(|_| ApiError::not_found())?;
    let e = st
        .app
        .store
        .get_event(account, id)
        .await
        .map_err(tidings_core::CoreError::from)?;
    Ok(Json(e.to_json(None)))
}
