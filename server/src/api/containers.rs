//! What runs on an agent's machine: `GET /api/agents/{agent_id}/containers`
//! (the newest report's containers with their counts, top processes and
//! systemd services, for the dashboard's tables) and
//! `GET /api/history/{agent_id}/containers` (the container series over a
//! range, all or one container by `?name=`).

use axum::extract::State;
use serde::Deserialize;
use storage::model::{CONTAINER_METRICS, ContainersResponse, HistoryResponse, HistorySeries};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::history::{RangeParams, checked_range, labels, request, run_query};
use crate::auth::extract::AuthUser;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::sharing::VisibleAgent;
use crate::state::AppState;

/// Longest container name (the wire's label bound).
const MAX_NAME: usize = 255;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(containers_now))
        .routes(routes!(container_history))
}

#[utoipa::path(
    get,
    path = "/api/agents/{agent_id}/containers",
    operation_id = "getContainers",
    tag = "containers",
    summary = "What runs on the machine now: containers (with counts), top processes, systemd services",
    params(("agent_id" = u64, Path, description = "Agent id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::ContainersResponse), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn containers_now(
    State(state): State<AppState>,
    owned: VisibleAgent,
) -> ApiResult<Json<ContainersResponse>> {
    let id = owned.agent.id;
    let newest = state.ring.latest(id);
    Ok(Json(ContainersResponse::of(id, newest.as_deref())))
}

/// The range parameters of the history API, and `name`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContainerParams {
    /// One container's series (its name, as the containers table shows
    /// it); all containers when absent.
    pub name: Option<String>,
    pub start: Option<String>,
    pub stop: Option<String>,
    pub interval: Option<String>,
    pub max_points: Option<String>,
    pub tier: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/history/{agent_id}/containers",
    operation_id = "getContainerHistory",
    tag = "containers",
    summary = "Container series over a range: running, restarts, CPU %, memory, network and block I/O, labelled by container name",
    params(("agent_id" = u64, Path, description = "Agent id"), ContainerParams),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::HistoryResponse), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 429, description = "Too many history queries of this user at once", body = storage::model::ErrorBody), (status = 503, description = "The query ran past its time budget, or the server is stopping", body = storage::model::ErrorBody))
)]
async fn container_history(
    State(state): State<AppState>,
    user: AuthUser,
    Path(agent_id): Path<u64>,
    Query(params): Query<ContainerParams>,
) -> ApiResult<Json<HistoryResponse>> {
    let ContainerParams {
        name,
        start,
        stop,
        interval,
        max_points,
        tier,
    } = params;
    if let Some(n) = &name
        && (n.is_empty() || n.len() > MAX_NAME || n.chars().any(char::is_control))
    {
        return Err(ApiError::BadRequest(format!(
            "name: must be 1 to {MAX_NAME} bytes without control characters"
        )));
    }
    let range = checked_range(
        &state,
        &RangeParams {
            start,
            stop,
            interval,
            max_points,
            tier,
        },
    )?;
    let (permit, visible) = crate::api::history::start(&state, user, agent_id).await?;
    let agent_id = visible.agent.id;
    let mut req = request(agent_id, &CONTAINER_METRICS, &range, range.max_points);
    req.label_filter = name.map(|n| ("name".to_owned(), n));
    let result = run_query(&state, permit, req).await?;
    Ok(Json(HistoryResponse {
        agent_id,
        tier: result.tier.to_string(),
        interval_ms: result.interval_ms,
        start_ms: result.start_ms,
        stop_ms: result.stop_ms,
        series: result
            .series
            .iter()
            .map(|s| HistorySeries {
                metric: s.key.metric.clone(),
                labels: labels(&s.key),
                points: s
                    .points
                    .iter()
                    .map(|p| (p.ts_ms, p.avg(), p.min, p.max))
                    .collect(),
            })
            .collect(),
    }))
}
