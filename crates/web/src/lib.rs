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
mod json;
mod messages;
mod openapi;
mod ops;
mod tracking;
mod tracking_settings;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use tidings_core::Tidings;
use tidings_delivery::metrics::Metrics;

/// Largest request body the API reads.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub app: Tidings,
    pub metrics: Arc<Metrics>,
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(webhooks::routes())
        .merge(events::routes())
        .merge(messages::routes())
        .merge(domains::routes())
        .merge(tracking::routes())
        .merge(tracking_settings::routes())
        .merge(ops::routes())
        .merge(openapi::routes())
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}
