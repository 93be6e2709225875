//! `AppState`: what every handler can reach. Cheap to clone (all `Arc`s).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use storage::catalog::{AgentAuth, AgentAuthError, Catalog, CatalogError, LAST_SEEN_PERSIST_MS};
use storage::clock::{Clock, SystemClock};
use storage::model::wire::{HostFacts, Report};
use storage::tsdb::{Engine, EngineConfig, Ring};
use tokio::sync::broadcast;

use crate::alerting::Alerting;
use crate::api::history::queries::HistoryQueries;
use crate::api::ws::Fanout;
use crate::auth::jwt::JwtKeys;
use crate::auth::limits::Limits;
use crate::auth::password::Passwords;
use crate::auth::tokens::{hash_token, random_bytes};
use crate::auth::{REFRESH_TTL_MS, SecurityEvent, catalog_error};
use crate::config::Config;
use crate::datadir::DataDir;
use crate::error::ApiError;
use crate::metrics::ServerMetrics;
use crate::remote_write::RemoteWrite;
use crate::store::Tsdb;

/// Cloned for every request (axum hands each handler and middleware its own
/// copy), so it is one `Arc`: a clone is one atomic increment instead of a
/// dozen, plus the Leptos options' strings.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] points at.
pub struct Shared {
    pub config: Arc<Config>,
    pub data_dir: Arc<DataDir>,
    pub leptos: LeptosOptions,
    pub started: Instant,
    /// "Now" for tokens, cooldowns and retention; a manual clock in tests.
    pub clock: Arc<dyn Clock>,
    /// Users, sessions, agents, settings (`DATA_DIR/catalog.redb`). Blocking:
    /// reach it through [`AppState::catalog`].
    pub catalog: Arc<Catalog>,
    /// Signs and checks access tokens.
    pub jwt: Arc<JwtKeys>,
    /// Argon2id hashing on the blocking pool.
    pub passwords: Arc<Passwords>,
    /// Log-in and registration rate limits.
    pub limits: Arc<Limits>,
    /// Per-account limits (agents, rules) and the "Send test" rate limit.
    pub quota: Arc<crate::api::quota::Quota>,
    /// The outbound guard every request made for a user goes through
    /// (webhooks; the same one the notifier uses).
    pub outbound: Arc<crate::outbound::OutboundGuard>,
    /// Revoked sessions, replaced agent tokens, deleted agents: WebSockets and
    /// the engine subscribe with [`AppState::subscribe_security`].
    pub events: broadcast::Sender<SecurityEvent>,
    /// The time-series engine (`DATA_DIR/tsdb`), its maintenance thread,
    /// and the free-space guard of ingest; reach the engine with
    /// [`Shared::engine`].
    pub tsdb: Arc<Tsdb>,
    /// The last 15 minutes of every agent's reports: what live sockets are
    /// sent, and the latest values alert rules read.
    pub ring: Arc<Ring>,
    /// The tasks writing each watched agent's reports to its live sockets.
    pub fanout: Fanout,
    /// Alert rules, their evaluation on ingest and the offline check, and
    /// notifications. Its thread stops when the last clone is dropped.
    pub alerting: Arc<Alerting>,
    /// The server's own counters for `/metrics`.
    pub metrics: Arc<ServerMetrics>,
    /// Copies of ingested samples on their way to remote_write endpoints.
    pub remote_write: Arc<RemoteWrite>,
    /// History queries in flight: per-user limit, time budget, cancellation.
    pub history: Arc<HistoryQueries>,
    /// The agent binaries `/download/agent/` serves.
    pub agent_binaries: Arc<crate::download::AgentBinaries>,
    /// The version each agent runs (from its reports; memory only).
    pub agent_versions: Arc<crate::download::versions::AgentVersions>,
    /// Uptime checks: the scheduler and each check's live state.
    pub checks: Arc<crate::checks::Checks>,
}

impl Shared {
    /// The time-series engine. Blocking: use it from `spawn_blocking`. Take
    /// it per request (it is replaced after a failed write, see
    /// [`crate::store`]), never keep it.
    pub fn engine(&self) -> Arc<Engine> {
        self.tsdb.engine()
    }
}

/// How much the ring buffer keeps per agent.
pub const RING_WINDOW_MS: i64 = 15 * 60_000;

impl AppState {
    /// Opens everything under the data directory, on the system clock.
    pub fn open(config: Config, data_dir: DataDir) -> anyhow::Result<AppState> {
        AppState::open_with_clock(config, data_dir, Arc::new(SystemClock))
    }

