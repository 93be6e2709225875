//! Bodies of the checks API (`/api/checks*`): uptime checks the server runs
//! against a URL, a TCP port, a DNS name or a host (ping).
//!
//! [`CheckSpec`] is both the request body (create and replace) and, inside
//! the catalog's check record, what is stored: its fields are plain (no
//! serde skips), so bincode reads it back. Header values may be secrets
//! (`Authorization`): they are never sent back; [`CheckInfo`] carries the
//! header names with `value: null`, and a header sent with `value: null`
//! keeps the value stored under that name.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Shortest interval between two runs of a check, seconds.
pub const MIN_CHECK_INTERVAL_S: u32 = 20;
/// Longest interval, seconds (one hour).
pub const MAX_CHECK_INTERVAL_S: u32 = 3_600;
/// Interval when none is given, seconds.
pub const DEFAULT_CHECK_INTERVAL_S: u32 = 60;
/// Timeout of one attempt when none is given, milliseconds.
pub const DEFAULT_CHECK_TIMEOUT_MS: u32 = 10_000;
/// Shortest / longest timeout of one attempt, milliseconds.
pub const MIN_CHECK_TIMEOUT_MS: u32 = 100;
pub const MAX_CHECK_TIMEOUT_MS: u32 = 60_000;
/// Most consecutive failed runs tolerated before a check counts as down.
pub const MAX_CHECK_RETRIES: u32 = 10;
/// Longest keyword, characters.
pub const MAX_KEYWORD_CHARS: usize = 256;
/// Most custom headers of one HTTP check.
pub const MAX_CHECK_HEADERS: usize = 16;

/// What a check probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    /// An HTTP(S) request: `target` is an absolute `http://` or `https://` URL.
    Http,
    /// A TCP connection: `target` is `host:port`.
    Tcp,
    /// A DNS lookup: `target` is a host name.
    Dns,
    /// ICMP echo through an unprivileged ping socket: `target` is a host.
    Ping,
}

/// One custom request header of an HTTP check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckHeader {
    pub name: String,
    /// Never sent back (`null`); `null` on input keeps the stored value.
    #[serde(default)]
    pub value: Option<String>,
}

/// Options of an HTTP check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HttpCheckOptions {
    /// `GET` (default), `HEAD`, `POST`, `PUT`, `DELETE`, `OPTIONS` or `PATCH`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Lowest status that counts as up (default 200).
    #[serde(default = "default_status_min")]
    pub status_min: u16,
    /// Highest status that counts as up (default 399).
    #[serde(default = "default_status_max")]
    pub status_max: u16,
    /// Text that must appear in the body (or must not, with `keyword_absent`).
    #[serde(default)]
    pub keyword: Option<String>,
    /// The keyword must NOT appear.
    #[serde(default)]
    pub keyword_absent: bool,
    /// Follow redirects (default true; each hop passes the outbound guard).
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default)]
    pub headers: Vec<CheckHeader>,
    /// Accept an invalid or self-signed certificate.
    #[serde(default)]
    pub ignore_tls_errors: bool,
}

impl Default for HttpCheckOptions {
    fn default() -> Self {
        HttpCheckOptions {
            method: default_method(),
            status_min: default_status_min(),
            status_max: default_status_max(),
            keyword: None,
            keyword_absent: false,
            follow_redirects: true,
            headers: Vec::new(),
            ignore_tls_errors: false,
        }
    }
}

fn default_method() -> String {
    "GET".into()
}
fn default_status_min() -> u16 {
    200
}
fn default_status_max() -> u16 {
    399
}
fn yes() -> bool {
    true
}
fn default_interval() -> u32 {
    DEFAULT_CHECK_INTERVAL_S
}
fn default_timeout() -> u32 {
    DEFAULT_CHECK_TIMEOUT_MS
}

/// `POST /api/checks`, `PUT /api/checks/{id}`: a whole check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// 1-64 characters.
    pub name: String,
    pub kind: CheckKind,
    /// URL (http), `host:port` (tcp), host name (dns) or host (ping).
    pub target: String,
    /// Seconds between runs, 20 to 3600 (default 60).
    #[serde(default = "default_interval")]
    pub interval_s: u32,
    /// Milliseconds one attempt may take, 100 to 60000 (default 10000).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    /// Failed runs in a row tolerated before the check is down (0-10).
    #[serde(default)]
    pub retries: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Only for `http`; defaults apply when absent.
    #[serde(default)]
    pub http: Option<HttpCheckOptions>,
    /// Only for `dns`: an address the name must resolve to.
    #[serde(default)]
    pub dns_expected: Option<String>,
}

