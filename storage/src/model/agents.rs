//! Bodies of the agent API (`/api/agents*`).

use serde::{Deserialize, Serialize};

use super::wire::HostFacts;

/// `POST /api/agents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    /// 1-64 characters after trimming.
    pub name: String,
}

/// `PATCH /api/agents/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentRequest {
    pub name: String,
}

/// The state of an agent's current token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    /// Issued, not used yet; refused after `token_expires_ms`.
    Pending,
    /// Used by an agent: valid until regenerated or the agent is deleted.
    Active,
    /// Not used within five minutes: regenerate it.
    Expired,
}

/// One agent as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentInfo {
    pub id: u64,
    pub name: String,
    pub created_ms: i64,
    pub token_state: TokenState,
    /// When a pending token stops being accepted.
    pub token_expires_ms: Option<i64>,
    /// When the current token was first used.
    pub activated_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// The agent's sampling interval, from its reports.
    pub interval_ms: Option<i64>,
    pub host: Option<HostFacts>,
    /// A report arrived within the last three intervals (5 s when unknown).
    pub online: bool,
    /// Lower-case labels (`home`, `vps`), sorted.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Set when someone else owns the agent and shared it with the caller.
    #[serde(default)]
    pub shared: Option<super::accounts::SharedWithMe>,
    /// The agent program's version, from its reports since the server
    /// started (`User-Agent: statusmonitor-agent/<version>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// `agent_version` is older than the server's: running the install line
    /// again upgrades it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outdated: bool,
}

/// `POST /api/agents` (201) and `POST /api/agents/{id}/regenerate-token`:
/// the token is shown this once and never again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentWithToken {
    pub agent: AgentInfo,
    pub token: String,
    /// The server's `--public-url`, when it has one: the address the
    /// dashboard puts in the install command (else the browser's origin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}
