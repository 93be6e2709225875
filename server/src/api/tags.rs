//! Tags of an agent (owner only): `PUT /api/agents/{id}/tags`. The overview
//! filters and groups agents by them.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use storage::model::AgentInfo;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::agents::agent_info;
use crate::auth::OwnedAgent;
use crate::auth::extract::agent_not_found;
use crate::error::{ApiError, ApiResult, Json};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(set_tags))
}

/// Most tags one agent carries.
pub const MAX_TAGS: usize = 16;
/// Longest tag, in characters.
pub const TAG_MAX_CHARS: usize = 32;

/// `PUT /api/agents/{id}/tags`: the agent's whole set of tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTagsRequest {
    /// Each 1-32 characters of `a-z 0-9 - _ .` (lower-cased); at most 16.
    pub tags: Vec<String>,
}

/// Lower-cases, checks, sorts and de-duplicates `tags`.
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>, ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::Invalid(format!(
            "tags: an agent carries at most {MAX_TAGS} tags"
        )));
    }
    let mut out = Vec::with_capacity(tags.len());
    for tag in tags {
        let t = tag.trim().to_lowercase();
        let len = t.chars().count();
        if !(1..=TAG_MAX_CHARS).contains(&len)
            || !t
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        {
            return Err(ApiError::Invalid(format!(
                "tags: {tag:?} is not a tag: 1 to {TAG_MAX_CHARS} characters, each a letter, \
                 a digit, `-`, `_` or `.`"
            )));
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[utoipa::path(
    put,
    path = "/api/agents/{id}/tags",
    operation_id = "setAgentTags",
    tag = "agents",
    summary = "Replace an agent's tags (owner only)",
    params(("id" = u64, Path, description = "Agent id")),
    request_body = SetTagsRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::AgentInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Shared with you: only the owner may", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn set_tags(
    State(state): State<AppState>,
    owned: OwnedAgent,
    Json(req): Json<SetTagsRequest>,
) -> ApiResult<Json<AgentInfo>> {
    let tags = normalize_tags(&req.tags)?;
    let (owner, id) = (owned.user.user_id, owned.agent.id);
    let agent = state
        .catalog(move |c| c.set_agent_tags(owner, id, tags))
        .await?
        .ok_or_else(agent_not_found)?;
    // Alert rules that target a tag follow the agents that carry it.
    let alerting = state.alerting.clone();
    tokio::task::spawn_blocking(move || alerting.agent_tags_changed(owner))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(agent_info(&agent, state.clock.now_ms())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_lower_cased_sorted_and_unique() {
        let t = |v: &[&str]| normalize_tags(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(t(&["VPS", "home", "vps "]).unwrap(), ["home", "vps"]);
        assert!(t(&[""]).is_err());
        assert!(t(&["a b"]).is_err());
        assert!(t(&["tag:vps"]).is_err());
        assert!(t(&[&"x".repeat(33)]).is_err());
        let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
        assert!(normalize_tags(&many).is_err());
    }
}
