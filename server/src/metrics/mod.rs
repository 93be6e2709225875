//! `GET /metrics`: the Prometheus text exposition (format 0.0.4) of every
//! agent's latest values and of the server's own health, for a Prometheus,
//! VictoriaMetrics or Grafana Agent scrape.
//!
//! Off unless `metrics = true`; then it needs `Authorization: Bearer
//! <metrics_token>`. Disabled answers 404, a missing or wrong token 401.
//!
//! The agents' values come from the ring buffer (each agent's newest report,
//! at most 15 minutes old), so a scrape never reads the disk for them; names
//! and labels are in [`names`]. The server's own metrics live in
//! [`ServerMetrics`], updated where things happen (ingest, notifications,
//! remote write) or read at scrape time (storage sizes, WebSocket clients).

pub mod names;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::get};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use storage::model::report_samples;

use crate::config::{Config, Secret};
use crate::error::ApiError;
use crate::metrics::names::{AgentLabels, PromMetric, series_labels};
use crate::state::AppState;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// The server's own counters and histograms, registered once.
pub struct ServerMetrics {
    registry: Registry,
    /// `POST /api/ingest` answers by status code.
    ingest_requests: Family<[(&'static str, u16); 1], Counter>,
    /// Reports stored by accepted ingest requests.
    pub ingest_reports: Counter,
    /// Time to answer `POST /api/ingest`.
    ingest_duration: Histogram,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMetrics").finish_non_exhaustive()
    }
}

impl Default for ServerMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let ingest_requests = Family::default();
        registry.register(
            "statusmonitor_server_ingest_requests",
            "Answers to POST /api/ingest, by HTTP status code",
            ingest_requests.clone(),
        );
        let ingest_reports = Counter::default();
        registry.register(
            "statusmonitor_server_ingest_reports",
            "Reports stored from agents",
            ingest_reports.clone(),
        );
        // 0.5 ms .. 4 s.
        let ingest_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "statusmonitor_server_ingest_duration_seconds",
            "Time to answer POST /api/ingest",
            ingest_duration.clone(),
        );
        ServerMetrics {
            registry,
            ingest_requests,
            ingest_reports,
            ingest_duration,
        }
    }
}

/// Refuses settings that cannot work: metrics on without a (long enough)
/// token.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    if config.metrics {
        match &config.metrics_token {
            None => anyhow::bail!(
                "metrics_token: /metrics is on (metrics = true) but has no scrape token; set one of at least 16 characters"
            ),
            Some(t) if t.expose().len() < 16 => {
                anyhow::bail!("metrics_token must be at least 16 characters")
            }
            Some(_) => {}
        }
    }
    Ok(())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

impl ServerMetrics {
    /// Counts one answer to `POST /api/ingest` and the time it took since `start`.
    pub fn observe_ingest(&self, start: Instant, status: StatusCode) {
        self.ingest_duration.observe(start.elapsed().as_secs_f64());
        self.ingest_requests
            .get_or_create(&[("code", status.as_u16())])
            .inc();
    }
}

/// Compares in constant time (over the hashes), so the answer time tells
/// nothing about the token.
fn token_matches(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !state.config.metrics {
        return Err(ApiError::NotFound(
            "metrics are off: start the server with --metrics and --metrics-token".into(),
        ));
    }
    let expected = state
        .config
        .metrics_token
        .as_ref()
        .map(Secret::expose)
        .unwrap_or_default();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if !expected.is_empty() && token_matches(t, expected) => {}
        Some(_) => {
            return Err(unauthorized("wrong scrape token"));
        }
        None => {
            return Err(unauthorized(
                "missing scrape token: send Authorization: Bearer <metrics_token>",
            ));
        }
    }
    let text = tokio::task::spawn_blocking(move || render(&state))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
        )],
        text,
    )
        .into_response())
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::Unauthorized(msg.to_string())
}

/// The whole exposition. Blocking: reads the catalog and engine statistics.
pub fn render(state: &AppState) -> anyhow::Result<String> {
    let mut out = String::with_capacity(16 << 10);
    prometheus_text::encode(&mut out, &state.metrics.registry)?;
    prometheus_text::encode(&mut out, &scrape_time_registry(state)?)?;
    Ok(out)
}