/// `POST /api/checks`, `PUT /api/checks/{id}`: the fields of a
/// [`CheckSpec`] and `runner`, where the check runs. (The server reads
/// `runner` out of the object and the rest as a `CheckSpec`, so unknown
/// fields are still refused.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckRequest {
    #[serde(flatten)]
    pub spec: CheckSpec,
    /// The id of one of your agents that runs the check instead of the
    /// server; absent or `null`: the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<u64>,
}

/// The state of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    /// Not run since it was saved or the server started.
    Pending,
    Up,
    /// Failed more than `retries` runs in a row.
    Down,
    /// Disabled.
    Paused,
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckResult {
    pub ts_ms: i64,
    pub ok: bool,
    /// Time to the answer (HTTP: the whole response; TCP: connect; DNS:
    /// lookup; ping: echo round trip).
    pub latency_ms: Option<f64>,
    /// A fixed phrase (`HTTP 500`, `timeout`, `keyword not found`,
    /// `refused by the outbound guard: loopback address`): never text the
    /// target sent.
    pub error: Option<String>,
    /// HTTPS: days until the server's certificate expires (negative: expired).
    pub cert_days: Option<f64>,
}

/// One check as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckInfo {
    pub id: u64,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// What was saved; header values are `null`.
    pub spec: CheckSpec,
    /// The agent that runs the check; `null`: the server.
    #[serde(default)]
    pub runner: Option<u64>,
    /// `pending` also while the agent that runs the check sends no results
    /// (offline): its state is unknown then, not down.
    pub state: CheckState,
    /// Since when the check is in `state` (unknown after a restart until
    /// the state changes: the time of the first run then).
    pub state_since_ms: Option<i64>,
    /// Failed runs in a row.
    pub failures: u32,
    pub last: Option<CheckResult>,
    /// Percent of runs up over the last 24 hours / 30 days (`null`: no runs).
    pub uptime_24h: Option<f64>,
    pub uptime_30d: Option<f64>,
    /// Only in `GET /api/checks?days=N`: percent up per UTC day for the
    /// last N days (at most 90), oldest first, today last; `null` for a day
    /// without runs (the values of `/api/checks/{id}/uptime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<Option<f64>>>,
}

/// `GET /api/checks/{id}/uptime`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckUptime {
    /// Percent of runs up; `null` where there were no runs.
    pub h24: Option<f64>,
    pub d7: Option<f64>,
    pub d30: Option<f64>,
    pub y1: Option<f64>,
    /// The last 90 UTC days, oldest first: percent up per day.
    pub days: Vec<Option<f64>>,
    /// Start of the first of `days`.
    pub days_start_ms: i64,
}

/// A state change of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckEvent {
    pub ts_ms: i64,
    /// `up` or `down`.
    pub state: CheckState,
    /// Why it went down (a fixed phrase).
    pub error: Option<String>,
    /// How long the previous state lasted, when known.
    pub previous_ms: Option<i64>,
}

/// One bucket of `GET /api/checks/{id}/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckPoint {
    pub ts_ms: i64,
    /// Average latency of the bucket's runs, ms.
    pub latency_ms: Option<f64>,
    /// Percent of the bucket's runs that were up.
    pub up_pct: Option<f64>,
}

/// `GET /api/checks/{id}/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckHistory {
    pub start_ms: i64,
    pub stop_ms: i64,
    pub interval_ms: i64,
    pub points: Vec<CheckPoint>,
}

/// `POST /api/checks/{id}/rules`: an alert rule on the check. `check_down`
/// takes no comparison or threshold; `check_latency_ms` fires when the
/// latency is `gt` the threshold for `duration_s`; `check_cert_days` when
/// the days left are `lt` the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckRuleRequest {
    pub metric: super::AlertMetric,
    #[serde(default)]
    pub comparison: Option<super::Comparison>,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub duration_s: Option<u32>,
    #[serde(default)]
    pub cooldown_s: Option<u32>,
    #[serde(default)]
    pub name: Option<String>,
}

