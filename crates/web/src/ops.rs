//! Health and Prometheus metrics. Neither needs a key: operators scrape
//! them from inside their network.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::views::Health;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(metrics))
}

/// Liveness and store health.
#[utoipa::path(
    get, path = "/healthz", operation_id = "health", tag = "operations",
    responses((status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The store cannot be read", body = Health))
)]
async fn health(State(st): State<AppState>) -> impl IntoResponse {
    match st.app.check_store().await {
        Ok(_) => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
                error: None,
            }),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable".into(),
                // What the store said, not only that it failed.
                error: Some(std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string())),
            }),
        ),
    }
}

/// Prometheus metrics.
#[utoipa::path(
    get, path = "/metrics", operation_id = "metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", body = String,
        content_type = "application/openmetrics-text"))
)]
async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let now = st.app.clock.now();
    if let Ok(q) = st.app.queue_stats(now).await {
        st.metrics.queue_depth.set(q.pending as i64);
        st.metrics.queue_held.set(q.held as i64);
        let age = q
            .oldest_due_at
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        st.metrics.oldest_pending_seconds.set(age);
    }
    if let Ok(Some(q)) = st.app.outbound_queue().await {
        let age = q
            .oldest_accepted_at
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        st.metrics.set_outbound_queue(q.depth, age);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
}