/// What is read at scrape time: agents' latest values, storage, clients.
fn scrape_time_registry(state: &AppState) -> anyhow::Result<Registry> {
    let mut registry = Registry::default();

    // The agents' newest values, one family per exported metric.
    let mut families: BTreeMap<usize, Family<Labels, FloatGauge>> = BTreeMap::new();
    let last_report = Family::<Labels, FloatGauge>::default();
    for agent_id in state.engine().agents() {
        let Some(report) = state.ring.latest(agent_id) else {
            continue;
        };
        let Some(record) = state.catalog.agent(agent_id)? else {
            continue; // deleted a moment ago
        };
        let who = AgentLabels {
            agent_id,
            agent: record.name,
            host: record.host.map(|h| h.hostname).unwrap_or_default(),
        };
        last_report
            .get_or_create(&vec![
                ("agent".to_string(), who.agent.clone()),
                ("agent_id".to_string(), agent_id.to_string()),
                ("host".to_string(), who.host.clone()),
            ])
            .set(report.ts_ms as f64 / 1000.0);
        for (key, value) in report_samples(&report) {
            let Some((metric, labels)) = series_labels(&who, &key) else {
                continue;
            };
            let index = names::TABLE
                .iter()
                .position(|(_, m)| m.name == metric.name)
                .unwrap_or(usize::MAX);
            families
                .entry(index)
                .or_default()
                .get_or_create(&labels)
                .set(value * metric.scale);
        }
    }
    registry.register(
        "statusmonitor_last_report_timestamp_seconds",
        "When the agent's newest report was taken (agent clock, Unix time)",
        last_report,
    );
    for (index, family) in families {
        let Some((_, PromMetric { name, help, .. })) = names::TABLE.get(index) else {
            continue;
        };
        registry.register(*name, *help, family);
    }

    // The server itself.
    let info = Family::<Labels, Gauge>::default();
    info.get_or_create(&vec![(
        "version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    )])
    .set(1);
    registry.register(
        "statusmonitor_server_build_info",
        "Always 1; the label says which version runs",
        info,
    );
    let uptime = FloatGauge::default();
    uptime.set(state.started.elapsed().as_secs_f64());
    registry.register(
        "statusmonitor_server_uptime_seconds",
        "Time since the server started",
        uptime,
    );
    let clients = Gauge::<i64>::default();
    clients.set(i64::try_from(state.fanout.subscribers()).unwrap_or(i64::MAX));
    registry.register(
        "statusmonitor_server_websocket_clients",
        "Open live WebSocket connections (dashboard tabs)",
        clients,
    );

    let stats = state.engine().stats();
    let storage = Family::<Labels, Gauge>::default();
    let tiers = [
        ("raw", stats.tier_bytes[0]),
        ("1m", stats.tier_bytes[1]),
        ("1h", stats.tier_bytes[2]),
        ("head", stats.head_bytes),
        ("meta", stats.meta_bytes),
        ("journal", stats.journal_bytes),
    ];
    for (tier, bytes) in tiers {
        storage
            .get_or_create(&vec![("tier".to_string(), tier.to_string())])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    registry.register(
        "statusmonitor_server_storage_bytes",
        "Disk space of the time-series store by tier (raw 5 s, 1 m and 1 h aggregates) and part",
        storage,
    );
    let series = Gauge::<i64>::default();
    series.set(i64::try_from(stats.series).unwrap_or(i64::MAX));
    registry.register(
        "statusmonitor_server_series",
        "Time series stored (all agents)",
        series,
    );
    let lag = FloatGauge::default();
    lag.set(stats.compactor_lag_ms.max(0) as f64 / 1000.0);
    registry.register(
        "statusmonitor_server_compactor_lag_seconds",
        "How far the 1-minute aggregates trail the newest closed hour",
        lag,
    );
    let dropped = Counter::<u64>::default();
    dropped.inc_by(stats.dropped_samples);
    registry.register(
        "statusmonitor_server_dropped_samples",
        "Samples refused by the store (older than what was already sealed)",
        dropped,
    );

    let deliveries = Family::<Labels, Counter>::default();
    let (sent, failed) = state.alerting.notifier().delivery_counts();
    deliveries
        .get_or_create(&vec![("status".to_string(), "sent".to_string())])
        .inc_by(sent);
    deliveries
        .get_or_create(&vec![("status".to_string(), "failed".to_string())])
        .inc_by(failed);
    registry.register(
        "statusmonitor_server_alert_deliveries",
        "Alert notifications (Telegram, webhook) by outcome, after retries",
        deliveries,
    );

    state.remote_write.register_metrics(&mut registry);
    Ok(registry)
}
