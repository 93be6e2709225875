//! Starting and stopping remote write: the queues, the encoder and sender
//! threads, and what `/api/health` and `/metrics` show of them.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use storage::catalog::Catalog;
use storage::model::RemoteWriteHealth;
use storage::model::wire::{HostFacts, Report};

use crate::config::Config;
use crate::remote_write::encode::{Batch, encoder};
use crate::remote_write::queue::Queue;
use crate::remote_write::redact_url;
use crate::remote_write::sender::{Stopper, sender};

/// Batches waiting for the encoder; past this ingest does not wait, the batch
/// is counted as dropped (the encoder only falls this far behind when the
/// disk does).
const CHANNEL_BATCHES: usize = 10_000;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One endpoint: its queue and what happened to it.
pub struct Endpoint {
    pub(super) url: String,
    /// `url` without credentials or query, for labels, logs and health.
    pub label: String,
    pub(super) queue: Queue,
    pub(super) sent_batches: AtomicU64,
    pub(super) failed_attempts: AtomicU64,
    pub(super) rejected_batches: AtomicU64,
    pub(super) last_error: Mutex<Option<String>>,
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
            let bearer = config
                .remote_write_bearer_token
                .as_ref()
                .map(|s| s.expose().to_owned());
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

    pub(crate) fn enqueue(&self, agent_id: u64, host: Option<&HostFacts>, reports: &[Report]) {
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

/// `q-` and the first 16 hex digits of the URL's SHA-256.
fn queue_name(url: &str) -> String {
    format!("q-{}", &hex::encode(Sha256::digest(url.as_bytes()))[..16])
}
