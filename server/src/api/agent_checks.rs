//! `GET /api/agent/checks`: the uptime checks the calling agent runs
//! (authenticated by its `X-Agent-Token`), with header values, since the
//! agent sends them. The agent asks when the version in an ingest answer
//! (`checks_version`) differs from the list it holds.

use axum::extract::State;
use axum::http::HeaderMap;
use storage::model::AgentCheckList;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, Json};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[utoipa::path(
    get,
    path = "/api/agent/checks",
    operation_id = "agentChecks",
    tag = "ingest",
    summary = "The uptime checks this agent runs (the agent's token)",
    security(("agent_token" = [])),
    responses((status = 200, body = storage::model::AgentCheckList), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody))
)]
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<AgentCheckList>> {
    let token = headers
        .get("x-agent-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "missing X-Agent-Token header: pass the agent's token from the dashboard".into(),
            )
        })?;
    let auth = state.authenticate_agent(token).await?;
    Ok(Json(state.checks.agent_list(auth.agent_id)))
}