    /// Opens everything under the data directory with the given clock.
    pub fn open_with_clock(
        config: Config,
        data_dir: DataDir,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<AppState> {
        let opening = Instant::now();
        let catalog = Catalog::open_in(data_dir.path())?;
        catalog
            .purge_sessions(clock.now_ms(), REFRESH_TTL_MS)
            .context("cannot purge expired sessions")?;
        let secret = match &config.jwt_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            // Kept in the catalog so a restart does not log everyone out.
            None => catalog
                .jwt_secret_or_insert(&random_bytes::<64>())
                .context("cannot read or create the JWT secret")?,
        };
        let passwords = Passwords::new(config.password_cost)?;
        let (events, _) = broadcast::channel(1024);
        let catalog = Arc::new(catalog);
        spawn_housekeeping(&catalog, clock.clone());
        let engine_config = EngineConfig {
            raw_retention_ms: config.raw_retention_ms,
            m1_retention_ms: config.minute_retention_ms,
            h1_retention_ms: config.hour_retention_ms,
            ..EngineConfig::default()
        };
        let tsdb_dir = data_dir.path().join("tsdb");
        let engine = Arc::new(
            Engine::open(&tsdb_dir, engine_config.clone(), clock.clone()).with_context(|| {
                format!("cannot open the time-series store {}", tsdb_dir.display())
            })?,
        );
        let engine_opened = opening.elapsed();
        let ring = Arc::new(Ring::new(RING_WINDOW_MS));
        replay_ring(&engine, &ring, clock.now_ms() - RING_WINDOW_MS)?;
        tracing::info!(
            catalog_and_engine_ms = engine_opened.as_millis() as u64,
            ring_replay_ms = (opening.elapsed() - engine_opened).as_millis() as u64,
            "stores opened"
        );
        let tsdb = Arc::new(Tsdb::new(
            engine,
            data_dir.path(),
            engine_config,
            clock.clone(),
            config.min_free_bytes,
        ));
        let alerting = Arc::new(
            Alerting::start(
                &config,
                catalog.clone(),
                ring.clone(),
                Some(tsdb.clone()),
                clock.clone(),
            )
            .context("cannot load alert rules")?,
        );
        let remote_write = RemoteWrite::start(&config, data_dir.path(), catalog.clone())?;
        let checks = Arc::new(
            crate::checks::Checks::start(
                catalog.clone(),
                tsdb.clone(),
                alerting.notifier().outbound().clone(),
                clock.clone(),
                config.check_concurrency as usize,
            )
            .context("cannot load uptime checks")?,
        );
        crate::status::load_maintenance(&catalog, &alerting)
            .context("cannot load the status pages' maintenance windows")?;
        {
            // Check rules are evaluated after every run (on the blocking pool).
            let alerting = Arc::downgrade(&alerting);
            checks.on_result(move |observation| {
                if let Some(alerting) = alerting.upgrade() {
                    alerting.check_observed(&observation);
                }
            });
        }
        let history = Arc::new(HistoryQueries::new(
            config.history_queries_per_user,
            config.max_history_queries,
            Duration::from_millis(config.history_query_timeout_ms.unsigned_abs()),
        ));
        let agent_binaries = Arc::new(crate::download::AgentBinaries::load(
            config.agent_binaries.as_deref(),
        )?);
        Ok(AppState(Arc::new(Shared {
            history,
            agent_binaries,
            agent_versions: Arc::default(),
            checks,
            metrics: Arc::new(ServerMetrics::default()),
            remote_write: Arc::new(remote_write),
            config: Arc::new(config),
            data_dir: Arc::new(data_dir),
            leptos: crate::web::leptos_options(),
            started: Instant::now(),
            clock,
            catalog,
            jwt: Arc::new(JwtKeys::new(&secret)),
            passwords: Arc::new(passwords),
            limits: Arc::new(Limits::default()),
            quota: Arc::default(),
            outbound: alerting.notifier().outbound().clone(),
            events,
            tsdb,
            ring,
            fanout: Fanout::default(),
            alerting,
        })))
    }

