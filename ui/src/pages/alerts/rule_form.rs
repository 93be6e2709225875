//! The rule form: its fields, how it checks them and turns them into a
//! request, and how the API's field errors map back onto them.

use leptos::prelude::*;

use super::metric_option;
use crate::api::{
    AgentInfo, AlertMetric, ApiError, Comparison, CreateRuleRequest, Rule, RuleNotify,
    UpdateRuleRequest,
};
use crate::components::common::{Problem, field_error};
use storage::model::RuleTarget;

/// One operation on a rule row (one action for all: one instantiation).
#[derive(Debug, Clone)]
pub(super) enum RuleOp {
    Save(Option<u64>, Box<CreateRuleRequest>),
    Enable(u64, bool),
    Delete(u64),
}

/// The form's fields, as typed.
#[derive(Debug, Clone, Copy)]
pub(super) struct RuleForm {
    /// `Some(id)` while editing that rule, `None` for a new one.
    pub(super) editing: RwSignal<Option<u64>>,
    pub(super) open: RwSignal<bool>,
    /// What the rule watches: an agent id, `tag:vps` (every agent tagged
    /// `vps`), or [`OTHER_TAG`] (the tag typed in `tag`).
    pub(super) agent: RwSignal<String>,
    pub(super) tag: RwSignal<String>,
    /// Editing a rule on a tag: its target cannot change (the API keeps it).
    pub(super) tag_rule: RwSignal<bool>,
    pub(super) metric: RwSignal<String>,
    pub(super) label: RwSignal<String>,
    pub(super) comparison: RwSignal<String>,
    pub(super) threshold: RwSignal<String>,
    /// The unit a network threshold is typed in (a key of [`RATE_UNITS`]).
    pub(super) rate_unit: RwSignal<String>,
    /// Minutes, as typed (the API takes seconds).
    pub(super) duration: RwSignal<String>,
    pub(super) cooldown: RwSignal<String>,
    pub(super) name: RwSignal<String>,
    pub(super) description: RwSignal<String>,
    pub(super) enabled: RwSignal<bool>,
    /// What is wrong, and the field it is about (shown next to that field).
    pub(super) problem: Problem,
    /// The channels the rule notifies (none ticked: the defaults), its
    /// urgency, and whether channels it named were deleted.
    pub(super) channels: RwSignal<Vec<u64>>,
    pub(super) urgent: RwSignal<bool>,
    pub(super) channels_gone: RwSignal<bool>,
}

/// The "Agent" choice whose tag is typed rather than picked.
pub(super) const OTHER_TAG: &str = "tag:";

/// The tags of the caller's own agents (a tag rule watches only those),
/// sorted, each once.
pub(super) fn own_tags(agents: &[AgentInfo]) -> Vec<String> {
    let mut tags: Vec<String> = agents
        .iter()
        .filter(|a| a.shared.is_none())
        .flat_map(|a| a.tags.iter().cloned())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// The units a network threshold can be typed in, and their bytes per second.
pub(super) const RATE_UNITS: [(&str, f64); 3] = [
    ("KiB/s", 1024.0),
    ("MiB/s", 1_048_576.0),
    ("Mbit/s", 125_000.0),
];

/// A network threshold in bytes per second as (number, unit) to show, as
/// it was likely typed: the first of MiB/s, Mbit/s in which it is at least 1
/// with at most two decimals, else KiB/s.
fn rate_in_unit(bps: f64) -> (f64, &'static str) {
    [RATE_UNITS[1], RATE_UNITS[2]]
        .into_iter()
        .find(|(_, f)| bps / f >= 1.0 && (bps / f * 100.0).fract() == 0.0)
        .map_or((bps / 1024.0, "KiB/s"), |(u, f)| (bps / f, u))
}

/// Seconds as the minutes the form shows: `300` → `5`, `90` → `1.5`.
fn minutes_text(seconds: u32) -> String {
    (f64::from(seconds) / 60.0).to_string()
}

/// The form field an API error names (`threshold: …`), by the form's keys.
pub(super) fn form_field(api_field: &str) -> Option<&'static str> {
    Some(match api_field {
        "agent_id" => "agent",
        "target" | "target.tag" => "tag",
        "metric" => "metric",
        "label" | "mount" | "iface" | "sensor" => "label",
        "comparison" | "threshold" => "threshold",
        "duration_s" => "duration",
        "cooldown_s" => "cooldown",
        "name" => "name",
        "description" => "description",
        _ => return None,
    })
}

/// An API refusal in the form's words: metric ids become the names the
/// "Watch" list shows.
pub(super) fn rule_sentence(e: &ApiError) -> String {
    let mut text = e.to_string();
    for m in AlertMetric::ALL {
        for id in [m.as_str().to_string(), capitalised(m.as_str())] {
            if text.contains(&id) {
                text = text.replace(&id, metric_option(m));
            }
        }
    }
    text
}

