//! JSON bodies of the HTTP API that more than one crate reads.

use serde::{Deserialize, Serialize};

/// Every 4xx/5xx body: `{ "error": "...", "code": "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
}

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// "ok" when every storage part opened and answers.
    pub status: String,
    pub version: String,
    /// Git revision the binary was built from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub uptime_s: u64,
    pub storage: StorageHealth,
    /// One entry per remote_write endpoint; absent when remote write is off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWriteHealth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageHealth {
    /// "ok" or a short description of what is wrong (the first problem of
    /// `catalog` and `engine`).
    pub status: String,
    pub data_dir: String,
    /// "ok" when a read of the catalog (`catalog.redb`) succeeded, else the error.
    #[serde(default)]
    pub catalog: String,
    /// "ok" when the time-series engine answered, else the error.
    #[serde(default)]
    pub engine: String,
    /// How far the 1-minute aggregates trail the newest closed hour, seconds.
    #[serde(default)]
    pub compactor_lag_s: u64,
    /// Disk space of the time-series store, by part.
    #[serde(default)]
    pub bytes: StorageBytes,
    /// Time series stored (all agents).
    #[serde(default)]
    pub series: u64,
    /// Free bytes (for an unprivileged user) on the data directory's file
    /// system; absent where it cannot be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
}

/// Bytes on disk of the time-series store: each tier's sealed tables, the
/// head (rows not sealed yet), the journal and the index (meta).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageBytes {
    /// 5-second samples.
    pub raw: u64,
    /// 1-minute aggregates.
    pub minute: u64,
    /// 1-hour aggregates.
    pub hour: u64,
    pub head: u64,
    pub journal: u64,
    pub meta: u64,
}

impl StorageBytes {
    /// The whole store.
    pub fn total(&self) -> u64 {
        [
            self.raw,
            self.minute,
            self.hour,
            self.head,
            self.journal,
            self.meta,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b))
    }
}

/// `GET /api/health`: one remote_write endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteWriteHealth {
    /// The URL without credentials or query.
    pub endpoint: String,
    /// "ok", or "retrying: <last error>" while batches wait for the endpoint.
    pub status: String,
    /// Ingest batches waiting in the on-disk queue.
    pub queued_batches: u64,
    /// Their size, uncompressed protobuf.
    pub queued_bytes: u64,
    /// Batches lost: over the queue's bound, or refused for good (4xx).
    pub dropped_batches: u64,
}

/// `POST /api/ingest` (200): the batch is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestAck {
    /// Reports stored from this request.
    pub accepted: usize,
    /// The version of the agent's check list (`GET /api/agent/checks`):
    /// the agent fetches the list when it changes. Older agents ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks_version: Option<String>,
}
