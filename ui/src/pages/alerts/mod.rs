//! Alerts: the rules (table and form for every metric of docs/alerts.md),
//! where notifications go (channels with "send test", quiet hours), and the
//! alert history with filters, sorting and paging.
//!
//! Everything loads after hydration (the server renders fixed placeholders).
//! Rules and history are asked again every 10 seconds, and at once after a
//! rule changes (a rule created while already breached fires before its
//! `POST` answers, so its event is in the next history page).
//!
//! Files: `rules` (the table and its card), `rule_form` (the form's fields,
//! checks and request), `notifications` (where alerts go), `history`; the
//! text helpers they share are here.

use leptos::prelude::*;

use crate::api::{self, AgentInfo, AlertMetric, Comparison, Rule};
use crate::components::common::{Title, use_now};
use crate::format;

mod channel_picker;
mod history;
mod notifications;
mod rule_form;
mod rules;

use history::HistoryCard;
use notifications::NotificationsCard;
use rules::RulesCard;

#[component]
pub fn AlertsPage() -> impl IntoView {
    let agents = LocalResource::new(api::agents);
    let rules = LocalResource::new(api::rules);
    let channels = LocalResource::new(api::channels);
    provide_context(channels);
    // Bumped after every change of rules or history: the history reloads.
    let changed = RwSignal::new(0u32);
    let now = use_now(10_000);
    Effect::new(move |prev: Option<i64>| {
        let t = now.get();
        if prev.is_some() {
            rules.refetch();
            changed.update(|c| *c += 1);
        }
        t
    });
    let agent_list = Memo::new(move |_| agents.get().and_then(|r| r.ok()).unwrap_or_default());
    view! {
        <Title text="Alerts · StatusMonitor" />
        <div class="page-head">
            <div>
                <h1>"Alerts"</h1>
                <p class="muted">"Rules watch your machines; when one is breached you get a message, and every firing and resolution is kept below."</p>
            </div>
        </div>
        <RulesCard agents=agent_list agents_failed=Signal::derive(move || agents.get().and_then(|r| r.err())) rules=rules changed=changed />
        <NotificationsCard channels=channels />
        <HistoryCard agents=agent_list changed=changed />
    }
}

fn agent_name(agents: &[AgentInfo], id: u64) -> String {
    agents
        .iter()
        .find(|a| a.id == id)
        .map(|a| a.name.clone())
        .unwrap_or_else(|| format!("agent {id}"))
}

/// A value with the unit of its metric.
fn value_text(metric: AlertMetric, value: f64) -> String {
    match metric {
        AlertMetric::NetRxBps | AlertMetric::NetTxBps => format::rate(value),
        AlertMetric::Offline => format::duration_s(value.max(0.0) as u64),
        AlertMetric::Load1m | AlertMetric::Load5m | AlertMetric::Load15m => format::load(value),
        AlertMetric::TemperatureC => format::celsius(value),
        AlertMetric::ContainerRestarts => format!("{value:.0}"),
        AlertMetric::ContainerDown
        | AlertMetric::ContainerUnhealthy
        | AlertMetric::ServiceFailed => if value > 0.5 { "yes" } else { "no" }.to_string(),
        _ => format::pct(value),
    }
}

/// "disk /data", "CPU", "offline".
fn what_text(metric: AlertMetric, label: Option<&str>) -> String {
    match label {
        Some(l) if !l.is_empty() => format!("{} {l}", metric.describe()),
        _ => metric.describe().to_string(),
    }
}

