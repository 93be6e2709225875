//! Sharing an agent (owner only): `GET/PUT /api/agents/{id}/shares`,
//! `DELETE /api/agents/{id}/shares/{user_id}`. See `crate::sharing` for what
//! a viewer and an editor may do.

use axum::extract::State;
use axum::http::StatusCode;
use storage::catalog::{AgentRecord, ShareRole};
use storage::model::{AgentInfo, AgentShare, ShareAgentRequest, SharedWithMe};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::agents::agent_info;
use crate::auth::{OwnedAgent, SecurityEvent};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::sharing::{share_access, share_role};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, share))
        .routes(routes!(unshare))
}

/// How `agent` (someone else's) is shared with the caller, for `AgentInfo`.
pub async fn shared_info(
    state: &AppState,
    agent: &AgentRecord,
    role: ShareRole,
) -> ApiResult<SharedWithMe> {
    let owner_id = agent.owner_id;
    let owner = state
        .catalog(move |c| c.user(owner_id))
        .await?
        .map(|u| u.username)
        .unwrap_or_default();
    Ok(SharedWithMe {
        owner,
        access: share_access(role),
    })
}

/// The agents others shared with `user_id`, by id, marked `shared`.
pub async fn shared_with_me(
    state: &AppState,
    user_id: u64,
    now_ms: i64,
) -> ApiResult<Vec<AgentInfo>> {
    let found = state
        .catalog(move |c| {
            let mut out = Vec::new();
            for (agent_id, role) in c.shared_with(user_id)? {
                if let Some(agent) = c.agent(agent_id)? {
                    let owner = c
                        .user(agent.owner_id)?
                        .map(|u| u.username)
                        .unwrap_or_default();
                    out.push((agent, role, owner));
                }
            }
            Ok(out)
        })
        .await?;
    Ok(found
        .into_iter()
        .map(|(agent, role, owner)| {
            let mut info = agent_info(&agent, now_ms);
            info.shared = Some(SharedWithMe {
                owner,
                access: share_access(role),
            });
            info
        })
        .collect())
}

async fn shares_of(state: &AppState, agent_id: u64) -> ApiResult<Vec<AgentShare>> {
    state
        .catalog(move |c| {
            let mut out = Vec::new();
            for (user_id, role) in c.shares_of_agent(agent_id)? {
                if let Some(u) = c.user(user_id)? {
                    out.push(AgentShare {
                        user_id,
                        username: u.username,
                        access: share_access(role),
                    });
                }
            }
            Ok(out)
        })
        .await
}

#[utoipa::path(
    get,
    path = "/api/agents/{id}/shares",
    operation_id = "listAgentShares",
    tag = "agents",
    summary = "Who an agent is shared with (owner only)",
    params(("id" = u64, Path, description = "Agent id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::AgentShare>), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Shared with you: only the owner may", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn list(
    State(state): State<AppState>,
    owned: OwnedAgent,
) -> ApiResult<Json<Vec<AgentShare>>> {
    Ok(Json(shares_of(&state, owned.agent.id).await?))
}

#[utoipa::path(
    put,
    path = "/api/agents/{id}/shares",
    operation_id = "shareAgent",
    tag = "agents",
    summary = "Share an agent with another account as viewer or editor (owner only)",
    params(("id" = u64, Path, description = "Agent id")),
    request_body = storage::model::ShareAgentRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::AgentShare>), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Shared with you: only the owner may", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value (yourself, an unknown account)", body = storage::model::ErrorBody))
)]
async fn share(
    State(state): State<AppState>,
    owned: OwnedAgent,
    Json(req): Json<ShareAgentRequest>,
) -> ApiResult<Json<Vec<AgentShare>>> {
    let name = req.username.trim().to_lowercase();
    let lookup = name.clone();
    let Some(target) = state.catalog(move |c| c.user_by_name(&lookup)).await? else {
        return Err(ApiError::Invalid(format!(
            "username: there is no account {name:?}"
        )));
    };
    if target.id == owned.user.user_id {
        return Err(ApiError::Invalid(
            "username: this is your own agent; share it with someone else".into(),
        ));
    }
    let (agent_id, user_id, role) = (owned.agent.id, target.id, share_role(req.access));
    if !state
        .catalog(move |c| c.share_agent(agent_id, user_id, role))
        .await?
    {
        return Err(crate::auth::extract::agent_not_found());
    }
    tracing::info!(agent_id, with = user_id, ?role, "agent shared");
    Ok(Json(shares_of(&state, agent_id).await?))
}

#[utoipa::path(
    delete,
    path = "/api/agents/{id}/shares/{user_id}",
    operation_id = "unshareAgent",
    tag = "agents",
    summary = "Stop sharing an agent with an account (owner only)",
    params(("id" = u64, Path, description = "Agent id"), ("user_id" = u64, Path, description = "The account it is shared with")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "No longer shared"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Shared with you: only the owner may", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not shared with that account)", body = storage::model::ErrorBody))
)]
async fn unshare(
    State(state): State<AppState>,
    owned: OwnedAgent,
    Path((_, user_id)): Path<(u64, u64)>,
) -> ApiResult<StatusCode> {
    let agent_id = owned.agent.id;
    if state
        .catalog(move |c| c.unshare_agent(agent_id, user_id))
        .await?
    {
        // Their live sockets on it close at once.
        state.announce(SecurityEvent::AgentUnshared { agent_id, user_id });
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(
            "this agent is not shared with that account".into(),
        ))
    }
}