fn capitalised(s: &str) -> String {
    let mut out = s.to_string();
    if let Some(first) = out.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    out
}

/// The error of `field` in the rule form, right under it.
pub(super) fn field_problem(form: RuleForm, field: &'static str) -> impl IntoView {
    field_error(form.problem, field, "rule-error")
}

impl RuleForm {
    pub(super) fn new() -> Self {
        RuleForm {
            editing: RwSignal::new(None),
            open: RwSignal::new(false),
            agent: RwSignal::new(String::new()),
            tag: RwSignal::new(String::new()),
            tag_rule: RwSignal::new(false),
            metric: RwSignal::new("cpu_pct".into()),
            label: RwSignal::new(String::new()),
            comparison: RwSignal::new("gt".into()),
            threshold: RwSignal::new("90".into()),
            rate_unit: RwSignal::new("MiB/s".into()),
            duration: RwSignal::new(String::new()),
            cooldown: RwSignal::new("5".into()),
            name: RwSignal::new(String::new()),
            description: RwSignal::new(String::new()),
            enabled: RwSignal::new(true),
            problem: RwSignal::new(None),
            channels: RwSignal::new(Vec::new()),
            urgent: RwSignal::new(false),
            channels_gone: RwSignal::new(false),
        }
    }

    /// Where the rule's alerts go, as the form says.
    pub(super) fn notify(&self) -> RuleNotify {
        RuleNotify {
            channels: self.channels.get_untracked(),
            urgent: self.urgent.get_untracked(),
            ..Default::default()
        }
    }

    pub(super) fn metric(&self) -> AlertMetric {
        AlertMetric::parse(&self.metric.get()).unwrap_or(AlertMetric::CpuPct)
    }

    pub(super) fn fill(&self, rule: Option<&Rule>, first_agent: Option<u64>) {
        let text = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        self.editing.set(rule.map(|r| r.id));
        let tag = rule.and_then(|r| r.target.as_ref()).map(|t| t.tag.clone());
        self.tag_rule.set(tag.is_some());
        self.tag.set(String::new());
        self.agent.set(match &tag {
            Some(tag) => format!("tag:{tag}"),
            None => rule
                .map(|r| r.agent_id)
                .or(first_agent)
                .map(|a| a.to_string())
                .unwrap_or_default(),
        });
        self.metric
            .set(rule.map_or("cpu_pct", |r| r.metric.as_str()).into());
        self.label
            .set(rule.and_then(|r| r.label.clone()).unwrap_or_default());
        self.comparison.set(
            match rule.and_then(|r| r.comparison) {
                Some(Comparison::Lt) => "lt",
                _ => "gt",
            }
            .into(),
        );
        let (threshold, unit) = match rule {
            Some(r) if r.metric.unit() == "B/s" => {
                let (v, unit) = rate_in_unit(r.threshold.unwrap_or(0.0));
                (v.to_string(), unit)
            }
            Some(r) => (text(r.threshold), "MiB/s"),
            None => ("90".into(), "MiB/s"),
        };
        self.threshold.set(threshold);
        self.rate_unit.set(unit.into());
        self.duration.set(
            rule.and_then(|r| r.duration_s)
                .map(minutes_text)
                .unwrap_or_default(),
        );
        self.cooldown
            .set(minutes_text(rule.map_or(300, |r| r.cooldown_s)));
        self.name
            .set(rule.and_then(|r| r.name.clone()).unwrap_or_default());
        self.description
            .set(rule.and_then(|r| r.description.clone()).unwrap_or_default());
        self.enabled.set(rule.is_none_or(|r| r.enabled));
        self.problem.set(None);
        self.channels.set(Vec::new());
        self.urgent.set(false);
        self.channels_gone.set(false);
        if let Some(id) = rule.map(|r| r.id) {
            let (channels, urgent, gone) = (self.channels, self.urgent, self.channels_gone);
            leptos::task::spawn_local(async move {
                if let Ok(n) = crate::api::rule_notify(id).await {
                    gone.set(!n.missing.is_empty());
                    channels.set(
                        n.channels
                            .into_iter()
                            .filter(|c| !n.missing.contains(c))
                            .collect(),
                    );
                    urgent.set(n.urgent);
                }
            });
        }
        self.open.set(true);
    }

