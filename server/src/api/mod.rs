//! The JSON API under `/api`. Each area has its own module exposing
//! `router()`; they are merged here, in one place.

use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

pub mod health;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .fallback(|| async { ApiError::NotFound("no such API endpoint".into()) })
}
