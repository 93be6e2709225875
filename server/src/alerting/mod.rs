//! Alerting: evaluates users' rules against their agents' reports, keeps the
//! per-(rule, label) firing state, records every firing and resolution in
//! the history and hands notifications to [`notify`].
//!
//! - Ingest calls [`Alerting::reports_arrived`], which only queues the agent
//!   id on a channel, and only for agents that have rules (most have none,
//!   and a wake-up per report is most of the cost of a large fleet): ingest
//!   never waits for evaluation or notification.
//! - One thread (`alert-evaluator`) drains that queue and evaluates the
//!   agent's enabled rules against the ring buffer; the same thread runs the
//!   offline check every `offline_check_interval` on the injected clock.
//! - Rule changes from the API evaluate the rule at once, on the blocking
//!   pool. All evaluation happens under one mutex, so transitions of a rule
//!   are serialised whoever triggers them.
//! - The state is mirrored in memory and written to the catalog together with
//!   the event it produces (one transaction): after a restart a firing rule
//!   is still firing, with no second "firing" event or message.
//! - Readers never take that mutex: after each change the firing labels are
//!   published as an immutable snapshot (a `tokio::sync::watch` value), so
//!   `GET /api/rules` never waits out a catalog commit or an offline check.
//!
//! Semantics (also in `docs/alerts.md`): ok → firing records a "firing"
//! event and notifies; while firing and still breached, every cooldown
//! records another "firing" event and notifies again; firing → ok records
//! "resolved" and notifies. Times are the server clock; duration windows use
//! the reports' own timestamps.

mod checks;
pub mod evaluator;
pub mod notify;
mod tags;

pub use checks::CheckObservation;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use storage::catalog::{
    AlertRecord, Catalog, CatalogError, FiringRecord, RuleRecord, TAG_RULE_AGENT, label_key,
};
use storage::clock::Clock;
use storage::model::retry::AGENT_RETRY_MAX_INTERVALS;
use storage::model::{AlertMetric, AlertState, FiringLabel, MIN_COOLDOWN_S};
use storage::tsdb::{Engine, QueryRequest, Ring, Tier};

use crate::config::Config;
use evaluator::observe;
use notify::{Notifier, Plan};

/// Offline rules without a duration fire after this many agent intervals.
pub const OFFLINE_INTERVALS: i64 = 3;
/// The interval assumed for an agent that never said its own.
pub const DEFAULT_INTERVAL_MS: i64 = 5_000;

/// The longest an agent reporting every `interval_ms` waits between two
/// tries while the server is away ([`AGENT_RETRY_MAX_INTERVALS`] intervals).
pub fn agent_retry_max_ms(interval_ms: i64) -> i64 {
    i64::from(AGENT_RETRY_MAX_INTERVALS).saturating_mul(interval_ms)
}

enum Command {
    /// New reports of this agent are in the ring buffer.
    Reports(u64),
    /// Answer once everything queued before is evaluated.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// The handle kept in `AppState`. Dropping it stops and joins the thread.
pub struct Alerting {
    inner: Arc<Inner>,
    /// Agents with at least one rule: the only ones whose reports need the
    /// evaluator (kept by [`EvalState`], read by ingest without its mutex).
    watched: Arc<RwLock<HashSet<u64>>>,
    queue: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting").finish()
    }
}

struct Inner {
    /// Server time at start: silence is only measured while we run.
    started_ms: i64,
    catalog: Arc<Catalog>,
    ring: Arc<Ring>,
    /// Where `container_restarts` windows longer than the ring are read
    /// (`None` in unit tests without an engine: the ring only). The store,
    /// not its engine: an engine is held only while it is read, so the
    /// store can reopen it after a full disk.
    engine: Option<Arc<crate::store::Tsdb>>,
    clock: Arc<dyn Clock>,
    keep_events: u64,
    notifier: Arc<Notifier>,
    state: Mutex<EvalState>,
    /// The firing labels by rule, republished by the writers of `state`
    /// after each change; what async handlers read.
    firing: tokio::sync::watch::Sender<Arc<FiringByRule>>,
    /// Maintenance windows (start, end ms) by agent id (a check's: its
    /// engine id), from status pages: no rule of theirs starts firing
    /// inside one.
    maintenance: RwLock<HashMap<u64, Vec<(i64, i64)>>>,
    /// A copy of `EvalState::tag_rules` for async readers (the rule view),
    /// replaced after each change, never held across I/O.
    rule_tags: RwLock<HashMap<u64, String>>,
}

