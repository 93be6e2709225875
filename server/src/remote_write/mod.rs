//! Remote write: every ingested sample is copied, with Prometheus remote_write
//! 1.0 (snappy-compressed protobuf `WriteRequest`), to each configured
//! endpoint (VictoriaMetrics, Mimir, Thanos receive, Prometheus with
//! `--web.enable-remote-write-receiver`).
//!
//! Ingest only hands the accepted batch over ([`AppState::ingested`]: a
//! non-blocking channel send), so an endpoint never slows it. One encoder
//! thread turns batches into `WriteRequest`s (names and labels as in
//! [`crate::metrics::names`]) and appends them to each endpoint's on-disk
//! [`queue::Queue`]; one sender thread per endpoint sends the oldest queued
//! batches (up to 1 MiB per request) and removes them once the endpoint
//! answered 2xx. Failures (connection, timeout, 5xx, 429) are retried with
//! the shared backoff (full jitter under a ceiling of 0.25 s doubling to
//! 30 s, [`storage::model::retry`]) for as long as it takes; a
//! 4xx other than 429 means the endpoint will never take that data (the
//! protocol says not to retry), so it is logged, counted and dropped (after a
//! refusal of several batches sent together, they are sent again one by one,
//! so only the refused batch is dropped).
//!
//! The queue lives in `DATA_DIR/remote_write/` and survives restarts; each
//! endpoint's queue is named by a hash of its URL, so the backlog stays with
//! its endpoint when the list changes, and queues of endpoints no longer
//! configured are deleted at start.

pub mod proto;
pub mod queue;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use prost::Message;
use sha2::{Digest, Sha256};
use storage::catalog::Catalog;
use storage::model::retry::{Backoff, worth_retrying};
use storage::model::wire::{HostFacts, Report};
use storage::model::{RemoteWriteHealth, SeriesKey, report_samples};

use crate::config::Config;
use crate::metrics::names::{AgentLabels, series_labels};
use crate::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use crate::remote_write::queue::Queue;
use crate::state::AppState;

/// Batches waiting for the encoder; past this ingest does not wait, the batch
/// is counted as dropped (the encoder only falls this far behind when the
/// disk does).
const CHANNEL_BATCHES: usize = 10_000;
/// Largest uncompressed body of one request.
const MAX_REQUEST_BYTES: usize = 1 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often an idle sender looks at its queue.
const POLL: Duration = Duration::from_millis(200);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Agent names and hostnames are looked up again after this long.
const LABELS_TTL: Duration = Duration::from_secs(30);

/// Checks the remote-write settings: URLs must parse as http(s) URLs with a
/// host, the queue bound sensible.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    for url in &config.remote_write_urls {
        let parsed = url::Url::parse(url).map_err(|e| {
            anyhow::anyhow!(
                "remote_write_url {:?} is not a valid URL: {e}",
                redact_url(url)
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            anyhow::bail!(
                "remote_write_url {:?} must be an http:// or https:// URL with a host",
                redact_url(url)
            );
        }
    }
    if config.remote_write_queue_bytes < (1 << 20) {
        anyhow::bail!("remote_write_queue_bytes must be at least 1048576 (1 MiB)");
    }
    Ok(())
}

/// An accepted batch on its way to the encoder.
struct Batch {
    agent_id: u64,
    host: Option<String>,
    reports: Vec<Report>,
}

/// One endpoint: its queue and what happened to it.
pub struct Endpoint {
    url: String,
    /// `url` without credentials or query, for labels, logs and health.
    pub label: String,
    queue: Queue,
    sent_batches: AtomicU64,
    failed_attempts: AtomicU64,
    rejected_batches: AtomicU64,
    last_error: Mutex<Option<String>>,
}

