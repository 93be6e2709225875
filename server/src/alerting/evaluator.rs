//! What a rule sees in a report, and whether it is breached. Pure functions
//! over [`Report`]s: no I/O, no clock, unit-tested here.
//!
//! A duration rule ("for 2 minutes") is *held* when the latest report
//! breaches and every report of the same label back to one at least the
//! duration older breaches too, i.e. the breach has been continuous (as far as
//! the ring buffer saw) for the whole window. A single spike never holds.

use std::sync::Arc;

use storage::catalog::RuleRecord;
use storage::model::{AlertMetric, Comparison, Report};

/// One label's reading of a rule against the latest report.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Mount / interface / sensor, `None` for whole-machine metrics.
    pub label: Option<String>,
    pub value: f64,
    /// The latest value breaches the threshold.
    pub breached: bool,
    /// The breach has lasted for the rule's whole duration (equals
    /// `breached` without a duration).
    pub held: bool,
}

/// The values `metric` has in `report`, one per label, restricted to `label`
/// when given. Empty when the report does not carry the metric.
pub fn values(
    report: &Report,
    metric: AlertMetric,
    label: Option<&str>,
) -> Vec<(Option<String>, f64)> {
    let wanted = |l: &str| label.is_none_or(|w| w == l);
    let one = |v: Option<f64>| v.map(|v| vec![(None, v)]).unwrap_or_default();
    match metric {
        AlertMetric::CpuPct => one(report.cpu.as_ref().map(|c| c.total_pct)),
        AlertMetric::MemoryPct => one(report.memory.as_ref().and_then(|m| m.used_pct())),
        AlertMetric::SwapPct => one(report.memory.as_ref().and_then(|m| m.swap_used_pct())),
        AlertMetric::Load1m => one(report.load.map(|l| l[0])),
        AlertMetric::Load5m => one(report.load.map(|l| l[1])),
        AlertMetric::Load15m => one(report.load.map(|l| l[2])),
        AlertMetric::DiskPct => report
            .disks
            .iter()
            .filter(|d| wanted(&d.mount))
            .filter_map(|d| Some((Some(d.mount.clone()), d.used_pct()?)))
            .collect(),
        AlertMetric::NetRxBps => report
            .networks
            .iter()
            .filter(|n| wanted(&n.iface))
            .map(|n| (Some(n.iface.clone()), n.rx_bps as f64))
            .collect(),
        AlertMetric::NetTxBps => report
            .networks
            .iter()
            .filter(|n| wanted(&n.iface))
            .map(|n| (Some(n.iface.clone()), n.tx_bps as f64))
            .collect(),
        AlertMetric::TemperatureC => report
            .temps
            .iter()
            .filter(|t| wanted(&t.sensor))
            .map(|t| (Some(t.sensor.clone()), t.celsius))
            .collect(),
        // Not from reports: offline by the evaluator's tick, container
        // restarts over a window, checks by `Alerting::check_observed`.
        AlertMetric::Offline
        | AlertMetric::ContainerRestarts
        | AlertMetric::CheckDown
        | AlertMetric::CheckLatencyMs
        | AlertMetric::CheckCertDays => Vec::new(),
        AlertMetric::ContainerDown => {
            let Some(list) = &report.containers else {
                return Vec::new();
            };
            let mut out: Vec<(Option<String>, f64)> = list
                .iter()
                .filter(|c| wanted(&c.name))
                .map(|c| (Some(c.name.clone()), flag(!c.is_running())))
                .collect();
            // A named container missing from a list that was read is not
            // running either (removed, or never created).
            if let Some(name) = label
                && out.is_empty()
            {
                out.push((Some(name.to_owned()), 1.0));
            }
            out
        }
        AlertMetric::ContainerUnhealthy => report
            .containers
            .iter()
            .flatten()
            .filter(|c| wanted(&c.name))
            .map(|c| {
                let unhealthy = c.health.as_deref() == Some("unhealthy");
                (Some(c.name.clone()), flag(unhealthy))
            })
            .collect(),
        AlertMetric::ContainerCpuPct => report
            .containers
            .iter()
            .flatten()
            .filter(|c| wanted(&c.name))
            .filter_map(|c| Some((Some(c.name.clone()), c.cpu_pct?)))
            .collect(),
        AlertMetric::ContainerMemoryPct => report
            .containers
            .iter()
            .flatten()
            .filter(|c| wanted(&c.name))
            .filter_map(|c| Some((Some(c.name.clone()), c.mem_pct()?)))
            .collect(),
        AlertMetric::ServiceFailed => report
            .services
            .iter()
            .flatten()
            .filter(|s| wanted(&s.unit))
            .map(|s| (Some(s.unit.clone()), flag(s.active == "failed")))
            .collect(),
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Condition rules (a container down or unhealthy, a failed unit) read
/// 1 for "the condition holds" and 0 for not: held above one half.
const CONDITION: (Comparison, f64) = (Comparison::Gt, 0.5);

/// Restarts of each container (of `label`, if given) across `window`: the
/// sum of the increases of its restart count between consecutive reports
/// of the same container id (a recreated container starts again from 0,
/// which is no restart).
fn restarts_in(window: &[Arc<Report>], label: Option<&str>) -> Vec<(Option<String>, f64)> {
    let Some(latest) = window.last() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in latest.containers.iter().flatten() {
        if label.is_some_and(|l| l != c.name) {
            continue;
        }
        let mut total = 0u64;
        let mut prev: Option<(&str, u32)> = None;
        for r in window {
            let Some(now) = r.containers.iter().flatten().find(|x| x.name == c.name) else {
                continue;
            };
            let Some(count) = now.restarts else { continue };
            if let Some((id, before)) = prev
                && id == now.id
            {
                total += u64::from(count.saturating_sub(before));
            }
            prev = Some((&now.id, count));
        }
        out.push((Some(c.name.clone()), total as f64));
    }
    out
}

/// Reports in a row whose container list (or unit list) was read without a
/// label before that label's firing state resolves as gone: 3 reports, 15 s
/// at the default interval. One list without it is not enough: `docker
/// compose up` removes a container before it creates its successor of the
/// same name, and a list can be read between the two.
pub const GONE_AFTER_REPORTS: usize = 3;

/// Whether `label` of a per-container rule (a container name) or of a
/// `service_failed` rule (a unit) is gone from `window` (the agent's
/// reports, oldest first): absent from each of the latest
/// [`GONE_AFTER_REPORTS`] lists that were read. Reports that carry no list
/// (not collected) neither count nor interrupt. Always false for other
/// metrics.
pub fn gone(metric: AlertMetric, window: &[Arc<Report>], label: &str) -> bool {
    let listed = |r: &Report| -> Option<bool> {
        match metric {
            AlertMetric::ContainerDown
            | AlertMetric::ContainerUnhealthy
            | AlertMetric::ContainerRestarts
            | AlertMetric::ContainerCpuPct
            | AlertMetric::ContainerMemoryPct => {
                Some(r.containers.as_ref()?.iter().any(|c| c.name == label))
            }
            // Only failed units and the units the agent watches are
            // listed: a unit absent from a list is not failed.
            AlertMetric::ServiceFailed => {
                Some(r.services.as_ref()?.iter().any(|s| s.unit == label))
            }
            _ => None,
        }
    };
    let mut absent = 0;
    for r in window.iter().rev() {
        match listed(r) {
            Some(true) => return false,
            Some(false) => absent += 1,
            None => {}
        }
        if absent >= GONE_AFTER_REPORTS {
            return true;
        }
    }
    false
}

/// Restarts counted from the stored restart count of one container name
/// (`container.restarts{name}`, 1 m buckets oldest first), for windows
/// longer than the ring keeps. The count only grows while a container id
/// lives and starts again from 0 when the name is recreated: each bucket
/// adds what the count gained since the previous bucket's last value, or,
/// when it fell below that (recreated), what it gained within the bucket.
/// The first bucket adds what it gained within itself. Exact unless a
/// recreation and restarts of the old container share one minute.
pub fn restarts_in_points(points: &[storage::tsdb::Point]) -> f64 {
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    for p in points {
        total += match prev {
            Some(before) if p.min >= before => p.last - before,
            _ => (p.last - p.min).max(0.0),
        };
        prev = Some(p.last);
    }
    total
}

/// The value of one label of `metric` in `report`.
fn value_of(report: &Report, metric: AlertMetric, label: Option<&str>) -> Option<f64> {
    values(report, metric, label)
        .into_iter()
        .find(|(l, _)| l.as_deref() == label)
        .map(|(_, v)| v)
}

/// Reads threshold `rule` against `window` (the agent's reports, oldest
/// first, ending with the latest). Empty for `offline` rules, and when the
/// window is empty or the metric missing.
pub fn observe(rule: &RuleRecord, window: &[Arc<Report>]) -> Vec<Observation> {
    let (comparison, threshold) = match (rule.comparison, rule.threshold) {
        (Some(c), Some(t)) => (c, t),
        _ if rule.metric.is_condition() && rule.metric != AlertMetric::Offline => CONDITION,
        _ => return Vec::new(),
    };
    let Some(latest) = window.last() else {
        return Vec::new();
    };
    if rule.metric == AlertMetric::ContainerRestarts {
        // The window is the rule's duration: the count over it is the value.
        return restarts_in(window, rule.label.as_deref())
            .into_iter()
            .map(|(label, value)| {
                let breached = comparison.breached(value, threshold);
                Observation {
                    label,
                    value,
                    breached,
                    held: breached,
                }
            })
            .collect();
    }
    let duration_ms = i64::from(rule.duration_s.unwrap_or(0)) * 1000;
    values(latest, rule.metric, rule.label.as_deref())
        .into_iter()
        .map(|(label, value)| {
            let breached = comparison.breached(value, threshold);
            let held = breached
                && (duration_ms == 0
                    || held_since(window, rule.metric, label.as_deref(), comparison, threshold)
                        .is_some_and(|start| latest.ts_ms - start >= duration_ms));
            Observation {
                label,
                value,
                breached,
                held,
            }
        })
        .collect()
}

/// The timestamp of the oldest report of the breach run that ends at the
/// latest report (every report from it on breaches).
fn held_since(
    window: &[Arc<Report>],
    metric: AlertMetric,
    label: Option<&str>,
    comparison: Comparison,
    threshold: f64,
) -> Option<i64> {
    let mut start = None;
    for report in window.iter().rev() {
        match value_of(report, metric, label) {
            Some(v) if comparison.breached(v, threshold) => start = Some(report.ts_ms),
            _ => break,
        }
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::model::{Cpu, Disk};

    fn report(ts_ms: i64, cpu: f64) -> Arc<Report> {
        Arc::new(Report {
            ts_ms,
            cpu: Some(Cpu {
                total_pct: cpu,
                ..Default::default()
            }),
            disks: vec![
                Disk {
                    mount: "/".into(),
                    total_bytes: 100,
                    used_bytes: 50,
                    available_bytes: None,
                    ..Default::default()
                },
                Disk {
                    mount: "/data".into(),
                    total_bytes: 100,
                    used_bytes: 95,
                    available_bytes: None,
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
    }

    fn rule(metric: AlertMetric, label: Option<&str>, duration_s: Option<u32>) -> RuleRecord {
        RuleRecord {
            id: 1,
            owner_id: 1,
            agent_id: 1,
            metric,
            label: label.map(str::to_string),
            comparison: Some(Comparison::Gt),
            threshold: Some(90.0),
            duration_s,
            cooldown_s: 300,
            enabled: true,
            name: None,
            description: None,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    /// Restarts from stored 1 m buckets: increases within one container,
    /// nothing for a recreation (the count starts again from 0).
    #[test]
    fn restarts_from_stored_buckets() {
        let p = |min: f64, last: f64| storage::tsdb::Point {
            ts_ms: 0,
            min,
            max: last.max(min),
            sum: 0.0,
            count: 12,
            last,
        };
        assert_eq!(restarts_in_points(&[]), 0.0);
        // 5 → 5 → 7 (two restarts) → 7 → recreated at 0 → 1 (one restart).
        let buckets = [
            p(5.0, 5.0),
            p(5.0, 5.0),
            p(5.0, 7.0),
            p(7.0, 7.0),
            p(0.0, 0.0),
            p(0.0, 1.0),
        ];
        assert_eq!(restarts_in_points(&buckets), 3.0);
        // Restarts within the first bucket count.
        assert_eq!(restarts_in_points(&[p(2.0, 4.0), p(4.0, 4.0)]), 2.0);
    }

    #[test]
    fn disk_rule_without_mount_watches_each_mount() {
        let obs = observe(&rule(AlertMetric::DiskPct, None, None), &[report(0, 1.0)]);
        assert_eq!(obs.len(), 2);
        assert!(!obs[0].breached);
        assert_eq!(obs[1].label.as_deref(), Some("/data"));
        assert!(obs[1].held);
        let root = observe(
            &rule(AlertMetric::DiskPct, Some("/"), None),
            &[report(0, 1.0)],
        );
        assert_eq!(root.len(), 1);
        assert!(!root[0].breached);
    }

    /// A disk rule reads the percentage `df` shows: used ÷ (used +
    /// available). An ext4 disk 86 % full by `df` with its 5 % root
    /// reservation is 86 % here too, not 91 % (used + reserved ÷ total),
    /// so "above 90 %" does not fire early.
    #[test]
    fn disk_rules_read_the_percentage_df_shows() {
        let mut r = (*report(0, 1.0)).clone();
        r.disks = vec![Disk {
            mount: "/".into(),
            total_bytes: 1000,
            used_bytes: 817,
            available_bytes: Some(133),
            ..Default::default()
        }];
        let obs = observe(&rule(AlertMetric::DiskPct, None, None), &[Arc::new(r)]);
        assert_eq!(obs.len(), 1);
        assert!(!obs[0].breached, "86 % is not above 90 %");
    }

    #[test]
    fn duration_needs_a_continuous_breach_over_the_whole_window() {
        let r = rule(AlertMetric::CpuPct, None, Some(60));
        // A single spike: breached but not held.
        let spike = [report(0, 10.0), report(5_000, 99.0)];
        let obs = observe(&r, &spike);
        assert!(obs[0].breached && !obs[0].held);
        // 55 s of breach: not yet.
        let w: Vec<_> = (0..=11).map(|i| report(i * 5_000, 95.0)).collect();
        assert!(!observe(&r, &w)[0].held);
        // 60 s: held.
        let w: Vec<_> = (0..=12).map(|i| report(i * 5_000, 95.0)).collect();
        assert!(observe(&r, &w)[0].held);
        // A dip inside the window resets the run.
        let mut w: Vec<_> = (0..=20).map(|i| report(i * 5_000, 95.0)).collect();
        w[15] = report(75_000, 50.0);
        assert!(!observe(&r, &w)[0].held);
    }

    fn with_containers(ts_ms: i64, list: &[(&str, &str, &str, u32)]) -> Arc<Report> {
        Arc::new(Report {
            ts_ms,
            containers: Some(
                list.iter()
                    .map(|(id, name, state, restarts)| storage::model::Container {
                        id: (*id).into(),
                        name: (*name).into(),
                        state: (*state).into(),
                        restarts: Some(*restarts),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        })
    }

    /// Restarts are counted per container id across the window: a
    /// recreation (new id, count back to 0) is no restart.
    #[test]
    fn restarts_count_increases_within_one_id() {
        let mut r = rule(AlertMetric::ContainerRestarts, None, Some(600));
        r.threshold = Some(2.0);
        let w = [
            with_containers(0, &[("a", "web", "running", 5), ("d", "db", "running", 0)]),
            with_containers(
                5_000,
                &[("a", "web", "running", 6), ("d", "db", "running", 0)],
            ),
            with_containers(
                10_000,
                &[("b", "web", "running", 0), ("d", "db", "running", 1)],
            ),
            with_containers(
                15_000,
                &[("b", "web", "running", 2), ("d", "db", "running", 1)],
            ),
        ];
        let obs = observe(&r, &w);
        let web = obs
            .iter()
            .find(|o| o.label.as_deref() == Some("web"))
            .unwrap();
        assert_eq!(web.value, 3.0, "1 before the recreation, 2 after");
        assert!(web.held);
        let db = obs
            .iter()
            .find(|o| o.label.as_deref() == Some("db"))
            .unwrap();
        assert_eq!(db.value, 1.0);
        assert!(!db.breached);
    }

    /// A named container missing from a list that was read is down; an
    /// agent that reads no containers observes nothing.
    #[test]
    fn a_missing_named_container_is_down_and_no_list_is_no_reading() {
        let mut r = rule(AlertMetric::ContainerDown, Some("web"), None);
        r.comparison = None;
        r.threshold = None;
        let obs = observe(&r, &[with_containers(0, &[("d", "db", "running", 0)])]);
        assert_eq!(obs.len(), 1);
        assert!(obs[0].held);
        assert!(observe(&r, &[report(0, 1.0)]).is_empty());
        let up = observe(&r, &[with_containers(0, &[("a", "web", "running", 0)])]);
        assert!(!up[0].breached);
    }

    #[test]
    fn missing_metric_observes_nothing() {
        let r = rule(AlertMetric::TemperatureC, None, None);
        assert!(observe(&r, &[report(0, 1.0)]).is_empty());
        assert!(observe(&rule(AlertMetric::CpuPct, None, None), &[]).is_empty());
    }
}
