//! The JSON API under `/api`. Each area has its own module exposing
//! `router()`; they are merged here, in one place.

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

pub mod admin;
pub mod agents;
pub mod alerts;
pub mod auth;
pub mod health;
pub mod history;
pub mod ingest;
pub mod openapi;
pub mod recipient;
pub mod rules;
pub mod users;
pub mod ws;

pub fn router() -> Router<AppState> {
    let (router, _) = routes().split_for_parts();
    router.fallback(|| async { ApiError::NotFound("no such API endpoint".into()) })
}

/// Every route of the JSON API (relative to `/api`) with its OpenAPI
/// description; see [`openapi`].
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(agents::router())
        .merge(admin::router())
        .merge(ingest::router())
        .merge(history::router())
        .merge(ws::router())
        .merge(rules::router())
        .merge(alerts::router())
        .merge(recipient::router())
        .merge(crate::ops::api::router())
        .merge(openapi::router())
}
