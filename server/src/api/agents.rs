//! Agents of the caller: `/api/agents`, `/api/agents/{id}`,
//! `/api/agents/{id}/regenerate-token`. Every `{id}` route goes through
//! [`OwnedAgent`], so someone else's agent is a 404 like a missing one.

use axum::extract::State;
use axum::http::StatusCode;
use storage::catalog::{AgentRecord, TokenStatus};
use storage::model::{
    AgentInfo, AgentWithToken, CreateAgentRequest, TokenState, UpdateAgentRequest,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::agent_not_found;
use crate::auth::tokens::{AGENT_TOKEN_PREFIX, hash_token, new_token};
use crate::auth::{AuthUser, OwnedAgent, SecurityEvent};
use crate::error::{ApiError, ApiResult, Json};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, rename, remove))
        .routes(routes!(regenerate))
}

/// Interval assumed before an agent has said its own.
const DEFAULT_INTERVAL_MS: i64 = 5_000;
const NAME_MAX: usize = 64;

/// The API view of `r` at `now_ms`.
pub fn agent_info(r: &AgentRecord, now_ms: i64) -> AgentInfo {
    let (token_state, token_expires_ms) = match r.token_status(now_ms) {
        TokenStatus::Pending { expires_ms } => (TokenState::Pending, Some(expires_ms)),
        TokenStatus::Active => (TokenState::Active, None),
        TokenStatus::Expired => (TokenState::Expired, None),
    };
    let interval = r
        .interval_ms
        .filter(|i| *i > 0)
        .unwrap_or(DEFAULT_INTERVAL_MS);
    AgentInfo {
        id: r.id,
        name: r.name.clone(),
        created_ms: r.created_ms,
        token_state,
        token_expires_ms,
        activated_ms: r.activated_ms,
        last_seen_ms: r.last_seen_ms,
        interval_ms: r.interval_ms,
        host: r.host.clone().map(Into::into),
        online: r
            .last_seen_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < interval.saturating_mul(3)),
        tags: r.tags.clone(),
        shared: None,
        // Live state, filled by `with_version`.
        agent_version: None,
        outdated: false,
    }
}

/// [`agent_info`] with the version of the agent program (live state).
fn with_version(state: &AppState, r: &AgentRecord, now_ms: i64) -> AgentInfo {
    state.agent_versions.annotate(agent_info(r, now_ms))
}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::Invalid(format!(
            "name must have 1 to {NAME_MAX} characters and no control characters"
        )));
    }
    if let Some(problem) = crate::text::hidden_problem(name) {
        return Err(ApiError::Invalid(format!("name: {problem}")));
    }
    Ok(name.to_string())
}