/// A published copy of the firing states: rule id → its labels, sorted.
type FiringByRule = HashMap<u64, Vec<FiringLabel>>;

/// What evaluation needs in memory: the rules by agent and the firing states.
#[derive(Default)]
struct EvalState {
    rules: HashMap<u64, RuleRecord>,
    by_agent: HashMap<u64, BTreeSet<u64>>,
    /// The keys of `by_agent`, shared with ingest.
    watched: Arc<RwLock<HashSet<u64>>>,
    /// Keyed by (rule, state key): the label (`""` for none), or for a rule
    /// that targets a tag `"{agent id}:{label}"` (see [`state_key`]).
    firing: HashMap<(u64, String), FiringRecord>,
    /// `firing` changed since it was last published.
    firing_changed: bool,
    /// The rules that watch a tag: rule id → tag (their `agent_id` is
    /// [`TAG_RULE_AGENT`]).
    tag_rules: HashMap<u64, String>,
    /// The agents each tag rule watches now (its owner's agents carrying
    /// the tag); kept by `Inner::retarget`.
    tag_agents: HashMap<u64, BTreeSet<u64>>,
}

impl EvalState {
    fn insert_rule(&mut self, rule: RuleRecord) {
        if rule.agent_id == TAG_RULE_AGENT {
            // Watched through `tag_agents`.
            self.rules.insert(rule.id, rule);
            return;
        }
        self.by_agent
            .entry(rule.agent_id)
            .or_default()
            .insert(rule.id);
        self.watched
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(rule.agent_id);
        self.rules.insert(rule.id, rule);
    }

    fn remove_rule(&mut self, id: u64) -> Option<RuleRecord> {
        let rule = self.rules.remove(&id)?;
        if let Some(set) = self.by_agent.get_mut(&rule.agent_id) {
            set.remove(&id);
            if set.is_empty() {
                self.by_agent.remove(&rule.agent_id);
                self.watched
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&rule.agent_id);
            }
        }
        let before = self.firing.len();
        self.firing.retain(|(rule_id, _), _| *rule_id != id);
        self.firing_changed |= self.firing.len() != before;
        self.tag_rules.remove(&id);
        if self.tag_agents.remove(&id).is_some() {
            self.rewatch();
        }
        Some(rule)
    }

    /// The enabled rules that watch `agent_id`: its own, and those of the
    /// tags it carries.
    fn rules_of_agent(&self, agent_id: u64) -> Vec<RuleRecord> {
        let tagged = self
            .tag_agents
            .iter()
            .filter(|(_, agents)| agents.contains(&agent_id))
            .map(|(id, _)| id);
        self.by_agent
            .get(&agent_id)
            .into_iter()
            .flatten()
            .chain(tagged)
            .filter_map(|id| self.rules.get(id))
            .filter(|r| r.enabled)
            .cloned()
            .collect()
    }

    /// Recomputes the agents ingest must queue: those with rules of their
    /// own and those a tag rule watches.
    fn rewatch(&self) {
        let all: HashSet<u64> = self
            .by_agent
            .keys()
            .chain(self.tag_agents.values().flatten())
            .copied()
            .collect();
        *self.watched.write().unwrap_or_else(PoisonError::into_inner) = all;
    }
}

/// The key of the state of (`rule`, `agent_id`, `label`) in
/// `EvalState::firing` and the catalog's rule states: the label, prefixed
/// with the agent for a rule that targets a tag (one state per agent).
pub(crate) fn state_key(rule: &RuleRecord, agent_id: u64, label: Option<&str>) -> String {
    if rule.agent_id == TAG_RULE_AGENT {
        format!("{agent_id}:{}", label_key(label))
    } else {
        label_key(label).to_string()
    }
}