pub struct RemoteWrite {
    endpoints: Vec<Arc<Endpoint>>,
    tx: Mutex<Option<SyncSender<Batch>>>,
    /// Batches the encoder could not keep up with.
    overflow: AtomicU64,
    stop: Arc<Stopper>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for RemoteWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWrite")
            .field(
                "endpoints",
                &self.endpoints.iter().map(|e| &e.label).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl RemoteWrite {
    /// Opens the queues in `data_dir/remote_write` and starts the threads;
    /// without endpoints it does nothing (and creates nothing).
    pub fn start(
        config: &Config,
        data_dir: &Path,
        catalog: Arc<Catalog>,
    ) -> anyhow::Result<RemoteWrite> {
        let mut rw = RemoteWrite {
            endpoints: Vec::new(),
            tx: Mutex::new(None),
            overflow: AtomicU64::new(0),
            stop: Arc::new(Stopper::default()),
            threads: Mutex::new(Vec::new()),
        };
        if config.remote_write_urls.is_empty() {
            return Ok(rw);
        }
        let dir = data_dir.join("remote_write");
        let db = fjall::Database::builder(&dir)
            .open()
            .with_context(|| format!("cannot open the remote-write queue {}", dir.display()))?;
        let mut wanted = Vec::new();
        for url in &config.remote_write_urls {
            let name = queue_name(url);
            if wanted.contains(&name) {
                continue; // the same URL twice
            }
            let queue = Queue::open(&db, &name, config.remote_write_queue_bytes)
                .with_context(|| format!("cannot open the remote-write queue of {url}"))?;
            wanted.push(name);
            rw.endpoints.push(Arc::new(Endpoint {
                url: url.clone(),
                label: redact_url(url),
                queue,
                sent_batches: AtomicU64::new(0),
                failed_attempts: AtomicU64::new(0),
                rejected_batches: AtomicU64::new(0),
                last_error: Mutex::new(None),
            }));
        }
        for name in db.list_keyspace_names() {
            let name = name.to_string();
            if name.starts_with("q-") && !wanted.contains(&name) {
                tracing::info!(queue = %name, "dropping the remote-write queue of an endpoint no longer configured");
                let ks = db.keyspace(&name, fjall::KeyspaceCreateOptions::default)?;
                db.delete_keyspace(ks)?;
            }
        }

        let http: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(HTTP_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("StatusMonitor/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let (tx, rx) = mpsc::sync_channel::<Batch>(CHANNEL_BATCHES);
        let mut threads = Vec::new();
        let endpoints = rw.endpoints.clone();
        threads.push(
            std::thread::Builder::new()
                .name("remote-write-encoder".into())
                .spawn(move || encoder(rx, &endpoints, &catalog))?,
        );
        for endpoint in &rw.endpoints {
            let endpoint = endpoint.clone();
            let http = http.clone();
            let bearer = config.remote_write_bearer_token.clone();
            let stop = rw.stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("remote-write-sender".into())
                    .spawn(move || sender(&endpoint, &http, bearer.as_deref(), &stop))?,
            );
        }
        *rw.tx.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        *rw.threads.get_mut().unwrap_or_else(|e| e.into_inner()) = threads;
        tracing::info!(
            endpoints = ?rw.endpoints.iter().map(|e| &e.label).collect::<Vec<_>>(),
            "remote write is on"
        );
        Ok(rw)
    }

    /// Remote write has endpoints.
    pub fn enabled(&self) -> bool {
        !self.endpoints.is_empty()
    }

    fn enqueue(&self, agent_id: u64, host: Option<&HostFacts>, reports: &[Report]) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = tx.as_ref() else {
            return;
        };
        let batch = Batch {
            agent_id,
            host: host.map(|h| h.hostname.clone()),
            reports: reports.to_vec(),
        };
        match tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                if self
                    .overflow
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(1000)
                {
                    tracing::warn!("remote write cannot keep up: batches are being dropped");
                }
            }
        }
    }

