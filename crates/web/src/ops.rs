//! Health and Prometheus metrics. Neither needs a key: operators scrape
//! them from inside their network.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
}

async fn health(State(st): State<AppState>) -> impl IntoResponse {
    match st.app.store.next_due().await {
        Ok(_) => (axum::http::StatusCode::OK, Json(json!({"status": "ok"}))),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": e.to_string()})),
        ),
    }
}

async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let now = st.app.clock.now();
    if let Ok(q) = st.app.store.queue_stats(now).await {
        st.metrics.queue_depth.set(q.pending as i64);
        st.metrics.queue_held.set(q.held as i64);
        let age = q
            .oldest_due_at
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        st.metrics.oldest_pending_seconds.set(age);
    }
    if let Ok(store) = st.app.messages() {
        if let Ok(q) = store.outbound_queue().await {
            let age = q
                .oldest_accepted_at
                .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            st.metrics.set_outbound_queue(q.depth, age);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
}