    /// Runs `f` on the catalog in the blocking pool; catalog errors become
    /// API errors (see [`catalog_error`]).
    pub async fn catalog<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Catalog) -> Result<T, CatalogError> + Send + 'static,
    {
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || f(&catalog))
            .await
            .map_err(ApiError::internal)?
            .map_err(catalog_error)
    }

    /// Receives every [`SecurityEvent`] from now on.
    pub fn subscribe_security(&self) -> broadcast::Receiver<SecurityEvent> {
        self.events.subscribe()
    }

    /// Announces `event`; nobody listening is fine.
    pub fn announce(&self, event: SecurityEvent) {
        let _ = self.events.send(event);
    }

    /// For `/api/ingest`: the agent that `token` (the `X-Agent-Token` header)
    /// belongs to. A valid pending token is activated for good by this call.
    /// `ApiError::from` turns the error into a 401 telling the user what to do.
    pub async fn authenticate_agent(&self, token: &str) -> Result<AgentAuth, AgentAuthError> {
        let hash = hash_token(token);
        // Known active tokens: memory only, no blocking task.
        if let Some(auth) = self.catalog.cached_agent_auth(&hash) {
            return Ok(auth);
        }
        let now_ms = self.clock.now_ms();
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || catalog.authenticate_agent(&hash, now_ms))
            .await
            .map_err(|e| AgentAuthError::Catalog(CatalogError::Task(e.to_string())))?
    }

    /// Deletes agent `agent_id` of `owner_id` with all its data. False when it
    /// does not exist or is someone else's.
    pub async fn delete_agent(&self, owner_id: u64, agent_id: u64) -> Result<bool, ApiError> {
        let deleted = self
            .catalog(move |c| c.delete_agent(owner_id, agent_id))
            .await?;
        if deleted {
            self.on_agent_deleted(owner_id, agent_id).await?;
        }
        Ok(deleted)
    }

    /// Runs once an agent's catalog records are gone: deletes its time series
    /// (awaited, so `DELETE /api/agents/{id}` answers once the data is gone),
    /// its alert rules, their state and its alert history, empties its ring
    /// buffer and tells subscribers (WebSockets close).
    pub async fn on_agent_deleted(&self, owner_id: u64, agent_id: u64) -> Result<(), ApiError> {
        let alerting = self.alerting.clone();
        tokio::task::spawn_blocking(move || alerting.agent_deleted(owner_id, agent_id))
            .await
            .map_err(ApiError::internal)?
            .map_err(catalog_error)?;
        let engine = self.engine();
        tokio::task::spawn_blocking(move || engine.delete_agent(agent_id))
            .await
            .map_err(ApiError::internal)?
            .map_err(storage_error)?;
        self.ring.remove(agent_id);
        // Its checks fall back to the server (the catalog dropped their runner).
        self.checks.agent_deleted(agent_id);
        self.announce(SecurityEvent::AgentDeleted { owner_id, agent_id });
        Ok(())
    }

    /// Writes what is only in memory (last-seen times) and flushes the engine;
    /// called on graceful shutdown.
    pub fn flush(&self) -> anyhow::Result<()> {
        self.catalog
            .flush_live()
            .context("cannot save last-seen times")?;
        self.tsdb
            .flush()
            .context("cannot flush the time-series store")?;
        Ok(())
    }
}

/// After a restart the live view starts from the stored reports since
/// `since_ms` (the last 15 minutes), read back on every core: about 2 µs per
/// report on two cores, so a few seconds for 10,000 agents at 5 s.
fn replay_ring(engine: &Engine, ring: &Ring, since_ms: i64) -> anyhow::Result<()> {
    // Checks' pseudo-agents have no live view.
    let agents: Vec<u64> = engine
        .agents()
        .into_iter()
        .filter(|a| !crate::checks::is_check_series(*a))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(agents.len()))
            .map(|_| {
                scope.spawn(|| -> Result<(), storage::Error> {
                    while let Some(&agent) =
                        agents.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        ring.push_newer(agent, engine.recent_reports(agent, since_ms)?);
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })
    .context("cannot read the last reports back into the live ring")
}

/// Maps engine failures to API errors: a bad request to 400, the rest
/// (I/O, corruption) to a logged 500.
pub fn storage_error(e: storage::Error) -> ApiError {
    match e {
        storage::Error::InvalidRequest(msg) => ApiError::BadRequest(msg),
        storage::Error::AgentDeleted { .. } => ApiError::NotFound("no such agent".into()),
        other => ApiError::internal(other),
    }
}

/// How often the agents' last-seen times are written (one transaction).
const FLUSH_EVERY: Duration = Duration::from_millis(LAST_SEEN_PERSIST_MS as u64);
/// Expired sessions and stale refresh-token hashes are purged every this many
/// flushes (hourly), and once at start.
const PURGE_EVERY_FLUSHES: u32 = 120;

/// While the catalog is open: writes agents' last-seen every
/// [`FLUSH_EVERY`] and purges expired sessions hourly. Holds only a weak
/// reference, so it never keeps the catalog (and its file lock) alive;
/// without a runtime it does nothing.
fn spawn_housekeeping(catalog: &Arc<Catalog>, clock: Arc<dyn Clock>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let catalog = Arc::downgrade(catalog);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.tick().await; // the first tick is immediate; `open` just purged
        let mut flushes = 0u32;
        loop {
            tick.tick().await;
            let Some(catalog) = catalog.upgrade() else {
                break;
            };
            flushes = flushes.wrapping_add(1);
            let purge = flushes.is_multiple_of(PURGE_EVERY_FLUSHES);
            let now_ms = clock.now_ms();
            let done = tokio::task::spawn_blocking(move || {
                catalog.flush_live()?;
                if purge {
                    catalog.purge_sessions(now_ms, REFRESH_TTL_MS)?;
                }
                Ok::<(), CatalogError>(())
            })
            .await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "catalog housekeeping failed"),
                Err(e) => tracing::warn!(error = %e, "catalog housekeeping task failed"),
            }
        }
    });
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
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