/// `container_restarts` of `rule` over `[since, latest]` from the engine's
/// stored restart counts (1 m tier), for each container of the latest
/// report (of its label, if named). A failed query is logged and observes
/// nothing: the next report tries again.
fn restarts_from_engine(
    engine: &Engine,
    rule: &RuleRecord,
    agent_id: u64,
    latest: &storage::model::Report,
    since: i64,
) -> Vec<evaluator::Observation> {
    let (Some(comparison), Some(threshold)) = (rule.comparison, rule.threshold) else {
        return Vec::new();
    };
    let req = QueryRequest {
        agent: agent_id,
        metrics: vec!["container.restarts".to_owned()],
        label_filter: rule.label.clone().map(|l| ("name".to_owned(), l)),
        start_ms: since,
        stop_ms: latest.ts_ms + 1,
        tier: Some(Tier::Min1),
        interval_ms: None,
        max_points: 0,
    };
    let result = match engine.query(&req) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, rule_id = rule.id, agent_id, "cannot read restart counts");
            return Vec::new();
        }
    };
    latest
        .containers
        .iter()
        .flatten()
        .filter(|c| rule.label.as_deref().is_none_or(|l| l == c.name))
        .map(|c| {
            let value = result
                .series
                .iter()
                .find(|s| s.key.label("name") == Some(c.name.as_str()))
                .map_or(0.0, |s| evaluator::restarts_in_points(&s.points));
            let breached = comparison.breached(value, threshold);
            evaluator::Observation {
                label: Some(c.name.clone()),
                value,
                breached,
                held: breached,
            }
        })
        .collect()
}

/// The agent and the label of a tag rule's state key.
fn split_tag_key(key: &str) -> Option<(u64, Option<&str>)> {
    let (agent, label) = key.split_once(':')?;
    Some((agent.parse().ok()?, (!label.is_empty()).then_some(label)))
}

/// The firing labels of every rule in `state`, each rule's sorted by label.
fn firing_by_rule(state: &EvalState) -> FiringByRule {
    let mut out = FiringByRule::new();
    for ((rule_id, key), f) in &state.firing {
        let (agent_id, label) = match state.tag_rules.get(rule_id).and(split_tag_key(key)) {
            Some((agent, label)) => (Some(agent), label.map(str::to_string)),
            None => (None, (!key.is_empty()).then(|| key.clone())),
        };
        out.entry(*rule_id).or_default().push(FiringLabel {
            agent_id,
            label,
            since_ms: f.since_ms,
            last_notified_ms: f.last_notified_ms,
            value: f.value,
        });
    }
    for labels in out.values_mut() {
        labels.sort_by(|a, b| (a.agent_id, &a.label).cmp(&(b.agent_id, &b.label)));
    }
    out
}

/// A notification to send once its event is recorded.
struct Pending {
    owner_id: u64,
    event: AlertRecord,
    plan: Plan,
    /// When the (rule, label) started firing.
    since_ms: i64,
}

