//! Agents shared with other users. The owner shares an agent with another
//! account as viewer (sees it, its live data, history and alert history) or
//! editor (also manages its alert rules). Who may do what:
//!
//! | caller | read routes | rule routes | other changes |
//! | --- | --- | --- | --- |
//! | owner | yes | yes | yes |
//! | editor | yes | yes | 403 |
//! | viewer | yes | 403 | 403 |
//! | anyone else | 404 | 404 | 404 |
//!
//! Read routes take [`VisibleAgent`]; every other agent route keeps
//! [`crate::auth::OwnedAgent`], which answers 403 to someone the agent is
//! shared with (they know it exists) and 404 to everyone else, so a route
//! nobody converted stays owner-only.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use storage::catalog::{AgentRecord, ShareRole};
use storage::model::ShareAccess;

use crate::auth::AuthUser;
use crate::auth::extract::agent_not_found;
use crate::error::ApiError;
use crate::state::AppState;

/// What the caller may do with an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Owner,
    Shared(ShareRole),
}

impl Access {
    pub fn can_manage_rules(self) -> bool {
        matches!(self, Access::Owner | Access::Shared(ShareRole::Editor))
    }
}

pub fn share_access(role: ShareRole) -> ShareAccess {
    match role {
        ShareRole::Viewer => ShareAccess::Viewer,
        ShareRole::Editor => ShareAccess::Editor,
    }
}

pub fn share_role(access: ShareAccess) -> ShareRole {
    match access {
        ShareAccess::Viewer => ShareRole::Viewer,
        ShareAccess::Editor => ShareRole::Editor,
    }
}

/// The refusal for a change by someone the agent is only shared with.
pub fn read_only() -> ApiError {
    ApiError::Forbidden(
        "this agent is shared with you: only its owner can change it (an editor may manage \
         its alert rules)"
            .into(),
    )
}

/// Agent `agent_id` and what `user_id` may do with it; 404 (like a missing
/// agent) when it is neither theirs nor shared with them.
pub async fn access(
    state: &AppState,
    user_id: u64,
    agent_id: u64,
) -> Result<(AgentRecord, Access), ApiError> {
    let found = state
        .catalog(move |c| {
            let Some(agent) = c.agent(agent_id)? else {
                return Ok(None);
            };
            if agent.owner_id == user_id {
                return Ok(Some((agent, Access::Owner)));
            }
            Ok(c.share_role(agent_id, user_id)?
                .map(|role| (agent, Access::Shared(role))))
        })
        .await?;
    found.ok_or_else(agent_not_found)
}

/// The owner of agent `agent_id` if `user_id` may manage its rules (owner
/// or editor); 403 for a viewer, 404 for anyone else.
pub async fn rules_owner(state: &AppState, user_id: u64, agent_id: u64) -> Result<u64, ApiError> {
    let (agent, access) = access(state, user_id, agent_id).await?;
    if access.can_manage_rules() {
        Ok(agent.owner_id)
    } else {
        Err(read_only())
    }
}

/// The agent named in the path, if the caller owns it or it is shared with
/// them (either role): for routes that only read.
#[derive(Debug, Clone)]
pub struct VisibleAgent {
    pub user: AuthUser,
    pub agent: AgentRecord,
    pub access: Access,
}

impl FromRequestParts<AppState> for VisibleAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| agent_not_found())?;
        let id = params
            .iter()
            .find(|(k, _)| *k == "id" || *k == "agent_id")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .ok_or_else(agent_not_found)?;
        VisibleAgent::load(state, user, id).await
    }
}

impl VisibleAgent {
    /// Agent `id` if `user` owns it or it is shared with them; else the
    /// same 404 as a missing agent.
    pub async fn load(state: &AppState, user: AuthUser, id: u64) -> Result<VisibleAgent, ApiError> {
        let (agent, access) = access(state, user.user_id, id).await?;
        Ok(VisibleAgent {
            user,
            agent,
            access,
        })
    }
}
