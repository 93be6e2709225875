//! JSON bodies of the HTTP API that more than one crate reads.

use serde::{Deserialize, Serialize};

/// Every 4xx/5xx body: `{ "error": "...", "code": "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
}

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// "ok" when every storage part opened and answers.
    pub status: String,
    pub version: String,
    /// Git revision the binary was built from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub uptime_s: u64,
    pub storage: StorageHealth,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageHealth {
    /// "ok" or a short description of what is wrong.
    pub status: String,
    pub data_dir: String,
}

/// `POST /api/ingest` (200): the batch is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAck {
    /// Reports stored from this request.
    pub accepted: usize,
}