impl Alerting {
    /// Loads rules and firing states from the catalog and starts the
    /// evaluator thread.
    pub fn start(
        config: &Config,
        catalog: Arc<Catalog>,
        ring: Arc<Ring>,
        engine: Option<Arc<crate::store::Tsdb>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Alerting, CatalogError> {
        let mut state = EvalState {
            tag_rules: catalog.rule_tags()?,
            ..EvalState::default()
        };
        for rule in catalog.all_rules()? {
            state.insert_rule(rule);
        }
        for (rule_id, label, firing) in catalog.firing_states()? {
            state.firing.insert((rule_id, label), firing);
        }
        // Deliveries in flight when the server stopped will not finish:
        // say so in the history rather than leave them pending forever.
        let interrupted =
            catalog.fail_pending_deliveries("interrupted by a server restart before delivery")?;
        if interrupted > 0 {
            tracing::warn!(
                events = interrupted,
                "alert notifications were interrupted by the last shutdown"
            );
        }
        let watched = state.watched.clone();
        let firing = tokio::sync::watch::Sender::new(Arc::new(firing_by_rule(&state)));
        let inner = Arc::new(Inner {
            started_ms: clock.now_ms(),
            notifier: Arc::new(Notifier::new(config, &catalog, clock.clone())),
            catalog,
            ring,
            engine,
            clock,
            keep_events: config.alert_history_limit,
            state: Mutex::new(state),
            firing,
            maintenance: RwLock::default(),
            rule_tags: RwLock::default(),
        });
        {
            let mut state = inner.lock();
            // A tag rule's agents as they are now; states of agents that
            // lost the tag while the server was down resolve.
            let (pending, _) = inner.retarget(&mut state, inner.clock.now_ms())?;
            inner.publish(&mut state);
            drop(state);
            inner.send(pending);
        }
        let (tx, rx) = mpsc::channel();
        let period =
            Duration::from_millis(u64::try_from(config.offline_check_interval_ms).unwrap_or(5_000));
        let thread = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("alert-evaluator".into())
                .spawn(move || inner.run(&rx, period))
                .map_err(|e| tracing::error!(error = %e, "cannot start the alert evaluator"))
                .ok()
        };
        Ok(Alerting {
            inner,
            watched,
            queue: Some(tx),
            thread,
        })
    }