    /// Per-endpoint state for `/api/health`.
    pub fn health(&self) -> Vec<RemoteWriteHealth> {
        self.endpoints
            .iter()
            .map(|e| {
                let (batches, bytes) = e.queue.backlog();
                let error = e
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                RemoteWriteHealth {
                    endpoint: e.label.clone(),
                    status: error.map_or_else(|| "ok".to_string(), |e| format!("retrying: {e}")),
                    queued_batches: batches,
                    queued_bytes: bytes,
                    dropped_batches: e.queue.dropped() + e.rejected_batches.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Adds the remote-write families to a scrape.
    pub fn register_metrics(&self, registry: &mut Registry) {
        type L = Vec<(String, String)>;
        let backlog_batches = Family::<L, Gauge>::default();
        let backlog_bytes = Family::<L, Gauge>::default();
        let sent = Family::<L, Counter>::default();
        let failed = Family::<L, Counter>::default();
        let dropped = Family::<L, Counter>::default();
        for e in &self.endpoints {
            let l = vec![("endpoint".to_string(), e.label.clone())];
            let (batches, bytes) = e.queue.backlog();
            backlog_batches
                .get_or_create(&l)
                .set(i64::try_from(batches).unwrap_or(i64::MAX));
            backlog_bytes
                .get_or_create(&l)
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            sent.get_or_create(&l)
                .inc_by(e.sent_batches.load(Ordering::Relaxed));
            failed
                .get_or_create(&l)
                .inc_by(e.failed_attempts.load(Ordering::Relaxed));
            dropped
                .get_or_create(&vec![
                    ("endpoint".to_string(), e.label.clone()),
                    ("reason".to_string(), "queue_full".to_string()),
                ])
                .inc_by(e.queue.dropped());
            dropped
                .get_or_create(&vec![
                    ("endpoint".to_string(), e.label.clone()),
                    ("reason".to_string(), "rejected".to_string()),
                ])
                .inc_by(e.rejected_batches.load(Ordering::Relaxed));
        }
        registry.register(
            "statusmonitor_server_remote_write_backlog_batches",
            "Ingest batches queued on disk for a remote_write endpoint",
            backlog_batches,
        );
        registry.register(
            "statusmonitor_server_remote_write_backlog_bytes",
            "Bytes (uncompressed protobuf) queued on disk for a remote_write endpoint",
            backlog_bytes,
        );
        registry.register(
            "statusmonitor_server_remote_write_sent_batches",
            "Ingest batches a remote_write endpoint accepted",
            sent,
        );
        registry.register(
            "statusmonitor_server_remote_write_failed_attempts",
            "remote_write requests that failed and will be retried",
            failed,
        );
        registry.register(
            "statusmonitor_server_remote_write_dropped_batches",
            "Ingest batches lost: queue over its bound, or refused for good (4xx) by the endpoint",
            dropped,
        );
        let overflow = Counter::<u64>::default();
        overflow.inc_by(self.overflow.load(Ordering::Relaxed));
        registry.register(
            "statusmonitor_server_remote_write_overflow_batches",
            "Ingest batches dropped before the queue because the encoder fell behind",
            overflow,
        );
    }
}

impl Drop for RemoteWrite {
    /// The encoder finishes what ingest handed it (so a graceful stop loses
    /// nothing), the senders stop; both are joined, so the queue's files are
    /// closed when this returns.
    fn drop(&mut self) {
        drop(self.tx.get_mut().unwrap_or_else(|e| e.into_inner()).take());
        self.stop.stop();
        for t in self
            .threads
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = t.join();
        }
    }
}

impl AppState {
    /// Called by `POST /api/ingest` once a batch is stored: counts it for
    /// `/metrics` and hands it to remote write. Never blocks.
    pub fn ingested(&self, agent_id: u64, host: Option<&HostFacts>, reports: &[Report]) {
        self.metrics.ingest_reports.inc_by(reports.len() as u64);
        if self.remote_write.enabled() {
            self.remote_write.enqueue(agent_id, host, reports);
        }
    }
}

/// `q-` and the first 16 hex digits of the URL's SHA-256.
fn queue_name(url: &str) -> String {
    format!("q-{}", &hex::encode(Sha256::digest(url.as_bytes()))[..16])
}

/// The URL without `user:password@`, query or fragment (which may hold a
/// token); a string that is not a URL at all is shown as `<invalid URL>`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            // Only URLs that cannot have credentials refuse these, and they
            // have none to hide.
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            let s = u.to_string();
            // `Url` adds a `/` path to a bare origin; keep what was written.
            if u.path() == "/" && !url.trim_end_matches(['?', '#']).ends_with('/') {
                s.trim_end_matches('/').to_string()
            } else {
                s
            }
        }
        Err(_) => "<invalid URL>".to_string(),
    }
}

