//! The JSON API under `/api`. Each area has its own module exposing
//! `router()`; they are merged here, in one place.

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

pub mod accounts;
pub mod admin;
pub mod agent_checks;
pub mod agents;
pub mod alerts;
pub mod auth;
pub mod channels;
pub mod checks;
pub mod containers;
pub mod health;
pub mod history;
pub mod ingest;
pub mod openapi;
pub mod quota;
pub mod recipient;
pub mod rules;
pub mod shares;
pub mod sso;
pub mod status_pages;
pub mod tags;
pub mod two_factor;
pub mod users;
pub mod ws;

/// The API's routes.
///
/// They carry their full paths (`/api/...` in each `#[utoipa::path]`)
/// rather than being nested under `/api`: axum wraps every nested route in
/// a prefix-stripping layer that rebuilds the URI and boxes the service
/// once more on every request. Other paths under `/api` get
/// [`no_such_endpoint`] (registered with the app, in `lib.rs`).
pub fn router() -> Router<AppState> {
    routes().split_for_parts().0
}

/// The answer to a path under `/api` that is no endpoint: a JSON 404 (not
/// the dashboard's HTML one).
pub async fn no_such_endpoint() -> ApiError {
    ApiError::NotFound("no such API endpoint".into())
}

/// Every route of the JSON API with its OpenAPI description; see [`openapi`].
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(agents::router())
        .merge(admin::router())
        .merge(accounts::router())
        .merge(two_factor::router())
        .merge(shares::router())
        .merge(tags::router())
        .merge(sso::router())
        .merge(ingest::router())
        .merge(history::router())
        .merge(containers::router())
        .merge(ws::router())
        .merge(rules::router())
        .merge(alerts::router())
        .merge(recipient::router())
        .merge(checks::router())
        .merge(agent_checks::router())
        .merge(status_pages::router())
        .merge(channels::router())
        .merge(crate::ops::api::router())
        .merge(openapi::router())
}