/// "> 90 % for 2 min", "silent for 15 s".
fn condition_text(rule: &Rule) -> String {
    let mut text = if rule.metric == AlertMetric::Offline {
        match rule.duration_s {
            Some(d) => format!("silent for {}", short_seconds(d)),
            None => "silent for 3 intervals".to_string(),
        }
    } else if rule.metric.is_condition() {
        rule.metric.describe().to_string()
    } else if rule.metric == AlertMetric::ContainerRestarts {
        let n = rule.threshold.unwrap_or(0.0);
        let window = short_seconds(rule.duration_s.unwrap_or(0));
        return format!("more than {n:.0} restarts in {window}");
    } else {
        let cmp = rule.comparison.map(Comparison::symbol).unwrap_or(">");
        format!(
            "{cmp} {}",
            value_text(rule.metric, rule.threshold.unwrap_or(0.0))
        )
    };
    if rule.metric != AlertMetric::Offline
        && let Some(d) = rule.duration_s.filter(|d| *d > 0)
    {
        text.push_str(&format!(" for {}", short_seconds(d)));
    }
    text
}

/// "5 min", "90 s", "2 h": whole minutes and hours without "0 s".
fn short_seconds(s: u32) -> String {
    match s {
        0 => "every report".to_string(),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format::duration_s(u64::from(s)),
    }
}

/// The choice in a metric menu (spelled out: `to_uppercase` would pull
/// Unicode case tables into the bundle).
fn metric_option(m: AlertMetric) -> &'static str {
    match m {
        AlertMetric::CpuPct => "CPU (%)",
        AlertMetric::MemoryPct => "Memory (%)",
        AlertMetric::SwapPct => "Swap (%)",
        AlertMetric::DiskPct => "Disk (%)",
        AlertMetric::Load1m => "Load (1 min)",
        AlertMetric::Load5m => "Load (5 min)",
        AlertMetric::Load15m => "Load (15 min)",
        AlertMetric::NetRxBps => "Network receive (B/s)",
        AlertMetric::NetTxBps => "Network send (B/s)",
        AlertMetric::TemperatureC => "Temperature (°C)",
        AlertMetric::Offline => "Offline",
        AlertMetric::ContainerDown => "Container not running",
        AlertMetric::ContainerUnhealthy => "Container unhealthy",
        AlertMetric::ContainerRestarts => "Container restarts",
        AlertMetric::ContainerCpuPct => "Container CPU (% of a core)",
        AlertMetric::ContainerMemoryPct => "Container memory (% of limit)",
        AlertMetric::ServiceFailed => "Service failed",
        AlertMetric::CheckDown => "Check down",
        AlertMetric::CheckLatencyMs => "Check latency (ms)",
        AlertMetric::CheckCertDays => "Certificate expiry (days)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(metric: AlertMetric) -> Rule {
        Rule {
            id: 1,
            agent_id: 1,
            target: None,
            metric,
            label: None,
            comparison: Some(Comparison::Gt),
            threshold: Some(90.0),
            duration_s: None,
            cooldown_s: 300,
            enabled: true,
            name: None,
            description: None,
            created_ms: 0,
            updated_ms: 0,
            firing: Vec::new(),
        }
    }

    #[test]
    fn conditions_read_as_sentences() {
        let mut r = rule(AlertMetric::CpuPct);
        assert_eq!(condition_text(&r), "> 90.0 %");
        r.duration_s = Some(120);
        assert_eq!(condition_text(&r), "> 90.0 % for 2 min");
        let mut o = rule(AlertMetric::Offline);
        assert_eq!(condition_text(&o), "silent for 3 intervals");
        o.duration_s = Some(60);
        assert_eq!(condition_text(&o), "silent for 1 min");
    }

    #[test]
    fn repeat_intervals_are_short() {
        assert_eq!(short_seconds(300), "5 min");
        assert_eq!(short_seconds(7200), "2 h");
        assert_eq!(short_seconds(90), "1 min 30 s");
        assert_eq!(short_seconds(0), "every report");
    }

    #[test]
    fn metric_options_name_the_unit() {
        assert_eq!(metric_option(AlertMetric::DiskPct), "Disk (%)");
        assert_eq!(metric_option(AlertMetric::Load1m), "Load (1 min)");
        assert_eq!(
            metric_option(AlertMetric::NetRxBps),
            "Network receive (B/s)"
        );
        assert_eq!(metric_option(AlertMetric::Offline), "Offline");
    }
}