/// Tells the senders to stop, and wakes them from their sleep.
#[derive(Default)]
struct Stopper {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stopper {
    /// Sleeps `d`; false when the server is stopping.
    fn sleep(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        !*guard
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }
}

/// Batches in, `WriteRequest`s into every queue.
fn encoder(rx: Receiver<Batch>, endpoints: &[Arc<Endpoint>], catalog: &Catalog) {
    let mut names: HashMap<u64, (AgentLabels, Instant)> = HashMap::new();
    while let Ok(batch) = rx.recv() {
        let who = labels_of(&mut names, catalog, batch.agent_id, batch.host);
        let body = encode(&who, &batch.reports).encode_to_vec();
        if body.is_empty() {
            continue;
        }
        for e in endpoints {
            if let Err(err) = e.queue.push(&body) {
                tracing::error!(endpoint = %e.label, error = %err, "cannot queue samples for remote write");
            }
        }
    }
}

/// The agent's name and hostname, cached for [`LABELS_TTL`]; a hostname
/// sent with the batch wins.
fn labels_of(
    cache: &mut HashMap<u64, (AgentLabels, Instant)>,
    catalog: &Catalog,
    agent_id: u64,
    host: Option<String>,
) -> AgentLabels {
    let fresh = cache
        .get(&agent_id)
        .filter(|(_, at)| at.elapsed() < LABELS_TTL)
        .map(|(l, _)| l.clone());
    let mut who = match fresh {
        Some(l) => l,
        None => {
            let record = catalog.agent(agent_id).ok().flatten();
            AgentLabels {
                agent_id,
                agent: record.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
                host: record
                    .and_then(|r| r.host)
                    .map(|h| h.hostname)
                    .unwrap_or_default(),
            }
        }
    };
    if let Some(h) = host {
        who.host = h;
    }
    cache.insert(agent_id, (who.clone(), Instant::now()));
    who
}

/// One `WriteRequest` for the reports of one agent: one series per metric and
/// label set, its samples in time order.
pub fn encode(who: &AgentLabels, reports: &[Report]) -> WriteRequest {
    let mut series: Vec<TimeSeries> = Vec::new();
    let mut index: HashMap<SeriesKey, usize> = HashMap::new();
    let mut sorted: Vec<&Report> = reports.iter().collect();
    sorted.sort_by_key(|r| r.ts_ms);
    for r in sorted {
        for (key, value) in report_samples(r) {
            let i = match index.get(&key) {
                Some(i) => *i,
                None => {
                    let Some((metric, labels)) = series_labels(who, &key) else {
                        continue;
                    };
                    let mut labels: Vec<Label> = labels
                        .into_iter()
                        .map(|(name, value)| Label { name, value })
                        .collect();
                    labels.push(Label {
                        name: "__name__".into(),
                        value: metric.name.into(),
                    });
                    labels.sort_by(|a, b| a.name.cmp(&b.name));
                    series.push(TimeSeries {
                        labels,
                        samples: Vec::new(),
                    });
                    index.insert(key.clone(), series.len() - 1);
                    series.len() - 1
                }
            };
            let scale = crate::metrics::names::prom_metric(&key.metric).map_or(1.0, |m| m.scale);
            series[i].samples.push(Sample {
                value: value * scale,
                timestamp: r.ts_ms,
            });
        }
    }
    WriteRequest { timeseries: series }
}

/// Sends the queue's oldest batches until told to stop.
fn sender(endpoint: &Endpoint, http: &ureq::Agent, bearer: Option<&str>, stop: &Stopper) {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    // After a refusal of several batches at once, this many are sent one by
    // one, so only the batch the endpoint refuses is dropped.
    let mut one_by_one = 0usize;
    loop {
        let limit = if one_by_one > 0 { 0 } else { MAX_REQUEST_BYTES };
        let entries = match endpoint.queue.peek(limit) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(endpoint = %endpoint.label, error = %e, "cannot read the remote-write queue");
                if !stop.sleep(BACKOFF_MAX) {
                    return;
                }
                continue;
            }
        };
        if entries.is_empty() {
            if !stop.sleep(POLL) {
                return;
            }
            continue;
        }
        let mut body = Vec::with_capacity(entries.iter().map(|(_, v)| v.len()).sum());
        for (_, v) in &entries {
            body.extend_from_slice(v);
        }
        let outcome = match snap::raw::Encoder::new().compress_vec(&body) {
            Ok(compressed) => post(http, &endpoint.url, bearer, &compressed),
            Err(e) => Outcome::Reject(format!("snappy: {e}")),
        };
        if !matches!(outcome, Outcome::Retry(_)) {
            one_by_one = one_by_one.saturating_sub(1);
        }
        match outcome {
            Outcome::Sent => {
                endpoint
                    .sent_batches
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                *endpoint
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
                backoff.reset();
                if let Err(e) = endpoint.queue.ack(&entries) {
                    tracing::error!(endpoint = %endpoint.label, error = %e, "cannot remove sent batches from the remote-write queue");
                }
            }
            Outcome::Reject(_) if entries.len() > 1 => {
                one_by_one = entries.len();
                continue;
            }
            Outcome::Reject(error) => {
                tracing::warn!(endpoint = %endpoint.label, batches = entries.len(), %error, "remote_write endpoint refused the samples for good; dropping them");
                endpoint
                    .rejected_batches
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                if let Err(e) = endpoint.queue.ack(&entries) {
                    tracing::error!(endpoint = %endpoint.label, error = %e, "cannot remove refused batches from the remote-write queue");
                }
            }
            Outcome::Retry(error) => {
                endpoint.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let wait = backoff.next_delay();
                tracing::debug!(endpoint = %endpoint.label, %error, ?wait, "remote_write failed; retrying");
                let mut last = endpoint
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if last.is_none() {
                    tracing::warn!(endpoint = %endpoint.label, %error, "remote_write endpoint unreachable; samples wait in the queue");
                }
                *last = Some(error);
                drop(last);
                if !stop.sleep(wait) {
                    return;
                }
            }
        }
    }
}

