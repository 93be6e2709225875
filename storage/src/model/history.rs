//! Bodies of the history API `/api/history/{agent_id}/{cpu,memory,disk,network,summary}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One point: `[ts_ms, avg, min, max]`. Serialized as a 4-element array.
pub type HistoryPoint = (i64, f64, f64, f64);

/// `GET /api/history/{agent_id}/{cpu,memory,disk,network}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryResponse {
    pub agent_id: u64,
    /// The tier the points came from: `5s`, `1m` or `1h`.
    pub tier: String,
    /// Width of each point's bucket.
    pub interval_ms: i64,
    pub start_ms: i64,
    pub stop_ms: i64,
    pub series: Vec<HistorySeries>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistorySeries {
    /// Engine metric name, e.g. `cpu.total_pct`, `disk.used_bytes`.
    pub metric: String,
    /// e.g. `{ "core": "0" }`, `{ "mount": "/" }`, `{ "iface": "eth0" }`.
    pub labels: BTreeMap<String, String>,
    /// Oldest first. Buckets without data are absent, so a gap means no data.
    /// Each point is `[ts_ms, avg, min, max]`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<f64>>))]
    pub points: Vec<HistoryPoint>,
}

/// `GET /api/history/{agent_id}/summary`: per dashboard metric over the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SummaryResponse {
    pub agent_id: u64,
    pub tier: String,
    pub start_ms: i64,
    pub stop_ms: i64,
    pub metrics: Vec<SummaryMetric>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SummaryMetric {
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub last: f64,
    /// Number of raw samples behind the figures.
    pub count: u64,
}
