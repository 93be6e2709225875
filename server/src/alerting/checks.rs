//! Alert rules on uptime checks: `check_down`, `check_latency_ms` and
//! `check_cert_days`. Such a rule is stored like any other
//! ([`RuleRecord`], unchanged layout) with `agent_id` = the check's engine
//! id ([`crate::checks::series_id`]), so the evaluator's per-agent index
//! finds it; the check id itself is in the catalog's `rule_checks` side
//! table. The scheduler hands every run's outcome to
//! [`Alerting::check_observed`], which applies the same transitions
//! (fire, renotify after the cooldown, resolve), history and notifications
//! as agent rules, through the same `step`.

use storage::catalog::{CatalogError, RuleRecord};
use storage::model::{AlertMetric, CheckState, Comparison};

use std::collections::HashMap;
use std::sync::PoisonError;

use super::{Alerting, Inner, Pending};

impl Inner {
    /// No new firing inside a maintenance window: a rule that fires keeps
    /// firing (and resolves) as usual.
    pub(super) fn in_maintenance(&self, agent_id: u64, now_ms: i64) -> bool {
        self.maintenance
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&agent_id)
            .is_some_and(|w| w.iter().any(|(s, e)| (*s..*e).contains(&now_ms)))
    }
}

/// What a check's latest run says, for its rules.
#[derive(Debug, Clone)]
pub struct CheckObservation {
    pub check_id: u64,
    /// The check's name: the "agent name" of its alert events.
    pub name: String,
    pub ts_ms: i64,
    pub state: CheckState,
    /// Recent runs, oldest first: (time, latency of an up run).
    pub recent: Vec<(i64, Option<f64>)>,
    pub cert_days: Option<f64>,
}

impl Alerting {
    /// Replaces the maintenance windows (agent or check engine id → windows).
    pub fn set_maintenance(&self, windows: HashMap<u64, Vec<(i64, i64)>>) {
        *self
            .inner
            .maintenance
            .write()
            .unwrap_or_else(PoisonError::into_inner) = windows;
    }

    /// Whether `agent_id` (an agent, or a check's engine id) is in a
    /// maintenance window at `now_ms`.
    pub fn in_maintenance(&self, agent_id: u64, now_ms: i64) -> bool {
        self.inner.in_maintenance(agent_id, now_ms)
    }

    /// Stores a new rule on check `check_id` (its `agent_id` must be the
    /// check's engine id). It is evaluated after the check's next run.
    /// Blocking.
    pub fn create_check_rule(
        &self,
        rule: &RuleRecord,
        check_id: u64,
    ) -> Result<RuleRecord, CatalogError> {
        let mut state = self.inner.lock();
        let rule = self.inner.catalog.create_check_rule(rule, check_id)?;
        state.insert_rule(rule.clone());
        self.inner.publish(&mut state);
        Ok(rule)
    }

    /// Evaluates the enabled rules of a check after a run. Blocking
    /// (catalog commits on transitions).
    pub fn check_observed(&self, obs: &CheckObservation) {
        let inner = &self.inner;
        let now = inner.clock.now_ms();
        let mut state = inner.lock();
        let mut pending: Vec<Pending> = Vec::new();
        for rule in state.rules_of_agent(crate::checks::series_id(obs.check_id)) {
            let threshold = rule.threshold.unwrap_or(0.0);
            let cmp = rule.comparison.unwrap_or(Comparison::Gt);
            let (breached, held, value) = match rule.metric {
                AlertMetric::CheckDown => {
                    let down = obs.state == CheckState::Down;
                    (down, down, if down { 1.0 } else { 0.0 })
                }
                AlertMetric::CheckLatencyMs => {
                    let Some(&(_, latest)) = obs.recent.last() else {
                        continue;
                    };
                    // A failed run has no latency: it neither breaches nor resolves.
                    let Some(latest) = latest else { continue };
                    let breached = cmp.breached(latest, threshold);
                    let window_ms = i64::from(rule.duration_s.unwrap_or(0)) * 1000;
                    let since = obs.ts_ms - window_ms;
                    let covered = obs.recent.first().is_some_and(|(t, _)| *t <= since);
                    let held =
                        breached
                            && (window_ms == 0
                                || (covered
                                    && obs.recent.iter().filter(|(t, _)| *t >= since).all(
                                        |(_, l)| l.is_none_or(|l| cmp.breached(l, threshold)),
                                    )));
                    (breached, held, latest)
                }
                AlertMetric::CheckCertDays => {
                    let Some(days) = obs.cert_days else { continue };
                    let breached = cmp.breached(days, threshold);
                    (breached, breached, days)
                }
                _ => continue,
            };
            match inner.step(
                &mut state,
                &rule,
                rule.agent_id,
                None,
                breached,
                held,
                value,
                threshold,
                now,
                &obs.name,
            ) {
                Ok(p) => pending.extend(p),
                Err(e) => {
                    tracing::error!(error = %e, rule_id = rule.id, "cannot evaluate a check rule")
                }
            }
        }
        inner.publish(&mut state);
        drop(state);
        inner.send(pending);
    }
}
