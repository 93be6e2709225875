//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the JSON API,
//! generated from the code. Every handler carries its `#[utoipa::path]`, and
//! each module registers its routes with `routes!(...)`, which takes method
//! and path from that same attribute: a route cannot exist without its
//! description, nor be described at another path. The bodies' schemas are
//! derived from the model types (`storage` feature `openapi`).

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "StatusMonitor API",
        description = "The JSON API of a StatusMonitor server. Errors are `{ \"error\", \"code\" }` (ErrorBody). \
            Users authenticate with the access token from `POST /api/auth/token` as a bearer token, or with the \
            `sm_access` cookie (then state-changing requests must come from the dashboard's origin); agents with \
            `X-Agent-Token`. The Prometheus exposition `GET /metrics` is outside this API (see docs/api.md)."
    ),
    // Schemas only reached through query parameters (`IntoParams` does not
    // register them).
    components(schemas(
        storage::model::AlertSort,
        storage::model::AlertMetric,
        storage::model::AlertState,
        storage::model::SortOrder,
        storage::model::LiveMessage
    )),
    modifiers(&Security),
    tags(
        (name = "health", description = "Liveness and storage status"),
        (name = "auth", description = "Accounts, log-in, sessions"),
        (name = "users", description = "The logged-in user"),
        (name = "admin", description = "Server settings (admin only)"),
        (name = "agents", description = "Monitored machines and their tokens"),
        (name = "ingest", description = "Reports from agents"),
        (name = "history", description = "Stored metrics over a time range"),
        (name = "containers", description = "What runs on a machine: containers, top processes, systemd services"),
        (name = "live", description = "Live reports over a WebSocket"),
        (name = "rules", description = "Alert rules"),
        (name = "alerts", description = "Alert history and where alerts are sent"),
        (name = "checks", description = "Uptime checks run by the server: HTTP(S), TCP, DNS, ping"),
        (name = "status pages", description = "Public status pages (served at /status/{slug})"),
        (name = "meta", description = "This description")
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("sm_access"))),
        );
        components.add_security_scheme(
            "agent_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Agent-Token"))),
        );
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The whole document (every path under `/api`).
pub fn document() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(super::routes())
        .into_openapi()
}

#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "getOpenApiDocument",
    tag = "meta",
    summary = "This OpenAPI 3.1 description of the JSON API",
    responses((status = 200, description = "The document", content_type = "application/json"))
)]
async fn openapi_json() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| document().to_pretty_json().unwrap_or_default());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json.clone(),
    )
        .into_response()
}
