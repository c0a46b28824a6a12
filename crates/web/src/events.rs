//! `/v1/events`: the polling API. `after` is the cursor of the last event
//! the consumer has seen (`0` or absent to start from the beginning of the
//! retained log); every committed event appears exactly once, in log order.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use tidings_types::EventId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiPath, ApiQuery};
use crate::openapi::{KeyErrors, NotFound, QueryErrors};
use crate::views::{EventJson, EventPage, PolledEvent};
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(poll))
        .routes(routes!(one))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PollQuery {
    /// The cursor: `next_cursor` of the previous poll (or the `cursor` of
    /// the last event handled); absent or `0`: from the start of the
    /// retained log.
    #[serde(default)]
    #[param(pattern = "^[0-9]*$")]
    after: Option<String>,
    /// Page size (default 100); clamped to 1 to 1000.
    #[serde(default)]
    #[param(format = Int64, minimum = 0, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// The events after a cursor, in log order; each committed event appears
/// exactly once.
#[utoipa::path(
    get, path = "/v1/events", operation_id = "poll_events", tag = "events",
    security(("bearer" = [])),
    params(PollQuery),
    responses((status = 200, description = "Events", body = EventPage),
        (status = 400, description = "`after` is not a cursor (`invalid_cursor`)", body = ErrorBody),
        QueryErrors, KeyErrors)
)]
async fn poll(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiQuery(q): ApiQuery<PollQuery>,
) -> Result<Json<EventPage>, ApiError> {
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
    let data = events
        .iter()
        .map(|e| {
            let mut v = e.to_json(None);
            v["cursor"] = json!(e.seq.to_string());
            PolledEvent(v)
        })
        .collect();
    Ok(Json(EventPage {
        data,
        next_cursor: next.to_string(),
        has_more: events.len() == limit as usize,
    }))
}

/// One event.
#[utoipa::path(
    get, path = "/v1/events/{id}", operation_id = "get_event", tag = "events",
    security(("bearer" = [])),
    params(("id" = EventId, Path)),
    responses((status = 200, description = "The event", body = EventJson), NotFound, KeyErrors)
)]
async fn one(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EventJson>, ApiError> {
    let id: EventId = id.parse().map_err(|_| ApiError::not_found())?;
    let e = st.app.get_event(account, id).await?;
    Ok(Json(EventJson::from(&e)))
}
