//! Bodies of the alerting API: rules (`/api/rules*`), alert history
//! (`/api/alerts`) and notification settings (`/api/recipient*`).
//!
//! Conventions:
//! - comparisons are serialized as `"gt"` / `"lt"`; `">"` and `"<"` are
//!   accepted on input as aliases;
//! - a rule's `label` is the mount (`disk_pct`), interface (`net_rx_bps`,
//!   `net_tx_bps`), sensor (`temperature_c`), container name (`container_*`)
//!   or systemd unit (`service_failed`) it watches. `mount`, `iface`
//!   and `sensor` are accepted as input aliases. When it is absent the rule
//!   watches every mount / interface / sensor of the agent, each with its own
//!   state and cooldown;
//! - `offline` rules have no comparison and no threshold: they fire when the
//!   agent has been silent for longer than `duration_s` (default three of the
//!   agent's intervals).

use serde::{Deserialize, Serialize};

/// Default cooldown between two notifications of one breach (5 minutes).
pub const DEFAULT_COOLDOWN_S: u32 = 300;
/// Shortest accepted `cooldown_s`: a flapping rule notifies at most once a
/// minute. Rules stored before this limit are read with it.
pub const MIN_COOLDOWN_S: u32 = 60;
/// Longest accepted `duration_s` / `cooldown_s` (one week).
pub const MAX_RULE_SECONDS: u32 = 7 * 86_400;
/// Default page size of `GET /api/alerts`.
pub const DEFAULT_ALERT_PAGE: u32 = 50;
/// Largest page size of `GET /api/alerts`.
pub const MAX_ALERT_PAGE: u32 = 1_000;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertMetric {
    /// CPU total, percent (0-100).
    #[serde(rename = "cpu_pct")]
    CpuPct,
    /// Used memory, percent of total.
    #[serde(rename = "memory_pct")]
    MemoryPct,
    /// Used swap, percent of total swap.
    #[serde(rename = "swap_pct")]
    SwapPct,
    /// Used space of a mount, percent (label: mount).
    #[serde(rename = "disk_pct")]
    DiskPct,
    #[serde(rename = "load_1m")]
    Load1m,
    #[serde(rename = "load_5m")]
    Load5m,
    #[serde(rename = "load_15m")]
    Load15m,
    /// Received bytes per second of an interface (label: iface).
    #[serde(rename = "net_rx_bps")]
    NetRxBps,
    /// Sent bytes per second of an interface (label: iface).
    #[serde(rename = "net_tx_bps")]
    NetTxBps,
    /// A temperature sensor, degrees Celsius (label: sensor).
    #[serde(rename = "temperature_c")]
    TemperatureC,
    /// No report for longer than the rule's duration.
    #[serde(rename = "offline")]
    Offline,
    // Appended, never reordered: stored rules and alerts encode the index.
    /// A container is not running (label: container name; absent: any
    /// container). No comparison or threshold.
    #[serde(rename = "container_down")]
    ContainerDown,
    /// A container's health check fails (label: container name). No
    /// comparison or threshold.
    #[serde(rename = "container_unhealthy")]
    ContainerUnhealthy,
    /// Restarts of a container within the rule's duration (the window,
    /// at most the 15 minutes the live buffer keeps), against the threshold.
    #[serde(rename = "container_restarts")]
    ContainerRestarts,
    /// CPU of a container, % of one core.
    #[serde(rename = "container_cpu_pct")]
    ContainerCpuPct,
    /// Memory of a container, % of its limit.
    #[serde(rename = "container_memory_pct")]
    ContainerMemoryPct,
    /// A systemd unit is in the `failed` state (label: unit; absent: any
    /// unit). No comparison or threshold.
    #[serde(rename = "service_failed")]
    ServiceFailed,
    // Uptime checks (`/api/checks/{id}/rules`); appended, so stored rules
    // keep their variant index.
    /// The check is down (after its retries); resolves when it is up.
    #[serde(rename = "check_down")]
    CheckDown,
    /// The check's latency, ms (above the threshold for `duration_s`).
    #[serde(rename = "check_latency_ms")]
    CheckLatencyMs,
    /// Days until the check's HTTPS certificate expires.
    #[serde(rename = "check_cert_days")]
    CheckCertDays,
}

