//! Uptime checks run by the server: the scheduler, the probes, and where
//! their results go.
//!
//! - Definitions are in the catalog (`storage::catalog::CheckRecord`); the
//!   scheduler keeps a copy of each in memory with its live state.
//! - Scheduling: each check runs every `interval_s`, at a phase taken from
//!   its id (spread over the interval, so a thousand checks at 60 s do not
//!   all start at :00). One task wakes at the next due time, starts what is
//!   due and goes back to sleep; it never waits for a run. A run takes one
//!   of [`Config::check_concurrency`](crate::config::Config) permits and
//!   goes to the blocking pool under a timeout of the check's own timeout
//!   plus [`RUN_SLACK`]; a check whose previous run has not finished is not
//!   started again (it is late, not doubled), so a target that hangs holds
//!   at most one permit and never delays the others.
//! - Results are series of a pseudo-agent in the time-series engine (same
//!   tiers, retention and compaction as agents' metrics): check `id` writes
//!   agent id [`series_id`]`(id)` = `2^62 + id`, far above any real agent
//!   id, with the series [`SERIES_UP`] (1 up / 0 down), [`SERIES_LATENCY`]
//!   (ms) and [`SERIES_CERT_DAYS`] (HTTPS). Uptime over a range is the
//!   average of `check_up` read from the tier the range picks, so a year is
//!   365 hourly aggregates, not every run.
//! - State: `up` after a successful run, `down` after more than `retries`
//!   failed runs in a row. Each change is a [`CheckEventRecord`] in the
//!   catalog; at start the last one gives the state back (a check that was
//!   down is still down, with no second event).

pub mod agent_run;
pub mod cert;
pub mod ping;
pub mod probe;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use storage::catalog::{Catalog, CatalogError, CheckEventRecord, CheckRecord};
use storage::clock::Clock;
use storage::model::checks::schedule::{next_slot, phase};
use storage::model::{CheckKind, CheckResult, CheckState, SeriesKey};
use storage::tsdb::Row;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::alerting::CheckObservation;
use crate::outbound::{Caller, OutboundGuard};
use crate::store::Tsdb;

/// Engine agent ids of checks start here.
pub const CHECK_SERIES_BASE: u64 = 1 << 62;
/// 1 when a run was up, 0 when down.
pub const SERIES_UP: &str = "check_up";
/// Latency of a run, ms.
pub const SERIES_LATENCY: &str = "check_latency_ms";
/// Days until the HTTPS certificate expires.
pub const SERIES_CERT_DAYS: &str = "check_cert_days";
/// A run may take this much longer than the check's timeout before the
/// scheduler counts it as a timeout and releases its permit.
pub const RUN_SLACK: Duration = Duration::from_secs(2);
/// The certificate of an HTTPS check is read at most this often.
pub const CERT_EVERY: Duration = Duration::from_secs(3_600);
/// Lateness samples kept for [`Checks::lateness_ms`].
const LATENESS_KEPT: usize = 16_384;

/// The engine agent id of check `id`.
pub fn series_id(check_id: u64) -> u64 {
    CHECK_SERIES_BASE | check_id
}

/// Whether an engine agent id is a check's.
pub fn is_check_series(agent: u64) -> bool {
    agent >= CHECK_SERIES_BASE
}

/// The live state of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub state: CheckState,
    pub since_ms: Option<i64>,
    pub failures: u32,
    pub last: Option<CheckResult>,
}

struct Entry {
    record: Arc<CheckRecord>,
    caller: Caller,
    /// HTTP checks: the client, kept between runs.
    agent: Option<ureq::Agent>,
    due: Instant,
    running: bool,
    status: Status,
    /// The last runs, oldest first: (time, latency when up).
    recent: std::collections::VecDeque<(i64, Option<f64>)>,
    cert_read: Option<Instant>,
    cert_days: Option<f64>,
    /// The agent that runs the check; `None`: the server.
    runner: Option<u64>,
    /// Agent-run checks: when a result last came (or the check was
    /// assigned), server clock ms.
    heard_ms: i64,
}

/// A state change.
#[derive(Debug, Clone)]
struct Transition {
    state: CheckState,
    ts_ms: i64,
    error: Option<String>,
}

/// Runs kept per check for latency rules (their window is at most 15
/// minutes: 45 runs at the shortest interval).
const RECENT_KEPT: usize = 64;

/// What [`Checks::on_result`] installs.
type ResultHook = Arc<dyn Fn(CheckObservation) + Send + Sync>;