/// What a status page item shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StatusItemKind {
    Check,
    Agent,
}

/// One line of a status page: a check or an agent of the page's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusItem {
    pub kind: StatusItemKind,
    pub id: u64,
    /// The name shown (default: the check's or agent's name).
    #[serde(default)]
    pub label: Option<String>,
    /// Show the check's target (URL, host) on the page.
    #[serde(default)]
    pub show_target: bool,
    /// Agents: show CPU and memory.
    #[serde(default)]
    pub show_metrics: bool,
}

/// A titled group of items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusSection {
    pub title: String,
    pub items: Vec<StatusItem>,
}

/// A scheduled maintenance window: the page says so, and the alerts of the
/// page's items do not fire during it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    pub title: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// `POST /api/status-pages`, `PUT /api/status-pages/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusPageSpec {
    /// The page's address: `/status/{slug}`; 1-48 of `a-z 0-9 -`.
    pub slug: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub sections: Vec<StatusSection>,
    #[serde(default)]
    pub maintenance: Vec<MaintenanceWindow>,
    /// Only with the secret link (`?key=`), shown once when made private.
    #[serde(default)]
    pub private: bool,
}

/// One update of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IncidentUpdate {
    pub ts_ms: i64,
    pub message: String,
}

/// An incident shown on a status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    pub id: u64,
    pub title: String,
    pub created_ms: i64,
    pub resolved_ms: Option<i64>,
    pub updates: Vec<IncidentUpdate>,
}

/// `POST /api/status-pages/{id}/incidents` (a new incident: `title`
/// required) and `POST /api/status-pages/{id}/incidents/{incident}` (an
/// update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IncidentRequest {
    #[serde(default)]
    pub title: Option<String>,
    pub message: String,
    #[serde(default)]
    pub resolved: bool,
}

/// A status page as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusPageInfo {
    pub id: u64,
    pub spec: StatusPageSpec,
    pub incidents: Vec<Incident>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// A private page's secret link key, only in the answer that made it.
    pub key: Option<String>,
}

impl CheckSpec {
    /// Time between two runs.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.interval_s.max(1)))
    }

    /// How long one run may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms.max(1)))
    }
}

/// When a check runs within its interval, the same for the server's
/// scheduler and an agent's, so a check keeps its place wherever it runs.
pub mod schedule {
    use std::ops::{Add, Sub};
    use std::time::Duration;

    /// The phase of check `id` within an interval: spread by a
    /// multiplicative hash, so consecutive ids land far apart.
    pub fn phase(id: u64, interval: Duration) -> Duration {
        let ms = interval.as_millis().max(1) as u64;
        Duration::from_millis(id.wrapping_mul(0x9E37_79B9_7F4A_7C15) % ms)
    }

    /// The first slot of check `id` after `now`. Slots are
    /// `anchor + phase + k * interval`, so each check keeps its own place in
    /// the interval whenever it was created (checks created together do not
    /// run together). `I` is an instant: `std`'s on the agent, tokio's on
    /// the server.
    pub fn next_slot<I>(anchor: I, id: u64, interval: Duration, now: I) -> I
    where
        I: Copy + Ord + Add<Duration, Output = I> + Sub<Output = Duration>,
    {
        let first = anchor + phase(id, interval);
        if now < first {
            return first;
        }
        let k = (now - first).as_nanos() / interval.as_nanos().max(1) + 1;
        first + interval.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::time::Instant;

        #[test]
        fn slots_keep_their_phase_and_spread_over_the_interval() {
            let anchor = Instant::now();
            let iv = Duration::from_secs(60);
            let now = anchor + Duration::from_secs(1_000);
            let mut seconds = std::collections::BTreeSet::new();
            for id in 1..=1_000u64 {
                let slot = next_slot(anchor, id, iv, now);
                assert!(slot > now && slot <= now + iv);
                assert_eq!(
                    (slot - anchor).as_millis() % 60_000,
                    phase(id, iv).as_millis()
                );
                seconds.insert((slot - now).as_secs());
            }
            // A thousand checks land in (nearly) every second of the minute.
            assert!(seconds.len() >= 55, "{}", seconds.len());
        }
    }
}