impl AlertMetric {
    pub const ALL: [AlertMetric; 20] = [
        AlertMetric::CpuPct,
        AlertMetric::MemoryPct,
        AlertMetric::SwapPct,
        AlertMetric::DiskPct,
        AlertMetric::Load1m,
        AlertMetric::Load5m,
        AlertMetric::Load15m,
        AlertMetric::NetRxBps,
        AlertMetric::NetTxBps,
        AlertMetric::TemperatureC,
        AlertMetric::Offline,
        AlertMetric::ContainerDown,
        AlertMetric::ContainerUnhealthy,
        AlertMetric::ContainerRestarts,
        AlertMetric::ContainerCpuPct,
        AlertMetric::ContainerMemoryPct,
        AlertMetric::ServiceFailed,
        AlertMetric::CheckDown,
        AlertMetric::CheckLatencyMs,
        AlertMetric::CheckCertDays,
    ];

    /// A metric of uptime checks rather than of agents.
    pub fn is_check(self) -> bool {
        matches!(
            self,
            AlertMetric::CheckDown | AlertMetric::CheckLatencyMs | AlertMetric::CheckCertDays
        )
    }

    /// The name on the wire and in query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertMetric::CpuPct => "cpu_pct",
            AlertMetric::MemoryPct => "memory_pct",
            AlertMetric::SwapPct => "swap_pct",
            AlertMetric::DiskPct => "disk_pct",
            AlertMetric::Load1m => "load_1m",
            AlertMetric::Load5m => "load_5m",
            AlertMetric::Load15m => "load_15m",
            AlertMetric::NetRxBps => "net_rx_bps",
            AlertMetric::NetTxBps => "net_tx_bps",
            AlertMetric::TemperatureC => "temperature_c",
            AlertMetric::Offline => "offline",
            AlertMetric::ContainerDown => "container_down",
            AlertMetric::ContainerUnhealthy => "container_unhealthy",
            AlertMetric::ContainerRestarts => "container_restarts",
            AlertMetric::ContainerCpuPct => "container_cpu_pct",
            AlertMetric::ContainerMemoryPct => "container_memory_pct",
            AlertMetric::ServiceFailed => "service_failed",
            AlertMetric::CheckDown => "check_down",
            AlertMetric::CheckLatencyMs => "check_latency_ms",
            AlertMetric::CheckCertDays => "check_cert_days",
        }
    }

    pub fn parse(text: &str) -> Option<AlertMetric> {
        AlertMetric::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// A short human description for messages and the UI.
    pub fn describe(self) -> &'static str {
        match self {
            AlertMetric::CpuPct => "CPU",
            AlertMetric::MemoryPct => "memory",
            AlertMetric::SwapPct => "swap",
            AlertMetric::DiskPct => "disk",
            AlertMetric::Load1m => "load (1 min)",
            AlertMetric::Load5m => "load (5 min)",
            AlertMetric::Load15m => "load (15 min)",
            AlertMetric::NetRxBps => "network receive",
            AlertMetric::NetTxBps => "network send",
            AlertMetric::TemperatureC => "temperature",
            AlertMetric::Offline => "offline",
            AlertMetric::ContainerDown => "container not running",
            AlertMetric::ContainerUnhealthy => "container unhealthy",
            AlertMetric::ContainerRestarts => "container restarts",
            AlertMetric::ContainerCpuPct => "container CPU",
            AlertMetric::ContainerMemoryPct => "container memory",
            AlertMetric::ServiceFailed => "service failed",
            AlertMetric::CheckDown => "down",
            AlertMetric::CheckLatencyMs => "latency",
            AlertMetric::CheckCertDays => "certificate expiry",
        }
    }

    /// The unit suffix of values and thresholds (`%`, `B/s`, `°C`, `s`, or none).
    pub fn unit(self) -> &'static str {
        match self {
            AlertMetric::CpuPct
            | AlertMetric::MemoryPct
            | AlertMetric::SwapPct
            | AlertMetric::DiskPct => "%",
            AlertMetric::Load1m | AlertMetric::Load5m | AlertMetric::Load15m => "",
            AlertMetric::NetRxBps | AlertMetric::NetTxBps => "B/s",
            AlertMetric::TemperatureC => "°C",
            AlertMetric::Offline => "s",
            AlertMetric::ContainerCpuPct | AlertMetric::ContainerMemoryPct => "%",
            AlertMetric::ContainerDown
            | AlertMetric::ContainerUnhealthy
            | AlertMetric::ContainerRestarts
            | AlertMetric::ServiceFailed => "",
            AlertMetric::CheckDown => "",
            AlertMetric::CheckLatencyMs => "ms",
            AlertMetric::CheckCertDays => "days",
        }
    }

    /// Rules of this metric watch a condition (offline, a container not
    /// running or unhealthy, a failed unit): no comparison, no threshold.
    pub fn is_condition(self) -> bool {
        self.threshold_range().is_none()
    }

    /// The name of the label this metric is split by (`mount`, `iface`,
    /// `sensor`), `None` for whole-machine metrics.
    pub fn label_kind(self) -> Option<&'static str> {
        match self {
            AlertMetric::DiskPct => Some("mount"),
            AlertMetric::NetRxBps | AlertMetric::NetTxBps => Some("iface"),
            AlertMetric::TemperatureC => Some("sensor"),
            AlertMetric::ContainerDown
            | AlertMetric::ContainerUnhealthy
            | AlertMetric::ContainerRestarts
            | AlertMetric::ContainerCpuPct
            | AlertMetric::ContainerMemoryPct => Some("container"),
            AlertMetric::ServiceFailed => Some("unit"),
            _ => None,
        }
    }

    /// The accepted threshold range (inclusive), `None` for `offline`.
    pub fn threshold_range(self) -> Option<(f64, f64)> {
        match self {
            AlertMetric::CpuPct
            | AlertMetric::MemoryPct
            | AlertMetric::SwapPct
            | AlertMetric::DiskPct => Some((0.0, 100.0)),
            AlertMetric::Load1m | AlertMetric::Load5m | AlertMetric::Load15m => Some((0.0, 1.0e6)),
            AlertMetric::NetRxBps | AlertMetric::NetTxBps => Some((0.0, 1.0e15)),
            AlertMetric::TemperatureC => Some((-50.0, 150.0)),
            AlertMetric::ContainerRestarts => Some((0.0, 1.0e6)),
            AlertMetric::ContainerCpuPct => Some((0.0, 100_000.0)),
            AlertMetric::ContainerMemoryPct => Some((0.0, 100.0)),
            AlertMetric::Offline
            | AlertMetric::ContainerDown
            | AlertMetric::ContainerUnhealthy
            | AlertMetric::ServiceFailed => None,
            AlertMetric::CheckDown => None,
            AlertMetric::CheckLatencyMs => Some((0.0, 600_000.0)),
            AlertMetric::CheckCertDays => Some((-3_650.0, 3_650.0)),
        }
    }
}