    /// For ingest: `agent_id` has new reports in the ring. Never blocks.
    pub fn reports_arrived(&self, agent_id: u64) {
        let watched = self
            .watched
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&agent_id);
        if watched && let Some(queue) = &self.queue {
            // The thread is gone only while shutting down.
            let _ = queue.send(Command::Reports(agent_id));
        }
    }

    /// Resolves once every report queued before this call is evaluated (the
    /// notifications may still be in flight). For tests and shutdown.
    pub async fn settled(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Some(queue) = &self.queue
            && queue.send(Command::Barrier(tx)).is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Runs the offline check at `now_ms` (the thread calls this
    /// periodically; tests call it after moving the clock). Blocking.
    pub fn tick(&self, now_ms: i64) {
        self.inner.tick(now_ms);
    }

    /// The server has a Telegram bot token.
    pub fn telegram_configured(&self) -> bool {
        self.inner.notifier.telegram_configured()
    }

    pub fn notifier(&self) -> &Arc<Notifier> {
        &self.inner.notifier
    }

    /// The labels of rule `id` that are firing now, from the last published
    /// snapshot: never waits for the evaluator (safe on an async worker).
    pub fn firing_of(&self, id: u64) -> Vec<FiringLabel> {
        self.inner
            .firing
            .borrow()
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    /// Stores a new rule and evaluates it at once. Blocking.
    pub fn create_rule(&self, rule: &RuleRecord) -> Result<RuleRecord, CatalogError> {
        let mut state = self.inner.lock();
        let rule = self.inner.catalog.create_rule(rule)?;
        state.insert_rule(rule.clone());
        let now = self.inner.clock.now_ms();
        let pending = self.inner.evaluate_rule(&mut state, &rule, now);
        self.inner.publish(&mut state);
        drop(state);
        self.inner.send(pending);
        Ok(rule)
    }

    /// Replaces rule `rule.id` of `rule.owner_id` and evaluates it at once.
    /// When it now watches something else (agent, metric, label) or is
    /// disabled, its firing state is dropped without a "resolved" event.
    /// False when missing or someone else's. Blocking.
    pub fn update_rule(&self, rule: &RuleRecord) -> Result<bool, CatalogError> {
        let mut state = self.inner.lock();
        let Some(old) = state.rules.get(&rule.id).cloned() else {
            return Ok(false);
        };
        if old.owner_id != rule.owner_id {
            return Ok(false);
        }
        let reset = !rule.enabled
            || old.agent_id != rule.agent_id
            || old.metric != rule.metric
            || old.label != rule.label;
        if !self.inner.catalog.update_rule(rule, reset)? {
            return Ok(false);
        }
        // Keep the firing state when the rule still watches the same thing.
        let kept: Vec<((u64, String), FiringRecord)> = if reset {
            Vec::new()
        } else {
            state
                .firing
                .iter()
                .filter(|((id, _), _)| *id == rule.id)
                .map(|(k, f)| (k.clone(), *f))
                .collect()
        };
        let tag = state.tag_rules.get(&rule.id).cloned();
        state.remove_rule(rule.id);
        state.firing_changed |= !kept.is_empty();
        state.firing.extend(kept);
        state.insert_rule(rule.clone());
        let now = self.inner.clock.now_ms();
        let mut pending = Vec::new();
        if let Some(tag) = tag {
            state.tag_rules.insert(rule.id, tag);
            pending.extend(self.inner.retarget_logged(&mut state, now));
        }
        pending.extend(self.inner.evaluate_rule(&mut state, rule, now));
        self.inner.publish(&mut state);
        drop(state);
        self.inner.send(pending);
        Ok(true)
    }

    /// Deletes rule `id` of `owner_id` and its state. Blocking.
    pub fn delete_rule(&self, owner_id: u64, id: u64) -> Result<bool, CatalogError> {
        let mut state = self.inner.lock();
        if !self.inner.catalog.delete_rule(owner_id, id)? {
            return Ok(false);
        }
        state.remove_rule(id);
        self.inner.publish_tags(&state);
        self.inner.publish(&mut state);
        Ok(true)
    }

    /// Agent `agent_id` of `owner_id` was deleted: its rules, their state and
    /// its alert history go too. Blocking.
    pub fn agent_deleted(&self, owner_id: u64, agent_id: u64) -> Result<(), CatalogError> {
        let mut state = self.inner.lock();
        for id in self.inner.catalog.delete_rules_of_agent(agent_id)? {
            state.remove_rule(id);
        }
        // Tag rules forget it without a "resolved": its history goes too.
        self.inner.forget_agent(&mut state, agent_id)?;
        self.inner.publish(&mut state);
        self.inner
            .catalog
            .delete_alerts_where(owner_id, |e| e.agent_id == agent_id)?;
        Ok(())
    }
}

impl Drop for Alerting {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the alert evaluator thread panicked");
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, EvalState> {
        // Each update of the state is a single insert/remove after its
        // catalog commit: a panic cannot leave it half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the firing labels of `state` for readers, when they changed.
    /// Called before the state's mutex is released, so snapshots are
    /// published in the order of the changes.
    fn publish(&self, state: &mut EvalState) {
        if std::mem::take(&mut state.firing_changed) {
            self.firing.send_replace(Arc::new(firing_by_rule(state)));
        }
    }

    fn run(&self, queue: &mpsc::Receiver<Command>, period: Duration) {
        let mut next_tick = Instant::now() + period;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let first = match queue.recv_timeout(wait) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if let Some(first) = first {
                // Drain what else is queued: one evaluation per agent.
                let mut agents = BTreeSet::new();
                let mut barriers = Vec::new();
                for command in std::iter::once(first).chain(queue.try_iter()) {
                    match command {
                        Command::Reports(agent) => {
                            agents.insert(agent);
                        }
                        Command::Barrier(tx) => barriers.push(tx),
                    }
                }
                for agent in agents {
                    self.on_reports(agent);
                }
                for tx in barriers {
                    let _ = tx.send(());
                }
            }
            if Instant::now() >= next_tick {
                self.tick(self.clock.now_ms());
                next_tick = Instant::now() + period;
            }
        }
    }

    /// Evaluates every enabled rule of `agent_id` after new reports.
    fn on_reports(&self, agent_id: u64) {
        let now = self.clock.now_ms();
        let mut state = self.lock();
        let mut pending = Vec::new();
        for rule in state.rules_of_agent(agent_id) {
            // A report just arrived: an offline rule can only resolve, so
            // only a firing one needs its (catalog) check.
            if rule.metric == AlertMetric::Offline
                && !state
                    .firing
                    .contains_key(&(rule.id, state_key(&rule, agent_id, None)))
            {
                continue;
            }
            pending.extend(self.evaluate_target(&mut state, &rule, agent_id, now));
        }
        self.publish(&mut state);
        drop(state);
        self.send(pending);
    }

    /// The offline check of every enabled offline rule.
    fn tick(&self, now: i64) {
        let mut state = self.lock();
        let rules: Vec<RuleRecord> = state
            .rules
            .values()
            .filter(|r| r.enabled && r.metric == AlertMetric::Offline)
            .cloned()
            .collect();
        let mut pending = Vec::new();
        for rule in rules {
            pending.extend(self.evaluate_rule(&mut state, &rule, now));
        }
        self.publish(&mut state);
        drop(state);
        self.send(pending);
        // Quiet hours that ended since the last tick: their summaries.
        self.notifier.flush_summaries(now);
    }

    fn send(&self, pending: Vec<Pending>) {
        for p in pending {
            self.notifier
                .dispatch(p.owner_id, &p.event, &p.plan, p.since_ms);
        }
    }

    /// Evaluates one rule now, on each agent it watches, and applies the
    /// transitions.
    fn evaluate_rule(&self, state: &mut EvalState, rule: &RuleRecord, now: i64) -> Vec<Pending> {
        if rule.agent_id != TAG_RULE_AGENT {
            return self.evaluate_target(state, rule, rule.agent_id, now);
        }
        let agents = state.tag_agents.get(&rule.id).cloned().unwrap_or_default();
        let mut pending = Vec::new();
        for agent_id in agents {
            pending.extend(self.evaluate_target(state, rule, agent_id, now));
        }
        pending
    }

    /// Evaluates `rule` on `agent_id` now and applies the transitions.
    /// Errors are logged: the next report retries.
    fn evaluate_target(
        &self,
        state: &mut EvalState,
        rule: &RuleRecord,
        agent_id: u64,
        now: i64,
    ) -> Vec<Pending> {
        match self.try_evaluate_target(state, rule, agent_id, now) {
            Ok(pending) => pending,
            Err(e) => {
                tracing::error!(error = %e, rule_id = rule.id, agent_id, "cannot evaluate alert rule");
                Vec::new()
            }
        }
    }

    fn try_evaluate_target(
        &self,
        state: &mut EvalState,
        rule: &RuleRecord,
        agent_id: u64,
        now: i64,
    ) -> Result<Vec<Pending>, CatalogError> {
        if !rule.enabled {
            return Ok(Vec::new());
        }
        let mut pending = Vec::new();
        if rule.metric == AlertMetric::Offline {
            let Some(agent) = self.catalog.agent(agent_id)? else {
                return Ok(pending);
            };
            // Never seen: it cannot go offline yet.
            let Some(last_seen) = agent.last_seen_ms else {
                return Ok(pending);
            };
            let interval_ms = agent
                .interval_ms
                .filter(|i| *i > 0)
                .unwrap_or(DEFAULT_INTERVAL_MS);
            let limit_ms = match rule.duration_s {
                Some(s) if s > 0 => i64::from(s) * 1000,
                _ => OFFLINE_INTERVALS * interval_ms,
            };
            let silent_ms = (now - last_seen).max(0);
            // A new firing needs the silence to have been observed while the
            // server ran: after downtime, an agent not heard from since the
            // start gets one full limit plus its longest retry wait (it may
            // be waiting out a retry when the server comes back) before it
            // counts as offline. A rule already firing keeps counting from
            // the real last report (no false "resolved").
            let firing = state
                .firing
                .contains_key(&(rule.id, state_key(rule, agent_id, None)));
            let breached = if firing || last_seen >= self.started_ms {
                silent_ms > limit_ms
            } else {
                now - self.started_ms > limit_ms + agent_retry_max_ms(interval_ms)
            };
            pending.extend(self.step(
                state,
                rule,
                agent_id,
                None,
                breached,
                breached,
                silent_ms as f64 / 1000.0,
                limit_ms as f64 / 1000.0,
                now,
                &agent.name,
            )?);
            return Ok(pending);
        }
        let Some(latest) = self.ring.latest(agent_id) else {
            return Ok(pending);
        };
        let since = latest.ts_ms - i64::from(rule.duration_s.unwrap_or(0)) * 1000;
        let window = if rule.duration_s.unwrap_or(0) > 0 {
            self.ring.snapshot(agent_id, since)
        } else {
            vec![latest.clone()]
        };
        let long_restarts = rule.metric == AlertMetric::ContainerRestarts
            && window.first().is_some_and(|oldest| oldest.ts_ms > since);
        let observations = match &self.engine {
            // The ring does not reach back to the window's start: counts
            // from the stored restart counts.
            Some(store) if long_restarts => {
                restarts_from_engine(&store.engine(), rule, agent_id, &latest, since)
            }
            _ => observe(rule, &window),
        };
        let gone = self.gone_labels(state, rule, agent_id, &observations);
        if observations.is_empty() && gone.is_empty() {
            return Ok(pending);
        }
        let mut agent_name = None;
        for obs in observations {
            let key = (rule.id, state_key(rule, agent_id, obs.label.as_deref()));
            let firing = state.firing.contains_key(&key);
            // Nothing to do: the common case, decided without a catalog read.
            if !firing && !obs.held {
                continue;
            }
            if firing && obs.breached {
                let f = state.firing[&key];
                if now - f.last_notified_ms < i64::from(rule.cooldown_s.max(MIN_COOLDOWN_S)) * 1000
                {
                    continue;
                }
            }
            if agent_name.is_none() {
                agent_name = Some(
                    self.catalog
                        .agent(agent_id)?
                        .map_or_else(|| format!("agent {agent_id}"), |a| a.name),
                );
            }
            pending.extend(self.step(
                state,
                rule,
                agent_id,
                obs.label.as_deref(),
                obs.breached,
                obs.held,
                obs.value,
                rule.threshold.unwrap_or(0.0),
                now,
                agent_name.as_deref().unwrap_or(""),
            )?);
        }
        // Containers removed (and units no longer listed) while firing:
        // resolved, with no reading (0).
        for label in gone {
            if agent_name.is_none() {
                agent_name = Some(
                    self.catalog
                        .agent(agent_id)?
                        .map_or_else(|| format!("agent {agent_id}"), |a| a.name),
                );
            }
            pending.extend(self.step(
                state,
                rule,
                agent_id,
                Some(&label),
                false,
                false,
                0.0,
                rule.threshold.unwrap_or(0.0),
                now,
                agent_name.as_deref().unwrap_or(""),
            )?);
        }
        Ok(pending)
    }

    /// The firing labels of `rule` on `agent_id` that `observations` no
    /// longer carry and whose container (or unit) is gone from the agent's
    /// lists ([`evaluator::gone`]): a removed container's state would
    /// otherwise stay firing for ever. A named `container_down` rule always
    /// observes its container (absent reads as down), so it keeps firing
    /// until the container runs again or the rule changes.
    fn gone_labels(
        &self,
        state: &EvalState,
        rule: &RuleRecord,
        agent_id: u64,
        observations: &[evaluator::Observation],
    ) -> Vec<String> {
        let tag_rule = rule.agent_id == TAG_RULE_AGENT;
        let unobserved: Vec<String> = state
            .firing
            .keys()
            .filter(|(id, _)| *id == rule.id)
            .filter_map(|(_, key)| {
                let label = if tag_rule {
                    match split_tag_key(key)? {
                        (agent, Some(label)) if agent == agent_id => label,
                        _ => return None,
                    }
                } else {
                    (!key.is_empty()).then_some(key.as_str())?
                };
                let observed = observations
                    .iter()
                    .any(|o| o.label.as_deref() == Some(label));
                (!observed).then(|| label.to_owned())
            })
            .collect();
        if unobserved.is_empty() {
            return unobserved;
        }
        let window = self.ring.snapshot(agent_id, i64::MIN);
        unobserved
            .into_iter()
            .filter(|label| evaluator::gone(rule.metric, &window, label))
            .collect()
    }

    /// Applies one observation of (rule, agent, label): fire, renotify
    /// after the cooldown, resolve, or nothing. `agent_id` is the rule's
    /// own, or for a rule that targets a tag the agent observed.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        state: &mut EvalState,
        rule: &RuleRecord,
        agent_id: u64,
        label: Option<&str>,
        breached: bool,
        held: bool,
        value: f64,
        threshold: f64,
        now: i64,
        agent_name: &str,
    ) -> Result<Option<Pending>, CatalogError> {
        let key = (rule.id, state_key(rule, agent_id, label));
        let current = state.firing.get(&key).copied();
        let (next, event_state) = match current {
            None if held && self.in_maintenance(agent_id, now) => return Ok(None),
            None if held => (
                Some(FiringRecord {
                    since_ms: now,
                    last_notified_ms: now,
                    value,
                }),
                AlertState::Firing,
            ),
            Some(f) if breached => {
                if now - f.last_notified_ms < i64::from(rule.cooldown_s.max(MIN_COOLDOWN_S)) * 1000
                {
                    return Ok(None);
                }
                (
                    Some(FiringRecord {
                        last_notified_ms: now,
                        value,
                        ..f
                    }),
                    AlertState::Firing,
                )
            }
            Some(_) => (None, AlertState::Resolved),
            None => return Ok(None),
        };
        let plan = self
            .notifier
            .plan(&self.catalog, rule.owner_id, rule.id, now)?;
        let since_ms = current.map_or(now, |f| f.since_ms);
        let event = AlertRecord {
            id: 0,
            rule_id: rule.id,
            rule_name: rule.name.clone(),
            agent_id,
            agent_name: agent_name.to_string(),
            metric: rule.metric,
            label: label.map(str::to_string),
            state: event_state,
            value,
            threshold,
            comparison: rule.comparison,
            ts_ms: now,
            deliveries: plan.deliveries.clone(),
        };
        let stored = self.catalog.record_transition(
            rule.id,
            &key.1,
            next,
            Some((rule.owner_id, event)),
            self.keep_events,
        )?;
        match next {
            Some(f) => state.firing.insert(key, f),
            None => state.firing.remove(&key),
        };
        state.firing_changed = true;
        Ok(stored.map(|event| Pending {
            owner_id: rule.owner_id,
            event,
            plan,
            since_ms,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServeArgs;
    use storage::clock::ManualClock;

    /// Regression: `firing_of`, which `GET /api/rules` calls on an async
    /// worker once per rule, locked the evaluator's mutex, which the
    /// evaluator holds across catalog commits (fsyncs) and offline checks.
    #[test]
    fn firing_of_answers_while_the_evaluator_holds_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::resolve(ServeArgs::default()).unwrap();
        let catalog = Arc::new(Catalog::open_in(dir.path()).unwrap());
        let alerting = Alerting::start(
            &config,
            catalog,
            Arc::new(Ring::new(900_000)),
            None,
            Arc::new(ManualClock::new(1_000)),
        )
        .unwrap();
        {
            // As a transition does: change the state, then publish it.
            let mut state = alerting.inner.lock();
            state.firing.insert(
                (7, "/data".to_string()),
                FiringRecord {
                    since_ms: 500,
                    last_notified_ms: 600,
                    value: 95.0,
                },
            );
            state.firing_changed = true;
            alerting.inner.publish(&mut state);
        }

        let held = alerting.inner.lock(); // the evaluator, mid-commit
        let (tx, rx) = std::sync::mpsc::channel();
        let got = std::thread::scope(|s| {
            s.spawn(|| tx.send(alerting.firing_of(7)));
            let got = rx.recv_timeout(Duration::from_secs(5));
            drop(held);
            got
        })
        .expect("firing_of answered while the evaluator held its mutex");
        assert_eq!(
            got,
            [FiringLabel {
                agent_id: None,
                label: Some("/data".into()),
                since_ms: 500,
                last_notified_ms: 600,
                value: 95.0,
            }]
        );
        assert!(alerting.firing_of(8).is_empty());

        // Removing the rule's state publishes its absence.
        let mut state = alerting.inner.lock();
        state.firing.clear();
        state.firing_changed = true;
        alerting.inner.publish(&mut state);
        drop(state);
        assert!(alerting.firing_of(7).is_empty());
    }
}
