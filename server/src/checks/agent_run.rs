//! Checks run by an agent instead of the server.
//!
//! - Where a check runs is in the catalog's `check_runners` table; the
//!   scheduler keeps it in each entry and does not start a check that an
//!   agent runs.
//! - The agent learns its list from the version in each ingest answer
//!   ([`Checks::agent_version`]): a hash of the ids and change times of its
//!   enabled checks, the same after a restart, so an agent fetches
//!   `GET /api/agent/checks` ([`Checks::agent_list`]) only when it changed.
//! - Results come in the agent's reports: checked first
//!   ([`Checks::check_agent_results`], a 422 naming the field, nothing
//!   stored), then recorded once the reports are durable
//!   ([`Checks::record_agent_results`]) exactly as a run of the server's:
//!   the same series, state changes, retries and alert evaluation.
//! - An agent that sends no result for [`stale_after`] leaves its checks
//!   `pending` (unknown), neither down nor up: no event, no alert. Its own
//!   offline rule tells that the agent is gone.
//! - When the agent is deleted, its checks fall back to the server.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use storage::catalog::CheckRecord;
use storage::model::{
    AgentCheck, AgentCheckList, AgentCheckResult, CheckState, MAX_AGENT_CHECKS,
    MAX_CHECK_ERROR_CHARS, MAX_CHECK_LATENCY_MS, MAX_CHECK_RESULTS,
};
use tokio::time::Instant;

use super::probe::Probe;
use super::{Checks, Entry, Status, phase, record_run};
use crate::error::ApiError;
use crate::ingest::MAX_FUTURE_MS;
use crate::outbound::Caller;

/// How long an agent-run check may go without a result before its state
/// is unknown (`pending`): three of its intervals and a minute (the agent
/// sends results with its next report, every few seconds).
pub fn stale_after(interval_s: u32) -> i64 {
    i64::from(interval_s) * 3_000 + 60_000
}

fn invalid(field: String, problem: &str) -> ApiError {
    ApiError::Invalid(format!("{field}: {problem}"))
}

impl Checks {
    /// A check was created or replaced with its runner (`None`: the
    /// server). Like [`Checks::upsert`].
    pub fn upsert_on(&self, record: CheckRecord, caller: Caller, runner: Option<u64>) {
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
        let mut entry = Entry::new(
            &self.inner.guard,
            std::sync::Arc::new(record),
            caller,
            due,
            status,
        );
        entry.runner = runner;
        entry.heard_ms = self.inner.clock.now_ms();
        let mut entries = self.inner.lock();
        entries.insert(id, entry);
        self.inner.lists_changed();
        drop(entries);
        self.inner.wake.notify_one();
    }

    /// The agent that runs check `id`; `None`: the server (or no such check).
    pub fn runner(&self, id: u64) -> Option<u64> {
        self.inner.lock().get(&id).and_then(|e| e.runner)
    }

    /// The enabled checks agent `agent_id` runs, by id, and their version.
    pub fn agent_list(&self, agent_id: u64) -> AgentCheckList {
        // The version first: a change between the two makes the agent
        // fetch again, never keep an old list under a new version.
        let version = self.agent_version(agent_id);
        let entries = self.inner.lock();
        let mut checks: Vec<AgentCheck> = entries
            .values()
            .filter(|e| e.runner == Some(agent_id) && e.record.spec.enabled)
            .map(|e| AgentCheck {
                id: e.record.id,
                spec: e.record.spec.clone(),
            })
            .collect();
        drop(entries);
        checks.sort_by_key(|c| c.id);
        checks.truncate(MAX_AGENT_CHECKS);
        AgentCheckList { version, checks }
    }

    /// The version of agent `agent_id`'s list: it changes when one of its
    /// checks is added, changed, removed, enabled or disabled. Asked with
    /// every report, so kept until the next change.
    pub fn agent_version(&self, agent_id: u64) -> String {
        // The entries stay locked until the version is kept (see
        // `Inner::lists_changed`).
        let entries = self.inner.lock();
        let mut versions = self
            .inner
            .list_versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(version) = versions.get(&agent_id) {
            return version.clone();
        }
        let mut ids: Vec<(u64, i64)> = entries
            .values()
            .filter(|e| e.runner == Some(agent_id) && e.record.spec.enabled)
            .map(|e| (e.record.id, e.record.updated_ms))
            .collect();
        ids.sort_unstable();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        ids.hash(&mut h);
        let version = format!("{:016x}", h.finish());
        versions.insert(agent_id, version.clone());
        version
    }