impl std::fmt::Display for AlertMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `value > threshold` or `value < threshold` (strict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Comparison {
    #[serde(rename = "gt", alias = ">")]
    Gt,
    #[serde(rename = "lt", alias = "<")]
    Lt,
}

impl Comparison {
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Lt => value < threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Gt => ">",
            Comparison::Lt => "<",
        }
    }
}

/// What a rule watches instead of one agent: every agent of the rule's
/// owner carrying `tag`, now and later, each with its own state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleTarget {
    /// An agent tag (`vps`): 1-32 characters of `a-z 0-9 - _ .`.
    pub tag: String,
}

/// One alert rule as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rule {
    pub id: u64,
    /// The agent watched; 0 when the rule has a `target` tag instead.
    pub agent_id: u64,
    /// Set when the rule watches every agent carrying a tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<RuleTarget>,
    pub metric: AlertMetric,
    /// Mount / interface / sensor; `None`: each of them separately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `None` only for `offline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// `None` only for `offline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The condition must hold over this whole window before the rule fires;
    /// for `offline` the silence that counts as offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u32>,
    /// At most one notification per cooldown while the breach lasts.
    pub cooldown_s: u32,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// The labels currently firing (`""` for whole-machine metrics).
    #[serde(default)]
    pub firing: Vec<FiringLabel>,
}

/// One (rule, label) that is currently firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FiringLabel {
    /// The agent, for a rule that targets a tag (each agent has its own
    /// state); absent for a rule on one agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<u64>,
    /// Mount / interface / sensor, `None` for whole-machine metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub since_ms: i64,
    pub last_notified_ms: i64,
    pub value: f64,
}

/// `POST /api/rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRuleRequest {
    /// The agent to watch; give this or `target`, not both.
    #[serde(default)]
    pub agent_id: Option<u64>,
    /// Every agent carrying a tag instead of one agent: `{"tag": "vps"}`.
    #[serde(default)]
    pub target: Option<RuleTarget>,
    pub metric: AlertMetric,
    #[serde(default, alias = "mount", alias = "iface", alias = "sensor")]
    pub label: Option<String>,
    /// Required except for `offline`.
    #[serde(default)]
    pub comparison: Option<Comparison>,
    /// Required except for `offline`.
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub duration_s: Option<u32>,
    /// Default [`DEFAULT_COOLDOWN_S`].
    #[serde(default)]
    pub cooldown_s: Option<u32>,
    /// Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `PATCH /api/rules/{id}`: absent fields are unchanged. To clear an optional