struct Inner {
    catalog: Arc<Catalog>,
    tsdb: Arc<Tsdb>,
    guard: Arc<OutboundGuard>,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<u64, Entry>>,
    /// Where every check's slots are counted from.
    anchor: Instant,
    wake: Arc<Notify>,
    permits: Semaphore,
    lateness_us: Mutex<Vec<u32>>,
    /// Told about every run (alerting).
    on_result: Mutex<Option<ResultHook>>,
    /// The versions of agents' check lists asked since the last change
    /// (see [`agent_run`]); emptied by every change.
    list_versions: Mutex<HashMap<u64, String>>,
}

/// The scheduler and the live state of every check. Its task stops when
/// the last handle is dropped.
pub struct Checks {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks").finish()
    }
}

impl Checks {
    /// Loads every check (blocking catalog reads) and, inside a tokio
    /// runtime, starts the scheduler.
    pub fn start(
        catalog: Arc<Catalog>,
        tsdb: Arc<Tsdb>,
        guard: Arc<OutboundGuard>,
        clock: Arc<dyn Clock>,
        concurrency: usize,
    ) -> Result<Checks, CatalogError> {
        let now = Instant::now();
        let now_ms = clock.now_ms();
        let runners = catalog.check_runners()?;
        let mut entries = HashMap::new();
        for record in catalog.all_checks()? {
            let caller = Caller::of(catalog.user(record.owner_id)?.is_some_and(|u| u.is_admin));
            let last = catalog.check_events(record.id, 1)?.into_iter().next();
            let status = match (&last, record.spec.enabled) {
                (_, false) => Status {
                    state: CheckState::Paused,
                    since_ms: None,
                    failures: 0,
                    last: None,
                },
                (Some(event), true) => Status {
                    state: event.state,
                    since_ms: Some(event.ts_ms),
                    failures: if event.state == CheckState::Down {
                        record.spec.retries + 1
                    } else {
                        0
                    },
                    last: None,
                },
                (None, true) => Status {
                    state: CheckState::Pending,
                    since_ms: None,
                    failures: 0,
                    last: None,
                },
            };
            let due = now + phase(record.id, record.spec.interval());
            let mut entry = Entry::new(&guard, Arc::new(record), caller, due, status);
            entry.runner = runners.get(&entry.record.id).copied();
            entry.heard_ms = now_ms;
            entries.insert(entry.record.id, entry);
        }
        let inner = Arc::new(Inner {
            catalog,
            tsdb,
            guard,
            clock,
            entries: Mutex::new(entries),
            anchor: now,
            wake: Arc::new(Notify::new()),
            permits: Semaphore::new(concurrency.max(1)),
            lateness_us: Mutex::new(Vec::new()),
            on_result: Mutex::new(None),
            list_versions: Mutex::new(HashMap::new()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(schedule(Arc::downgrade(&inner), inner.wake.clone()));
        }
        Ok(Checks { inner })
    }

    /// Calls `f` after every run from now on, on the blocking pool; the run
    /// (and `POST /api/checks/{id}/run`) ends when it returns.
    pub fn on_result(&self, f: impl Fn(CheckObservation) + Send + Sync + 'static) {
        *self
            .inner
            .on_result
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
    }

    /// A check was created or replaced: it runs soon (within a second) and
    /// then in its own slot of its interval. A replaced check starts over
    /// as pending.
    pub fn upsert(&self, record: CheckRecord, caller: Caller) {
        let id = record.id;
        let status = Status {
            state: if record.spec.enabled {
                CheckState::Pending
            } else {
                CheckState::Paused
            },
            since_ms: None,
            failures: 0,
            last: None,
        };
        let due = Instant::now() + phase(id, Duration::from_secs(1));
        let entry = Entry::new(&self.inner.guard, Arc::new(record), caller, due, status);
        let mut entries = self.inner.lock();
        entries.insert(id, entry);
        self.inner.lists_changed();
        drop(entries);
        self.inner.wake.notify_one();
    }

    /// A check was deleted.
    pub fn remove(&self, id: u64) {
        let mut entries = self.inner.lock();
        entries.remove(&id);
        self.inner.lists_changed();
    }

    /// The live state of check `id`.
    pub fn status(&self, id: u64) -> Option<Status> {
        let now_ms = self.inner.clock.now_ms();
        self.inner
            .lock()
            .get(&id)
            .map(|e| agent_run::shown_state(e, now_ms))
    }

    /// The latest certificate reading of check `id`.
    pub fn cert_days(&self, id: u64) -> Option<f64> {
        self.inner.lock().get(&id).and_then(|e| e.cert_days)
    }

    /// Runs check `id` now, records the result like a scheduled run, and
    /// returns it. `None` when the check is unknown or already running.
    pub async fn run_now(&self, id: u64) -> Option<CheckResult> {
        {
            let mut entries = self.inner.lock();
            let entry = entries.get_mut(&id)?;
            if entry.running || entry.runner.is_some() {
                return None;
            }
            entry.running = true;
            // A forced run also reads the certificate.
            entry.cert_read = None;
        }
        Some(run(self.inner.clone(), id).await)
    }

    /// Runs started so far and how late each of the last ones started
    /// (after its due time), ms.
    pub fn lateness_ms(&self) -> Vec<f64> {
        self.inner
            .lateness_us
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|us| f64::from(*us) / 1000.0)
            .collect()
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        // The scheduler wakes, finds the state gone and stops.
        self.inner.wake.notify_one();
    }
}

impl Entry {
    fn new(
        guard: &Arc<OutboundGuard>,
        record: Arc<CheckRecord>,
        caller: Caller,
        due: Instant,
        status: Status,
    ) -> Entry {
        let agent = (record.spec.kind == CheckKind::Http)
            .then(|| probe::http_agent(guard, &record.spec, caller));
        Entry {
            record,
            caller,
            agent,
            due,
            running: false,
            status,
            recent: Default::default(),
            cert_read: None,
            cert_days: None,
            runner: None,
            heard_ms: 0,
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // Every update under the lock is a field assignment: a panic cannot
        // leave an entry half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the agents' list versions (a check was added, changed or
    /// removed, or moved between runners). Called with the entries locked,
    /// as [`Checks::agent_version`] fills them, so no version computed
    /// before a change is kept after it.
    fn lists_changed(&self) {
        self.list_versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn note_lateness(&self, late: Duration) {
        let us = u32::try_from(late.as_micros()).unwrap_or(u32::MAX);
        let mut kept = self
            .lateness_us
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= LATENESS_KEPT {
            kept.drain(..LATENESS_KEPT / 2);
        }
        kept.push(us);
    }
}

/// The scheduler task: start what is due, sleep until the next due time or
/// a change.
async fn schedule(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut next = now + Duration::from_secs(3_600);
        let mut due = Vec::new();
        {
            let mut entries = strong.lock();
            for (id, entry) in entries.iter_mut() {
                if !entry.record.spec.enabled || entry.runner.is_some() {
                    continue;
                }
                if entry.due <= now {
                    let interval = entry.record.spec.interval();
                    if !entry.running {
                        entry.running = true;
                        due.push((*id, entry.due));
                    }
                    // The check's next own slot: missed ones are skipped,
                    // not run in a burst.
                    entry.due = next_slot(strong.anchor, *id, interval, now);
                }
                next = next.min(entry.due);
            }
        }
        for (id, was_due) in due {
            strong.note_lateness(now.saturating_duration_since(was_due));
            tokio::spawn(run(strong.clone(), id));
        }
        drop(strong);
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = wake.notified() => {}
        }
    }
}

/// One run of check `id` (marked running by the caller): probe, record,
/// tell alerting.
async fn run(inner: Arc<Inner>, id: u64) -> CheckResult {
    let Ok(_permit) = inner.permits.acquire().await else {
        return failed(inner.clock.now_ms(), "scheduler stopped");
    };
    let job = {
        let entries = inner.lock();
        entries.get(&id).map(|e| {
            let cert_due = e.record.spec.kind == CheckKind::Http
                && e.record.spec.target.starts_with("https:")
                && e.cert_read.is_none_or(|t| t.elapsed() >= CERT_EVERY);
            (e.record.clone(), e.caller, e.agent.clone(), cert_due)
        })
    };
    let Some((record, caller, agent, cert_due)) = job else {
        return failed(inner.clock.now_ms(), "check deleted");
    };
    let timeout = Duration::from_millis(u64::from(record.spec.timeout_ms));
    let guard = inner.guard.clone();
    let spec = record.spec.clone();
    let now_ms = inner.clock.now_ms();
    let blocking = tokio::task::spawn_blocking(move || {
        let probe = probe::run(&guard, &spec, caller, agent.as_ref());
        let cert = if cert_due
            && probe
                .error
                .as_deref()
                .is_none_or(|e| !e.starts_with("refused"))
        {
            Some(cert::days_left(
                &guard,
                &spec.target,
                caller,
                timeout,
                now_ms,
            ))
        } else {
            None
        };
        (probe, cert)
    });
    let (probe, cert) = match tokio::time::timeout(timeout * 2 + RUN_SLACK, blocking).await {
        Ok(Ok(done)) => done,
        Ok(Err(_)) => (
            probe::Probe {
                ok: false,
                latency_ms: None,
                error: Some("check failed".into()),
            },
            None,
        ),
        Err(_) => (
            probe::Probe {
                ok: false,
                latency_ms: None,
                error: Some("timeout".into()),
            },
            None,
        ),
    };
    let ts_ms = inner.clock.now_ms();
    if let Some(entry) = inner.lock().get_mut(&id) {
        entry.running = false;
    }
    record_run(inner.clone(), id, probe, cert, ts_ms).await
}

/// Records one run of check `id` (the server's or an agent's) that ended
/// at `ts_ms`: its state, series, state change and alert evaluation.
/// `cert`: `Some` when the certificate was read.
async fn record_run(
    inner: Arc<Inner>,
    id: u64,
    probe: probe::Probe,
    cert: Option<Option<f64>>,
    ts_ms: i64,
) -> CheckResult {
    // Update the state; note a transition.
    let (result, transition, observation) = {
        let mut entries = inner.lock();
        let Some(entry) = entries.get_mut(&id) else {
            return failed(ts_ms, "check deleted");
        };
        if let Some(days) = cert {
            entry.cert_read = Some(Instant::now());
            entry.cert_days = days;
        }
        let result = CheckResult {
            ts_ms,
            ok: probe.ok,
            latency_ms: probe.latency_ms,
            error: probe.error.clone(),
            cert_days: entry.cert_days,
        };
        let status = &mut entry.status;
        status.last = Some(result.clone());
        let before = status.state;
        let after = if probe.ok {
            status.failures = 0;
            CheckState::Up
        } else {
            status.failures = status.failures.saturating_add(1);
            if status.failures > entry.record.spec.retries {
                CheckState::Down
            } else {
                before
            }
        };
        let transition = (after != before && entry.record.spec.enabled).then(|| {
            status.state = after;
            status.since_ms = Some(ts_ms);
            Transition {
                state: after,
                ts_ms,
                error: probe.error.clone(),
            }
        });
        let state = status.state;
        if entry.recent.len() >= RECENT_KEPT {
            entry.recent.pop_front();
        }
        entry
            .recent
            .push_back((ts_ms, result.latency_ms.filter(|_| result.ok)));
        let observation = CheckObservation {
            check_id: id,
            name: entry.record.spec.name.clone(),
            ts_ms,
            state,
            recent: entry.recent.iter().copied().collect(),
            cert_days: entry.cert_days,
        };
        (result, transition, observation)
    };
    let mut samples = vec![(SeriesKey::new(SERIES_UP), if result.ok { 1.0 } else { 0.0 })];
    if let Some(ms) = result.latency_ms.filter(|_| result.ok) {
        samples.push((SeriesKey::new(SERIES_LATENCY), ms));
    }
    if let Some(days) = cert.flatten() {
        samples.push((SeriesKey::new(SERIES_CERT_DAYS), days));
    }
    // None once the server is stopping: the result is not stored.
    if let Some(engine) = inner.tsdb.for_writing()
        && let Err(e) = engine
            .write_grouped(series_id(id), vec![Row::new(ts_ms, samples)])
            .await
    {
        tracing::warn!(check_id = id, error = %e, "cannot store a check result");
    }
    if let Some(t) = transition {
        let event = CheckEventRecord {
            ts_ms: t.ts_ms,
            state: t.state,
            error: t.error.clone(),
        };
        let catalog = inner.catalog.clone();
        let stored =
            tokio::task::spawn_blocking(move || catalog.record_check_event(id, &event)).await;
        if !matches!(stored, Ok(Ok(()))) {
            tracing::warn!(check_id = id, "cannot store a check's state change");
        }
        tracing::info!(check_id = id, state = ?t.state, "check state changed");
    }
    let hook = inner
        .on_result
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if let Some(hook) = hook
        && tokio::task::spawn_blocking(move || hook(observation))
            .await
            .is_err()
    {
        tracing::warn!(check_id = id, "evaluating a check's alert rules failed");
    }
    result
}

fn failed(ts_ms: i64, why: &str) -> CheckResult {
    CheckResult {
        ts_ms,
        ok: false,
        latency_ms: None,
        error: Some(why.into()),
        cert_days: None,
    }
}