    /// Agent `agent_id` was deleted: its checks run on the server from now
    /// on (the catalog dropped their runner in the same transaction).
    pub fn agent_deleted(&self, agent_id: u64) {
        let mut entries = self.inner.lock();
        let now = Instant::now();
        for entry in entries.values_mut() {
            if entry.runner == Some(agent_id) {
                entry.runner = None;
                entry.due = now + phase(entry.record.id, Duration::from_secs(1));
            }
        }
        self.inner.lists_changed();
        drop(entries);
        self.inner.wake.notify_one();
    }

    /// Checks the results agent `agent_id` sent, at server time `now_ms`:
    /// a 422 naming the first bad field.
    pub fn check_agent_results(
        &self,
        agent_id: u64,
        results: &[AgentCheckResult],
        now_ms: i64,
        raw_retention_ms: i64,
    ) -> Result<(), ApiError> {
        if results.len() > MAX_CHECK_RESULTS {
            return Err(invalid(
                "check_results".into(),
                &format!(
                    "holds {} results; at most {MAX_CHECK_RESULTS} per request",
                    results.len()
                ),
            ));
        }
        let entries = self.inner.lock();
        for (i, r) in results.iter().enumerate() {
            let at = |field: &str| format!("check_results[{i}].{field}");
            if entries.get(&r.check_id).and_then(|e| e.runner) != Some(agent_id) {
                return Err(invalid(
                    at("check_id"),
                    &format!("check {} is not run by this agent", r.check_id),
                ));
            }
            if r.ts_ms > now_ms + MAX_FUTURE_MS || r.ts_ms < now_ms - raw_retention_ms {
                return Err(invalid(
                    at("ts_ms"),
                    "must be within the raw retention and at most 5 minutes ahead",
                ));
            }
            if let Some(ms) = r.latency_ms
                && !(ms.is_finite() && (0.0..=MAX_CHECK_LATENCY_MS).contains(&ms))
            {
                return Err(invalid(
                    at("latency_ms"),
                    &format!("must be 0 to {MAX_CHECK_LATENCY_MS}"),
                ));
            }
            if let Some(error) = &r.error
                && (error.chars().count() > MAX_CHECK_ERROR_CHARS
                    || error.chars().any(char::is_control))
            {
                return Err(invalid(
                    at("error"),
                    &format!("at most {MAX_CHECK_ERROR_CHARS} characters, no control characters"),
                ));
            }
        }
        Ok(())
    }

    /// Records results [`Checks::check_agent_results`] accepted, oldest
    /// first, each like a run of the server's. A result for a check that
    /// moved away from the agent meanwhile is dropped.
    pub async fn record_agent_results(&self, agent_id: u64, mut results: Vec<AgentCheckResult>) {
        results.sort_by_key(|r| r.ts_ms);
        let now_ms = self.inner.clock.now_ms();
        for r in results {
            {
                let mut entries = self.inner.lock();
                match entries.get_mut(&r.check_id) {
                    Some(e) if e.runner == Some(agent_id) => e.heard_ms = now_ms,
                    _ => continue,
                }
            }
            let probe = Probe {
                ok: r.ok,
                latency_ms: r.latency_ms,
                error: if r.ok {
                    None
                } else {
                    Some(r.error.unwrap_or_else(|| "check failed".into()))
                },
            };
            record_run(self.inner.clone(), r.check_id, probe, None, r.ts_ms).await;
        }
    }
}

/// The state shown for `entry` at `now_ms`: unknown (`pending`) while the
/// agent that runs it sends nothing.
pub(super) fn shown_state(entry: &Entry, now_ms: i64) -> Status {
    let mut status = entry.status.clone();
    if entry.runner.is_some()
        && entry.record.spec.enabled
        && now_ms - entry.heard_ms > stale_after(entry.record.spec.interval_s)
    {
        status.state = CheckState::Pending;
    }
    status
}