enum Outcome {
    Sent,
    Retry(String),
    Reject(String),
}

fn post(http: &ureq::Agent, url: &str, bearer: Option<&str>, body: &[u8]) -> Outcome {
    let mut request = http
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    if let Some(token) = bearer {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    match request.send(body) {
        Ok(response) => {
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return Outcome::Sent;
            }
            let detail: String = response
                .into_body()
                .with_config()
                .limit(4096)
                .read_to_string()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            let error = format!("HTTP {status}: {}", detail.trim());
            if worth_retrying(status) {
                Outcome::Retry(error)
            } else {
                Outcome::Reject(error)
            }
        }
        Err(ureq::Error::BadUri(e)) => Outcome::Reject(format!("invalid URL: {e}")),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::model::wire::Cpu;

    #[test]
    fn urls_lose_credentials_and_query() {
        assert_eq!(
            redact_url("https://user:pw@vm.example:8428/api/v1/write?token=x"),
            "https://vm.example:8428/api/v1/write"
        );
        assert_eq!(redact_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(
            redact_url("https://tok@vm.example/write#frag"),
            "https://vm.example/write"
        );
        // An `@` in the query is not taken for credentials.
        assert_eq!(
            redact_url("http://vm.example/api/v1/write?u=a@b"),
            "http://vm.example/api/v1/write"
        );
        assert_eq!(redact_url("not a url user:pw@x"), "<invalid URL>");
    }

    #[test]
    fn remote_write_urls_are_checked_without_showing_credentials() {
        let mut config = Config::resolve(crate::config::ServeArgs::default()).unwrap();
        for bad in [
            "ftp://vm.example/write",
            "http//vm.example",
            "https://user:secret@",
            "vm.example:8428/api/v1/write",
            "file:///etc/passwd",
        ] {
            config.remote_write_urls = vec![bad.to_string()];
            let e = check_config(&config).unwrap_err().to_string();
            assert!(e.contains("remote_write_url"), "{bad}: {e}");
            assert!(!e.contains("secret"), "{bad}: {e}");
        }
        config.remote_write_urls = vec!["https://u:p@vm.example:8428/api/v1/write".into()];
        check_config(&config).unwrap();
    }

    #[test]
    fn encodes_one_series_per_label_set_in_time_order() {
        let who = AgentLabels {
            agent_id: 3,
            agent: "nas".into(),
            host: "nas.lan".into(),
        };
        let rep = |ts, pct, mhz| Report {
            ts_ms: ts,
            cpu: Some(Cpu {
                total_pct: pct,
                cores_pct: vec![],
                cores_mhz: vec![mhz],
            }),
            ..Report::default()
        };
        let req = encode(&who, &[rep(2_000, 20.0, 3), rep(1_000, 10.0, 2)]);
        assert_eq!(req.timeseries.len(), 2);
        let cpu = &req.timeseries[0];
        let names: Vec<&str> = cpu.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "agent", "agent_id", "host"]);
        assert_eq!(cpu.labels[0].value, "statusmonitor_cpu_usage_percent");
        assert_eq!(
            cpu.samples,
            [
                Sample {
                    value: 10.0,
                    timestamp: 1_000
                },
                Sample {
                    value: 20.0,
                    timestamp: 2_000
                }
            ]
        );
        assert_eq!(req.timeseries[1].samples[0].value, 2e6, "MHz become Hz");
        // Concatenated encodings decode as one request with every series.
        let mut two = req.encode_to_vec();
        two.extend(req.encode_to_vec());
        assert_eq!(WriteRequest::decode(&two[..]).unwrap().timeseries.len(), 4);
    }
}