#[utoipa::path(
    get,
    path = "/api/agents",
    operation_id = "listAgents",
    tag = "agents",
    summary = "Your agents",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::AgentInfo>), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody))
)]
async fn list(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<Vec<AgentInfo>>> {
    let owner = user.user_id;
    let agents = state.catalog(move |c| c.agents_of(owner)).await?;
    let now = state.clock.now_ms();
    let mut list: Vec<AgentInfo> = agents
        .iter()
        .map(|a| with_version(&state, a, now))
        .collect();
    // Then the agents others shared with the caller, marked as such.
    list.extend(crate::api::shares::shared_with_me(&state, owner, now).await?);
    Ok(Json(list))
}

#[utoipa::path(
    post,
    path = "/api/agents",
    operation_id = "createAgent",
    tag = "agents",
    summary = "Create an agent; the answer holds its token, shown once",
    request_body = storage::model::CreateAgentRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = storage::model::AgentWithToken), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<CreateAgentRequest>,
) -> ApiResult<(StatusCode, Json<AgentWithToken>)> {
    let name = check_name(&req.name)?;
    let token = new_token(AGENT_TOKEN_PREFIX);
    let hash = hash_token(&token);
    let now = state.clock.now_ms();
    let owner = user.user_id;
    let max = state.config.max_agents_per_user;
    let admin = crate::api::quota::is_admin(&state, owner).await?;
    let _creating = state.quota.creating().await;
    let agent = state
        .catalog(move |c| {
            if !admin {
                let count = c.agents_of(owner)?.len();
                if let Err(e) =
                    crate::api::quota::check_room("max_agents_per_user", "agents", count, max)
                {
                    return Ok(Err(e));
                }
            }
            c.create_agent(owner, &name, &hash, now).map(Ok)
        })
        .await??;
    tracing::info!(agent_id = agent.id, owner_id = owner, "agent created");
    Ok((
        StatusCode::CREATED,
        Json(AgentWithToken {
            agent: agent_info(&agent, now),
            token,
            public_url: state.config.public_url.clone(),
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/api/agents/{id}",
    operation_id = "getAgent",
    tag = "agents",
    summary = "One agent",
    params(("id" = u64, Path, description = "Agent id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::AgentInfo), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn one(
    State(state): State<AppState>,
    visible: crate::sharing::VisibleAgent,
) -> ApiResult<Json<AgentInfo>> {
    let mut info = with_version(&state, &visible.agent, state.clock.now_ms());
    if let crate::sharing::Access::Shared(role) = visible.access {
        info.shared = Some(crate::api::shares::shared_info(&state, &visible.agent, role).await?);
    }
    Ok(Json(info))
}

#[utoipa::path(
    patch,
    path = "/api/agents/{id}",
    operation_id = "renameAgent",
    tag = "agents",
    summary = "Rename an agent",
    params(("id" = u64, Path, description = "Agent id")),
    request_body = storage::model::UpdateAgentRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::AgentInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn rename(
    State(state): State<AppState>,
    owned: OwnedAgent,
    Json(req): Json<UpdateAgentRequest>,
) -> ApiResult<Json<AgentInfo>> {
    let name = check_name(&req.name)?;
    let (owner, id) = (owned.user.user_id, owned.agent.id);
    let agent = state
        .catalog(move |c| c.rename_agent(owner, id, &name))
        .await?
        .ok_or_else(agent_not_found)?;
    Ok(Json(with_version(&state, &agent, state.clock.now_ms())))
}

#[utoipa::path(
    delete,
    path = "/api/agents/{id}",
    operation_id = "deleteAgent",
    tag = "agents",
    summary = "Delete an agent with all its data",
    params(("id" = u64, Path, description = "Agent id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn remove(State(state): State<AppState>, owned: OwnedAgent) -> ApiResult<StatusCode> {
    if state
        .delete_agent(owned.user.user_id, owned.agent.id)
        .await?
    {
        tracing::info!(agent_id = owned.agent.id, "agent deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(agent_not_found())
    }
}

#[utoipa::path(
    post,
    path = "/api/agents/{id}/regenerate-token",
    operation_id = "regenerateAgentToken",
    tag = "agents",
    summary = "Replace the agent token; the old one stops working",
    params(("id" = u64, Path, description = "Agent id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::AgentWithToken), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn regenerate(
    State(state): State<AppState>,
    owned: OwnedAgent,
) -> ApiResult<Json<AgentWithToken>> {
    let token = new_token(AGENT_TOKEN_PREFIX);
    let hash = hash_token(&token);
    let now = state.clock.now_ms();
    let (owner, id) = (owned.user.user_id, owned.agent.id);
    let agent = state
        .catalog(move |c| c.regenerate_agent_token(owner, id, &hash, now))
        .await?
        .ok_or_else(agent_not_found)?;
    state.announce(SecurityEvent::AgentTokenRevoked { agent_id: id });
    tracing::info!(agent_id = id, "agent token regenerated");
    Ok(Json(AgentWithToken {
        agent: agent_info(&agent, now),
        token,
        public_url: state.config.public_url.clone(),
    }))
}