    /// The request the fields describe, or what is wrong with them (and
    /// with which field).
    pub(super) fn request(&self) -> Result<CreateRuleRequest, (Option<&'static str>, String)> {
        let choice = self.agent.get_untracked();
        let (agent_id, target) = if choice == OTHER_TAG {
            let tag = self.tag.get_untracked().trim().to_string();
            if tag.is_empty() {
                return Err((Some("tag"), "Type the tag, like vps.".to_string()));
            }
            (None, Some(RuleTarget { tag }))
        } else if let Some(tag) = choice.strip_prefix("tag:") {
            (
                None,
                Some(RuleTarget {
                    tag: tag.to_string(),
                }),
            )
        } else {
            let id = choice.parse::<u64>().map_err(|_| {
                (
                    Some("agent"),
                    "Choose an agent (create one on the Agents page first).".to_string(),
                )
            })?;
            (Some(id), None)
        };
        let metric = AlertMetric::parse(&self.metric.get_untracked())
            .ok_or_else(|| (Some("metric"), "Choose what to watch.".to_string()))?;
        // Minutes as typed (`5`, `1.5`), in whole seconds for the API.
        let seconds = |text: String,
                       what: &str,
                       field: &'static str|
         -> Result<Option<u32>, (Option<&'static str>, String)> {
            let text = text.trim().replace(',', ".");
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<f64>()
                .ok()
                .map(|m| (m * 60.0).round())
                .filter(|s| (0.0..=f64::from(u32::MAX)).contains(s))
                .map(|s| Some(s as u32))
                .ok_or_else(|| {
                    (
                        Some(field),
                        format!("{what} is a number of minutes, like 5 or 0.5."),
                    )
                })
        };
        // Offline, a container down or unhealthy, a failed unit: a
        // condition, without comparison or threshold.
        let offline = metric.is_condition();
        let threshold = if offline {
            None
        } else {
            let text = self.threshold.get_untracked();
            let value = text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| (Some("threshold"), "The threshold is a number.".to_string()))?;
            // Network thresholds are typed in the unit chosen beside them.
            let per = if metric.unit() == "B/s" {
                let unit = self.rate_unit.get_untracked();
                RATE_UNITS
                    .iter()
                    .find(|(u, _)| *u == unit)
                    .map_or(1024.0, |(_, f)| *f)
            } else {
                1.0
            };
            Some(value * per)
        };
        let label = self.label.get_untracked().trim().to_string();
        let name = self.name.get_untracked().trim().to_string();
        let description = self.description.get_untracked().trim().to_string();
        Ok(CreateRuleRequest {
            agent_id,
            target,
            metric,
            label: (metric.label_kind().is_some() && !label.is_empty()).then_some(label),
            comparison: (!offline).then(|| {
                if self.comparison.get_untracked() == "lt" {
                    Comparison::Lt
                } else {
                    Comparison::Gt
                }
            }),
            threshold,
            duration_s: seconds(self.duration.get_untracked(), "The duration", "duration")?,
            cooldown_s: seconds(self.cooldown.get_untracked(), "The cooldown", "cooldown")?,
            enabled: Some(self.enabled.get_untracked()),
            name: (!name.is_empty()).then_some(name),
            description: (!description.is_empty()).then_some(description),
        })
    }
}

/// An edit sends every field; empty ones clear (docs/alerts.md). A tag
/// rule's target is not sent: it cannot change.
pub(super) fn update_of(r: CreateRuleRequest) -> UpdateRuleRequest {
    UpdateRuleRequest {
        agent_id: r.agent_id,
        metric: Some(r.metric),
        label: Some(r.label.unwrap_or_default()),
        comparison: r.comparison,
        threshold: r.threshold,
        duration_s: Some(r.duration_s.unwrap_or(0)),
        cooldown_s: r.cooldown_s,
        enabled: r.enabled,
        name: Some(r.name.unwrap_or_default()),
        description: Some(r.description.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_thresholds_show_in_the_unit_they_were_typed_in() {
        assert_eq!(rate_in_unit(1.5 * 1_048_576.0), (1.5, "MiB/s"));
        assert_eq!(rate_in_unit(100.0 * 125_000.0), (100.0, "Mbit/s"));
        assert_eq!(rate_in_unit(512.0 * 1024.0), (512.0, "KiB/s"));
        assert_eq!(rate_in_unit(0.0), (0.0, "KiB/s"));
        assert_eq!(minutes_text(300), "5");
        assert_eq!(minutes_text(90), "1.5");
    }

    #[test]
    fn a_rule_on_a_tag_targets_the_tag_picked_or_typed_and_names_the_tag_field() {
        // Signals need an owner when the workspace's features turn on
        // leptos' sandboxed arenas (the server's build does).
        let owner = Owner::new();
        owner.with(|| {
            let form = RuleForm::new();
            form.metric.set("offline".into());
            form.agent.set("tag:vps".into());
            let r = form.request().expect("a picked tag is a request");
            assert_eq!(
                (r.agent_id, r.target.map(|t| t.tag)),
                (None, Some("vps".into()))
            );
            form.agent.set(OTHER_TAG.into());
            assert_eq!(form.request().err().and_then(|e| e.0), Some("tag"));
            form.tag.set(" k8s-node ".into());
            let r = form.request().expect("a typed tag is a request");
            assert_eq!(r.target.map(|t| t.tag), Some("k8s-node".into()));
            form.agent.set("7".into());
            let r = form.request().expect("an agent is a request");
            assert_eq!((r.agent_id, r.target), (Some(7), None));
            assert_eq!(form_field("target.tag"), Some("tag"));
        });
    }
}