/// field send an empty string (`label`, `name`, `description`) or `0`
/// (`duration_s`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRuleRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<AlertMetric>,
    #[serde(
        default,
        alias = "mount",
        alias = "iface",
        alias = "sensor",
        skip_serializing_if = "Option::is_none"
    )]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `firing` when a rule's condition started to hold (and on each
/// renotification after a cooldown), `resolved` when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// A notification channel's kind. Stored in records (bincode encodes the
/// variant index): new kinds are appended, never inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Telegram,
    Webhook,
    Ntfy,
    Discord,
    Slack,
    Gotify,
    Pushover,
    Matrix,
    Email,
}

/// The outcome of one channel's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Accepted by the channel (2xx).
    Sent,
    /// Every attempt failed, or the channel refused it (4xx).
    Failed,
    /// Still being attempted.
    Pending,
    /// Not configured (no chat id / webhook URL, or no bot token on the server).
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub channel: Channel,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The channel delivered to (answers only; absent for events recorded
    /// before channels had ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<u64>,
    /// Its name now, or when it was deleted the last name it had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
}

/// One entry of the alert history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertEvent {
    pub id: u64,
    pub rule_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    pub agent_id: u64,
    /// The agent's name when the event was recorded.
    pub agent_name: String,
    pub metric: AlertMetric,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub state: AlertState,
    /// The measured value; for `offline` the seconds since the last report.
    pub value: f64,
    /// For `offline` the silence (seconds) that counts as offline.
    pub threshold: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    pub ts_ms: i64,
    pub deliveries: Vec<Delivery>,
}

/// Sort key of `GET /api/alerts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AlertSort {
    #[default]
    Time,
    /// By agent name, then time.
    Agent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    #[default]
    Desc,
    Asc,
}

/// Query of `GET /api/alerts` and `DELETE /api/alerts` (which ignores sort
/// and paging). Times are Unix milliseconds, `since` inclusive, `until`
/// exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<AlertMetric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AlertState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<AlertSort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<SortOrder>,
    /// Default [`DEFAULT_ALERT_PAGE`], at most [`MAX_ALERT_PAGE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// `GET /api/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertPage {
    /// Events matching the filter, before paging.
    pub total: u64,
    pub items: Vec<AlertEvent>,
}

/// `DELETE /api/alerts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertsDeleted {
    pub deleted: u64,
}

/// `GET /api/recipient`: the caller's notification settings. The webhook
/// secret is never returned.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recipient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_chat_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    pub webhook_secret_set: bool,
    /// The server has a Telegram bot token (without it Telegram is skipped).
    pub telegram_configured: bool,
}

/// `POST /api/recipient`: absent fields are unchanged, an empty string clears.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRecipientRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_chat_id: Option<String>,
    /// `http://` or `https://` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Key of the `X-StatusMonitor-Signature` HMAC-SHA256 header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

/// `POST /api/recipient/test`: one entry per channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecipientTestResult {
    pub results: Vec<Delivery>,
}

/// The JSON body POSTed to a user's webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookPayload {
    /// `firing`, `resolved` or `test`.
    pub event: String,
    pub agent: WebhookAgent,
    pub metric: String,
    #[serde(default)]
    pub label: Option<String>,
    pub value: f64,
    pub threshold: f64,
    #[serde(default)]
    pub comparison: Option<Comparison>,
    pub ts_ms: i64,
    /// The agent's page on the dashboard.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<u64>,
    /// The text the Telegram message carries.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookAgent {
    pub id: u64,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_round_trip() {
        for m in AlertMetric::ALL {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(AlertMetric::parse(m.as_str()), Some(m));
        }
    }

    #[test]
    fn comparison_accepts_symbols() {
        let c: Comparison = serde_json::from_str("\">\"").unwrap();
        assert_eq!(c, Comparison::Gt);
        let c: Comparison = serde_json::from_str("\"lt\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"lt\"");
    }

    #[test]
    fn create_accepts_mount_alias() {
        let r: CreateRuleRequest = serde_json::from_str(
            r#"{"agent_id":1,"metric":"disk_pct","mount":"/data","comparison":">","threshold":90}"#,
        )
        .unwrap();
        assert_eq!(r.label.as_deref(), Some("/data"));
        assert_eq!(r.threshold, Some(90.0));
    }
}
