//! The HTTP API of tidings.
//!
//! Handlers are thin: they authenticate, decode, call one use case on
//! [`tidings_core::Tidings`], and encode. Every error leaves through one
//! mapping ([`error::ApiError`]) so each has the same shape —
//! `{"error":{"code","message"}}` — a stable code, and the right status.
//! Request bodies are read with a size cap; JSON with unknown fields is
//! refused rather than silently ignored.

mod auth;
mod domains;
pub mod error;
mod events;
mod idempotent;
mod json;
mod messages;
pub mod openapi;
mod ops;
mod tracking;
mod tracking_settings;
pub mod views;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use tidings_core::metrics::Metrics;
use tidings_core::Tidings;
use utoipa_axum::router::OpenApiRouter;

/// Largest request body the API reads.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub app: Tidings,
    pub metrics: Arc<Metrics>,
}

/// The route table: every route the API serves, each registered with
/// `routes!` so it carries its OpenAPI operation. [`router`] serves these
/// routes and [`openapi::document`] is their collected document; add a
/// route anywhere else and it is neither.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(messages::routes())
        .merge(domains::routes())
        .merge(webhooks::routes())
        .merge(events::routes())
        .merge(tracking_settings::routes())
        .merge(tracking::routes())
        .merge(ops::routes())
        .merge(openapi::routes())
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api().split_for_parts();
    routes
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}
