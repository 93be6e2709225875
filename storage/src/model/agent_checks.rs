//! Checks run by an agent instead of the server: the list an agent fetches
//! (`GET /api/agent/checks`) and the results it sends back in its reports
//! (`check_results` of an [`IngestBatch`](super::wire::IngestBatch)).
//!
//! A result carries up/down, the latency and a short fixed phrase on
//! failure (`HTTP 500`, `timeout`, `keyword not found`): never a response
//! body. The server counts retries, states and alerts as for its own runs.

use serde::{Deserialize, Serialize};

use super::CheckSpec;

/// Most checks one agent runs.
pub const MAX_AGENT_CHECKS: usize = 100;
/// Most check results in one ingest request.
pub const MAX_CHECK_RESULTS: usize = 256;
/// Longest failure phrase of a result, characters.
pub const MAX_CHECK_ERROR_CHARS: usize = 80;
/// Highest latency a result may carry, ms (the longest timeout plus slack).
pub const MAX_CHECK_LATENCY_MS: f64 = 120_000.0;

/// One check an agent runs: its id and whole definition (header values
/// included: the agent sends them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentCheck {
    pub id: u64,
    pub spec: CheckSpec,
}

/// `GET /api/agent/checks`: the enabled checks assigned to the calling
/// agent, and the version the ingest answers announce (`checks_version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentCheckList {
    pub version: String,
    pub checks: Vec<AgentCheck>,
}

/// One run of a check by an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentCheckResult {
    pub check_id: u64,
    /// When the run ended (agent clock, Unix ms).
    pub ts_ms: i64,
    pub ok: bool,
    /// 0 to 120000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Why it failed: a short fixed phrase, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
