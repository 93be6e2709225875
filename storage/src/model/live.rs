//! Messages of the live WebSocket `/api/ws/{agent_id}` (server → browser),
//! JSON text frames tagged by `type`.

use serde::{Deserialize, Serialize};

use super::wire::Report;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage {
    /// Sent first, and again whenever the client fell behind: the agent's
    /// recent reports (oldest first, up to the ring buffer's 15 minutes).
    Snapshot { agent_id: u64, reports: Vec<Report> },
    /// One report, as soon as it was ingested.
    Report { agent_id: u64, report: Box<Report> },
    /// The server ends the stream (agent deleted, session revoked, shutdown).
    Closed { reason: String },
}
