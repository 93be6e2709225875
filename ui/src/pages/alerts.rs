//! Alerts: the rules (table and form for every metric of docs/alerts.md),
//! where notifications go (Telegram chat, webhook) with "send test", and the
//! alert history with filters, sorting and paging.
//!
//! Everything loads after hydration (the server renders fixed placeholders).
//! Rules and history are asked again every 10 seconds, and at once after a
//! rule changes (a rule created while already breached fires before its
//! `POST` answers, so its event is in the next history page).

use leptos::either::{Either, EitherOf3};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;

use crate::api::{
    self, AgentInfo, AlertEvent, AlertMetric, AlertQuery, AlertSort, AlertState, ApiError,
    Comparison, CreateRuleRequest, DeliveryStatus, Rule, SortOrder, UpdateRecipientRequest,
    UpdateRuleRequest,
};
use crate::components::common::{ErrorNote, Title, use_hydrated, use_now};
use crate::format;

/// History page size.
const PAGE: u32 = 25;

#[component]
pub fn AlertsPage() -> impl IntoView {
    let agents = LocalResource::new(api::agents);
    let rules = LocalResource::new(api::rules);
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
        <RecipientCard />
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

// ---------------------------------------------------------------------------
// Rules.

/// One operation on a rule row (one action for all: one instantiation).
#[derive(Debug, Clone)]
enum RuleOp {
    Save(Option<u64>, Box<CreateRuleRequest>),
    Enable(u64, bool),
    Delete(u64),
}

/// The form's fields, as typed.
#[derive(Debug, Clone, Copy)]
struct RuleForm {
    /// `Some(id)` while editing that rule, `None` for a new one.
    editing: RwSignal<Option<u64>>,
    open: RwSignal<bool>,
    agent: RwSignal<String>,
    metric: RwSignal<String>,
    label: RwSignal<String>,
    comparison: RwSignal<String>,
    threshold: RwSignal<String>,
    duration: RwSignal<String>,
    cooldown: RwSignal<String>,
    name: RwSignal<String>,
    description: RwSignal<String>,
    enabled: RwSignal<bool>,
    /// What is wrong, and the field it is about (shown next to that field).
    problem: RwSignal<Option<(Option<&'static str>, String)>>,
}

/// The form field an API error names (`threshold: …`), by the form's keys.
fn form_field(api_field: &str) -> Option<&'static str> {
    Some(match api_field {
        "agent_id" => "agent",
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
fn rule_sentence(e: &ApiError) -> String {
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
fn field_problem(form: RuleForm, field: &'static str) -> impl IntoView {
    move || {
        form.problem.with(|p| match p {
            Some((Some(f), text)) if *f == field => {
                Some(view! { <span class="error field-error" role="alert" id="rule-error">{text.clone()}</span> })
            }
            _ => None,
        })
    }
}

impl RuleForm {
    fn new() -> Self {
        RuleForm {
            editing: RwSignal::new(None),
            open: RwSignal::new(false),
            agent: RwSignal::new(String::new()),
            metric: RwSignal::new("cpu_pct".into()),
            label: RwSignal::new(String::new()),
            comparison: RwSignal::new("gt".into()),
            threshold: RwSignal::new("90".into()),
            duration: RwSignal::new(String::new()),
            cooldown: RwSignal::new("300".into()),
            name: RwSignal::new(String::new()),
            description: RwSignal::new(String::new()),
            enabled: RwSignal::new(true),
            problem: RwSignal::new(None),
        }
    }

    fn metric(&self) -> AlertMetric {
        AlertMetric::parse(&self.metric.get()).unwrap_or(AlertMetric::CpuPct)
    }

    fn fill(&self, rule: Option<&Rule>, first_agent: Option<u64>) {
        let text = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        self.editing.set(rule.map(|r| r.id));
        self.agent.set(
            rule.map(|r| r.agent_id)
                .or(first_agent)
                .map(|a| a.to_string())
                .unwrap_or_default(),
        );
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
        self.threshold.set(match rule {
            Some(r) => text(r.threshold),
            None => "90".into(),
        });
        self.duration
            .set(text(rule.and_then(|r| r.duration_s).map(f64::from)));
        self.cooldown
            .set(rule.map_or(300, |r| r.cooldown_s).to_string());
        self.name
            .set(rule.and_then(|r| r.name.clone()).unwrap_or_default());
        self.description
            .set(rule.and_then(|r| r.description.clone()).unwrap_or_default());
        self.enabled.set(rule.is_none_or(|r| r.enabled));
        self.problem.set(None);
        self.open.set(true);
    }

    /// The request the fields describe, or what is wrong with them (and
    /// with which field).
    fn request(&self) -> Result<CreateRuleRequest, (Option<&'static str>, String)> {
        let agent_id = self.agent.get_untracked().parse::<u64>().map_err(|_| {
            (
                Some("agent"),
                "Choose an agent (create one on the Agents page first).".to_string(),
            )
        })?;
        let metric = AlertMetric::parse(&self.metric.get_untracked())
            .ok_or_else(|| (Some("metric"), "Choose what to watch.".to_string()))?;
        let seconds = |text: String,
                       what: &str,
                       field: &'static str|
         -> Result<Option<u32>, (Option<&'static str>, String)> {
            let text = text.trim().to_string();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<u32>()
                .map(Some)
                .map_err(|_| (Some(field), format!("{what} is a whole number of seconds.")))
        };
        let offline = metric == AlertMetric::Offline;
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
            Some(value)
        };
        let label = self.label.get_untracked().trim().to_string();
        let name = self.name.get_untracked().trim().to_string();
        let description = self.description.get_untracked().trim().to_string();
        Ok(CreateRuleRequest {
            agent_id,
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

/// An edit sends every field; empty ones clear (docs/alerts.md).
fn update_of(r: CreateRuleRequest) -> UpdateRuleRequest {
    UpdateRuleRequest {
        agent_id: Some(r.agent_id),
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

#[component]
fn RulesCard(
    agents: Memo<Vec<AgentInfo>>,
    agents_failed: Signal<Option<ApiError>>,
    rules: LocalResource<Result<Vec<Rule>, ApiError>>,
    changed: RwSignal<u32>,
) -> impl IntoView {
    let ready = use_hydrated();
    let form = RuleForm::new();
    let confirm = RwSignal::new(None::<u64>);
    let op = Action::new_local(|op: &RuleOp| {
        let op = op.clone();
        async move {
            match op {
                RuleOp::Save(None, r) => api::create_rule(&r).await.map(|_| true),
                RuleOp::Save(Some(id), r) => {
                    api::update_rule(id, &update_of(*r)).await.map(|_| true)
                }
                RuleOp::Enable(id, on) => api::update_rule(
                    id,
                    &UpdateRuleRequest {
                        enabled: Some(on),
                        ..Default::default()
                    },
                )
                .await
                .map(|_| false),
                RuleOp::Delete(id) => api::delete_rule(id).await.map(|_| false),
            }
        }
    });
    let failed = RwSignal::new(None::<ApiError>);
    Effect::new(move |_| match op.value().get() {
        Some(Ok(saved)) => {
            if saved {
                form.open.set(false);
            }
            confirm.set(None);
            failed.set(None);
            rules.refetch();
            changed.update(|c| *c += 1);
        }
        Some(Err(e)) => {
            if form.open.get_untracked() {
                form.problem
                    .set(Some((e.field().and_then(form_field), rule_sentence(&e))));
            } else {
                failed.set(Some(e));
            }
        }
        None => {}
    });
    // A new rule starts at "Choose an agent…", not at whichever is first.
    let first_agent = || None::<u64>;
    // What the chosen agent reported lately: its mounts, interfaces, sensors.
    let seen = LocalResource::new(move || {
        let agent = form.agent.get().parse::<u64>().ok();
        async move {
            match agent {
                Some(id) => Some(api::summary(id, "-1h").await),
                None => None,
            }
        }
    });
    let seen = Memo::new(move |_| seen.get().flatten());
    // Keyboard users land in the form when it opens (new rule or "Edit"),
    // and back on "New rule" when it closes (saved, cancelled, Escape).
    let first_field = NodeRef::<leptos::html::Select>::new();
    let new_button = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |was_open: Option<bool>| {
        let open = form.open.get();
        if open {
            if let Some(select) = first_field.get_untracked() {
                let _ = select.focus();
            }
        } else if was_open == Some(true)
            && let Some(button) = new_button.get_untracked()
        {
            let _ = button.focus();
        }
        open
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        match form.request() {
            Ok(r) => {
                form.problem.set(None);
                failed.set(None);
                op.dispatch(RuleOp::Save(form.editing.get_untracked(), Box::new(r)));
            }
            Err(problem) => form.problem.set(Some(problem)),
        }
    };

    view! {
        <section class="card" aria-labelledby="rules-title">
            <div class="card-head">
                <h2 class="card-title" id="rules-title">"Rules"</h2>
                <button type="button" class="button small" id="new-rule" node_ref=new_button
                    disabled=move || !ready.get()
                    on:click=move |_| form.fill(None, first_agent())>"New rule"</button>
            </div>
            {move || agents_failed.get().map(|e| view! { <ErrorNote what="Loading your agents" error=e /> })}
            {move || failed.get().map(|e| view! {
                <ErrorNote what="Changing the rule" error=e retry=Callback::new(move |_| failed.set(None)) />
            })}
            <form class="rule-form" id="rule-form" on:submit=on_submit novalidate
                    hidden=move || !form.open.get()
                    on:keydown=move |ev| if ev.key() == "Escape" { form.open.set(false); }>
                <h3 class="section-title">{move || if form.editing.get().is_some() { "Edit rule" } else { "New rule" }}</h3>
                <div class="form-grid">
                    <label>"Agent"
                        <select id="rule-agent" node_ref=first_field prop:value=move || form.agent.get()
                            on:change=move |ev| form.agent.set(event_target_value(&ev))>
                            <option value="">"Choose an agent…"</option>
                            {move || agents.get().into_iter().map(|a| {
                                let id = a.id.to_string();
                                let selected = form.agent.get_untracked() == id;
                                view! { <option value=id selected=selected>{a.name}</option> }
                            }).collect_view()}
                        </select>
                        {field_problem(form, "agent")}
                    </label>
                    <label>"Watch"
                        <select id="rule-metric" prop:value=move || form.metric.get()
                            on:change=move |ev| form.metric.set(event_target_value(&ev))>
                            {AlertMetric::ALL.into_iter().map(|m| {
                                let selected = form.metric.get_untracked() == m.as_str();
                                view! { <option value=m.as_str() selected=selected>{metric_option(m)}</option> }
                            }).collect_view()}
                        </select>
                        {field_problem(form, "metric")}
                    </label>
                    <label class:hidden=move || form.metric().label_kind().is_none()>
                        {move || match form.metric().label_kind() {
                            Some("mount") => "Mount (empty: every mount)",
                            Some("iface") => "Interface (empty: every interface)",
                            _ => "Sensor (empty: every sensor)",
                        }}
                        // The agent's own mounts, interfaces and sensors (from
                        // its latest reports), not free text: a typo would
                        // save a rule that can never fire.
                        <select id="rule-label" prop:value=move || form.label.get()
                            on:change=move |ev| form.label.set(event_target_value(&ev))>
                            <option value="">{move || match form.metric().label_kind() {
                                Some("mount") => "Every mount",
                                Some("iface") => "Every interface",
                                _ => "Every sensor",
                            }}</option>
                            {move || {
                                let kind = form.metric().label_kind().unwrap_or("mount");
                                let mut known = seen.with(|s| match s {
                                    Some(Ok(s)) => api::labels_of(s, kind),
                                    _ => Vec::new(),
                                });
                                let current = form.label.get_untracked();
                                if !current.is_empty() && !known.contains(&current) {
                                    known.push(current.clone());
                                }
                                known.into_iter().map(|l| {
                                    let selected = l == current;
                                    view! { <option value=l.clone() selected=selected>{l.clone()}</option> }
                                }).collect_view()
                            }}
                        </select>
                        {field_problem(form, "label")}
                    </label>
                    <label class:hidden=move || form.metric() == AlertMetric::Offline>"Condition"
                        <span class="input-pair">
                            <select id="rule-comparison" aria-label="Comparison" prop:value=move || form.comparison.get()
                                on:change=move |ev| form.comparison.set(event_target_value(&ev))>
                                <option value="gt">"above"</option>
                                <option value="lt">"below"</option>
                            </select>
                            <input id="rule-threshold" inputmode="decimal" aria-label="Threshold" bind:value=form.threshold />
                            <span class="unit muted">{move || form.metric().unit()}</span>
                        </span>
                        {field_problem(form, "threshold")}
                    </label>
                    <label>
                        {move || if form.metric() == AlertMetric::Offline { "Silent for (s; empty: 3 intervals)" } else { "For at least (s; empty: at once)" }}
                        <input id="rule-duration" inputmode="numeric" bind:value=form.duration placeholder="—" />
                        {field_problem(form, "duration")}
                    </label>
                    <label>"Repeat at most every (s)"
                        <input id="rule-cooldown" inputmode="numeric" bind:value=form.cooldown />
                        {field_problem(form, "cooldown")}
                    </label>
                    <label>"Name (optional)"
                        <input id="rule-name" maxlength="100" bind:value=form.name placeholder="data disk full" />
                        {field_problem(form, "name")}
                    </label>
                    <label class="wide">"Description (optional)"
                        <input id="rule-description" maxlength="1000" bind:value=form.description
                            placeholder="move old backups to the archive disk" />
                        {field_problem(form, "description")}
                    </label>
                    <label class="check">
                        <input type="checkbox" id="rule-enabled" bind:checked=form.enabled />
                        "Enabled"
                    </label>
                </div>
                <div class="form-error" aria-live="polite">
                    {move || form.problem.get().and_then(|(field, p)| field.is_none().then(|| view! { <p class="error" role="alert" id="rule-error">{p}</p> }))}
                </div>
                <div class="form-actions">
                    <button class="button" type="submit" id="save-rule" disabled=move || op.pending().get()>
                        {move || if op.pending().get() { "Saving…" } else { "Save rule" }}
                    </button>
                    <button class="button secondary" type="button" on:click=move |_| form.open.set(false)>"Cancel"</button>
                </div>
                </form>
            <div class="table-wrap" id="rules">
                {move || match rules.get() {
                    None => EitherOf3::A(view! { <div class="skeleton-row"></div> }),
                    Some(Err(e)) => EitherOf3::B(view! {
                        <ErrorNote what="Loading your rules" error=e retry=Callback::new(move |_| rules.refetch()) />
                    }),
                    Some(Ok(list)) => EitherOf3::C(if list.is_empty() {
                        Either::Left(view! { <p class="empty" id="rules-empty">"No rules yet. “New rule” watches a machine for you."</p> })
                    } else {
                        let names = agents.get();
                        Either::Right(view! {
                            <table class="table">
                                <thead><tr>
                                    <th scope="col">"Rule"</th><th scope="col">"Agent"</th><th scope="col">"Condition"</th>
                                    <th scope="col">"Repeat"</th><th scope="col">"State"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|r| rule_row(r, &names, form, confirm, op)).collect_view()}
                                </tbody>
                            </table>
                        })
                    }),
                }}
            </div>
        </section>
    }
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
    }
}

fn rule_row(
    r: Rule,
    agents: &[AgentInfo],
    form: RuleForm,
    confirm: RwSignal<Option<u64>>,
    op: Action<RuleOp, Result<bool, ApiError>>,
) -> impl IntoView + use<> {
    let id = r.id;
    let title = r
        .name
        .clone()
        .unwrap_or_else(|| what_text(r.metric, r.label.as_deref()));
    let what = match &r.description {
        Some(d) => format!("{} · {d}", what_text(r.metric, r.label.as_deref())),
        None => what_text(r.metric, r.label.as_deref()),
    };
    let (state_class, state) = if !r.enabled {
        ("badge", "Disabled".to_string())
    } else if r.firing.is_empty() {
        ("badge badge-online", "OK".to_string())
    } else {
        let labels: Vec<String> = r
            .firing
            .iter()
            .map(|f| match &f.label {
                Some(l) => format!("{l}: {}", value_text(r.metric, f.value)),
                None => value_text(r.metric, f.value),
            })
            .collect();
        (
            "badge badge-firing",
            format!("Firing · {}", labels.join(", ")),
        )
    };
    let enabled = r.enabled;
    let cooldown = short_seconds(r.cooldown_s);
    let condition = condition_text(&r);
    let agent = agent_name(agents, r.agent_id);
    let (title_tip, what_tip, agent_tip) = (title.clone(), what.clone(), agent.clone());
    let rule = StoredValue::new(r);
    view! {
        <tr class="rule-row" data-rule=id.to_string()>
            <td class="name-cell"><strong class="clip" title=title_tip>{title}</strong><div class="muted small clip" title=what_tip>{what}</div></td>
            <td class="name-cell"><span class="clip" title=agent_tip>{agent}</span></td>
            <td class="nowrap">{condition}</td>
            <td class="nowrap">{cooldown}</td>
            <td><span class=state_class>{state}</span></td>
            <td class="row-actions">
                {move || if confirm.get() == Some(id) {
                    Either::Left(view! {
                        <span role="group" aria-label="Confirm delete" class="confirm">
                            "Delete this rule?"
                            <button type="button" class="button danger small confirm-delete"
                                disabled=move || op.pending().get()
                                on:click=move |_| { op.dispatch(RuleOp::Delete(id)); }>"Delete"</button>
                            <button type="button" class="button secondary small" on:click=move |_| confirm.set(None)>"Cancel"</button>
                        </span>
                    })
                } else {
                    Either::Right(view! {
                        <button type="button" class="button secondary small action-edit"
                            on:click=move |_| rule.with_value(|r| form.fill(Some(r), None))>"Edit"</button>
                        <button type="button" class="button secondary small action-toggle"
                            disabled=move || op.pending().get()
                            on:click=move |_| { op.dispatch(RuleOp::Enable(id, !enabled)); }>
                            {if enabled { "Disable" } else { "Enable" }}
                        </button>
                        <button type="button" class="button secondary small action-delete"
                            on:click=move |_| confirm.set(Some(id))>"Delete"</button>
                    })
                }}
            </td>
        </tr>
    }
}

// ---------------------------------------------------------------------------
// Where notifications go.

#[component]
fn RecipientCard() -> impl IntoView {
    let ready = use_hydrated();
    let current = LocalResource::new(api::recipient);
    let chat = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(r)) = current.get() {
            chat.set(r.telegram_chat_id.unwrap_or_default());
            url.set(r.webhook_url.unwrap_or_default());
            secret.set(String::new());
        }
    });
    let save = Action::new_local(move |change: &UpdateRecipientRequest| {
        let change = change.clone();
        async move { api::set_recipient(&change).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            current.refetch();
        }
    });
    let test = Action::new_local(|_: &()| api::test_recipient());
    let on_save = move |ev: SubmitEvent| {
        ev.prevent_default();
        let secret_text = secret.get_untracked();
        save.dispatch(UpdateRecipientRequest {
            telegram_chat_id: Some(chat.get_untracked().trim().to_string()),
            webhook_url: Some(url.get_untracked().trim().to_string()),
            // Empty keeps the stored secret; "Remove secret" clears it.
            webhook_secret: (!secret_text.is_empty()).then_some(secret_text),
        });
    };
    let loaded = move || current.get().and_then(|r| r.ok());
    view! {
        <section class="card" aria-labelledby="recipient-title">
            <h2 class="card-title" id="recipient-title">"Notifications"</h2>
            {move || match current.get() {
                Some(Err(e)) => Some(view! {
                    <ErrorNote what="Loading your notification settings" error=e retry=Callback::new(move |_| current.refetch()) />
                }),
                _ => None,
            }}
            <form class="rule-form" id="recipient-form" on:submit=on_save>
                <div class="form-grid">
                    <label>"Telegram chat id"
                        <input id="telegram-chat" bind:value=chat placeholder="123456789" maxlength="64" />
                        <span class="muted small" id="telegram-note">{move || match loaded() {
                            Some(r) if !r.telegram_configured => "The server has no Telegram bot token: Telegram messages are skipped (see README, Alerts).",
                            Some(_) => "Send /start to the bot, then put your chat id here.",
                            None => "\u{a0}",
                        }}</span>
                    </label>
                    <label>"Webhook URL"
                        <input id="webhook-url" type="url" bind:value=url placeholder="https://example.com/hook" maxlength="2048" />
                    </label>
                    <label>"Webhook secret (HMAC-SHA256 signature)"
                        <input id="webhook-secret" type="password" autocomplete="new-password" bind:value=secret
                            placeholder=move || if loaded().is_some_and(|r| r.webhook_secret_set) { "set · type to replace" } else { "none" } />
                    </label>
                </div>
                <div class="form-actions">
                    <button class="button" type="submit" id="save-recipient"
                        disabled=move || !ready.get() || save.pending().get()>"Save"</button>
                    <button class="button secondary" type="button" id="send-test"
                        disabled=move || !ready.get() || test.pending().get()
                        on:click=move |_| { test.dispatch(()); }>
                        {move || if test.pending().get() { "Sending…" } else { "Send test" }}
                    </button>
                    {move || loaded().filter(|r| r.webhook_secret_set).map(|_| view! {
                        <button class="link-button" type="button" id="remove-secret"
                            on:click=move |_| { save.dispatch(UpdateRecipientRequest { webhook_secret: Some(String::new()), ..Default::default() }); }>
                            "Remove secret"
                        </button>
                    })}
                </div>
                <div class="form-error" aria-live="polite" id="recipient-result">
                    {move || match save.value().get() {
                        Some(Ok(_)) => Some(Either::Left(view! { <p class="ok-text">"Saved."</p> })),
                        Some(Err(e)) => Some(Either::Right(view! { <ErrorNote what="Saving" error=e /> })),
                        None => None,
                    }}
                    {move || match test.value().get() {
                        Some(Ok(r)) => Some(Either::Left(view! {
                            <ul class="plain-list" id="test-results">
                                {r.results.into_iter().map(|d| {
                                    let ok = d.status == DeliveryStatus::Sent;
                                    view! {
                                        <li class=if ok { "ok-text" } else { "error" }>
                                            {format!("{}: {}", channel_name(d.channel), status_name(d.status))}
                                            {d.error.map(|e| format!(" — {e}"))}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        })),
                        Some(Err(e)) => Some(Either::Right(view! { <ErrorNote what="Sending the test" error=e /> })),
                        None => None,
                    }}
                </div>
            </form>
        </section>
    }
}

fn channel_name(c: api::Channel) -> &'static str {
    match c {
        api::Channel::Telegram => "Telegram",
        api::Channel::Webhook => "Webhook",
    }
}

fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Pending => "sending",
        DeliveryStatus::Skipped => "not configured",
    }
}

// ---------------------------------------------------------------------------
// History.

/// How far back the history filter reaches (hours; 0 = all).
const SPANS: [(u32, &str); 5] = [
    (0, "Any time"),
    (1, "Last hour"),
    (24, "Last 24 hours"),
    (168, "Last 7 days"),
    (720, "Last 30 days"),
];

#[component]
fn HistoryCard(agents: Memo<Vec<AgentInfo>>, changed: RwSignal<u32>) -> impl IntoView {
    let agent = RwSignal::new(String::new());
    let metric = RwSignal::new(String::new());
    let state = RwSignal::new(String::new());
    let span = RwSignal::new(0u32);
    let sort = RwSignal::new(AlertSort::Time);
    let order = RwSignal::new(SortOrder::Desc);
    let offset = RwSignal::new(0u32);
    let query = Memo::new(move |_| AlertQuery {
        agent_id: agent.get().parse().ok(),
        metric: AlertMetric::parse(&metric.get()),
        state: match state.get().as_str() {
            "firing" => Some(AlertState::Firing),
            "resolved" => Some(AlertState::Resolved),
            _ => None,
        },
        sort: Some(sort.get()),
        order: Some(order.get()),
        limit: Some(PAGE),
        offset: Some(offset.get()),
        ..Default::default()
    });
    // The time window ends now, at each load (and poll).
    let with_since = move |mut q: AlertQuery| {
        let hours = span.get_untracked();
        q.since = (hours > 0).then(|| format::now_ms() - i64::from(hours) * 3_600_000);
        q
    };
    let page = LocalResource::new(move || {
        changed.track();
        span.track();
        let q = with_since(query.get());
        async move { api::alerts(&q).await }
    });
    // Keep the last page on screen while the next loads (no layout shift).
    let shown = Memo::new(
        move |prev: Option<&Option<Result<api::AlertPage, ApiError>>>| match page.get() {
            None => prev.cloned().flatten(),
            some => some,
        },
    );
    let clear_confirm = RwSignal::new(false);
    let clear = Action::new_local(move |_: &()| {
        let q = with_since(query.get_untracked());
        async move { api::clear_alerts(&q).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = clear.value().get() {
            clear_confirm.set(false);
            offset.set(0);
            changed.update(|c| *c += 1);
        }
    });
    let filter_changed = move || offset.set(0);
    let sort_by = move |key: AlertSort| {
        if sort.get_untracked() == key {
            order.update(|o| {
                *o = if *o == SortOrder::Desc {
                    SortOrder::Asc
                } else {
                    SortOrder::Desc
                }
            });
        } else {
            sort.set(key);
            order.set(if key == AlertSort::Time {
                SortOrder::Desc
            } else {
                SortOrder::Asc
            });
        }
        offset.set(0);
    };
    let aria_sort = move |key: AlertSort| {
        if sort.get() != key {
            "none"
        } else if order.get() == SortOrder::Asc {
            "ascending"
        } else {
            "descending"
        }
    };
    let arrow = move |key: AlertSort| {
        if sort.get() != key {
            ""
        } else if order.get() == SortOrder::Asc {
            " ↑"
        } else {
            " ↓"
        }
    };
    let total = move || shown.with(|p| p.as_ref().and_then(|p| p.as_ref().ok()).map(|p| p.total));

    view! {
        <section class="card" aria-labelledby="history-title">
            <div class="card-head">
                <h2 class="card-title" id="history-title">"History"</h2>
                {move || if clear_confirm.get() {
                    Either::Left(view! {
                        <span class="confirm" role="group" aria-label="Confirm clearing">
                            {move || format!("Delete {} event(s) matching the filter?", total().unwrap_or(0))}
                            <button type="button" class="button danger small" id="confirm-clear"
                                disabled=move || clear.pending().get()
                                on:click=move |_| { clear.dispatch(()); }>"Delete"</button>
                            <button type="button" class="button secondary small" on:click=move |_| clear_confirm.set(false)>"Cancel"</button>
                        </span>
                    })
                } else {
                    Either::Right(view! {
                        <button type="button" class="button secondary small" id="clear-history"
                            disabled=move || total().unwrap_or(0) == 0
                            on:click=move |_| clear_confirm.set(true)>"Clear…"</button>
                    })
                }}
            </div>
            <div class="filters" role="group" aria-label="Filter the history">
                <label>"Agent"
                    <select id="history-agent" on:change=move |ev| { agent.set(event_target_value(&ev)); filter_changed(); }>
                        <option value="">"All agents"</option>
                        {move || agents.get().into_iter().map(|a| view! { <option value=a.id.to_string()>{a.name}</option> }).collect_view()}
                    </select>
                </label>
                <label>"Metric"
                    <select id="history-metric" on:change=move |ev| { metric.set(event_target_value(&ev)); filter_changed(); }>
                        <option value="">"All metrics"</option>
                        {AlertMetric::ALL.into_iter().map(|m| view! { <option value=m.as_str()>{metric_option(m)}</option> }).collect_view()}
                    </select>
                </label>
                <label>"State"
                    <select id="history-state" on:change=move |ev| { state.set(event_target_value(&ev)); filter_changed(); }>
                        <option value="">"Firing and resolved"</option>
                        <option value="firing">"Firing"</option>
                        <option value="resolved">"Resolved"</option>
                    </select>
                </label>
                <label>"When"
                    <select id="history-span" on:change=move |ev| { span.set(event_target_value(&ev).parse().unwrap_or(0)); filter_changed(); }>
                        {SPANS.into_iter().map(|(h, text)| view! { <option value=h.to_string()>{text}</option> }).collect_view()}
                    </select>
                </label>
            </div>
            {move || clear.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorNote what="Clearing the history" error=e /> })}
            <div class="table-wrap history" id="history" aria-busy=move || page.get().is_none().to_string()>
                <table class="table">
                    <thead><tr>
                        <th scope="col" aria-sort=move || aria_sort(AlertSort::Time)>
                            <button type="button" class="sort-button" id="sort-time" on:click=move |_| sort_by(AlertSort::Time)>
                                "Time" {move || arrow(AlertSort::Time)}
                            </button>
                        </th>
                        <th scope="col" aria-sort=move || aria_sort(AlertSort::Agent)>
                            <button type="button" class="sort-button" id="sort-agent" on:click=move |_| sort_by(AlertSort::Agent)>
                                "Agent" {move || arrow(AlertSort::Agent)}
                            </button>
                        </th>
                        <th scope="col">"What"</th><th scope="col">"State"</th><th scope="col">"Value"</th><th scope="col">"Delivery"</th>
                    </tr></thead>
                    <tbody>
                        {move || match shown.get() {
                            None => EitherOf3::A(view! { <tr><td colspan="6"><span class="skeleton-text"></span></td></tr> }),
                            Some(Err(e)) => EitherOf3::B(view! {
                                <tr><td colspan="6">
                                    <ErrorNote what="Loading the alert history" error=e retry=Callback::new(move |_| page.refetch()) />
                                </td></tr>
                            }),
                            Some(Ok(p)) => EitherOf3::C(if p.items.is_empty() {
                                Either::Left(view! {
                                    <tr><td colspan="6" class="empty" id="history-empty">"No alerts match. Alerts appear here when a rule fires or resolves."</td></tr>
                                })
                            } else {
                                Either::Right(p.items.into_iter().map(event_row).collect_view())
                            }),
                        }}
                    </tbody>
                </table>
            </div>
            <div class="pager">
                <button type="button" class="button secondary small" id="history-prev"
                    disabled=move || offset.get() == 0
                    on:click=move |_| offset.update(|o| *o = o.saturating_sub(PAGE))>"← Newer"</button>
                <span class="muted small" id="history-count">{move || match total() {
                    Some(0) => "0 events".to_string(),
                    Some(t) => format!("{}–{} of {t}", offset.get() + 1, (u64::from(offset.get() + PAGE)).min(t)),
                    None => "\u{a0}".to_string(),
                }}</span>
                <button type="button" class="button secondary small" id="history-next"
                    disabled=move || total().is_none_or(|t| u64::from(offset.get() + PAGE) >= t)
                    on:click=move |_| offset.update(|o| *o += PAGE)>"Older →"</button>
            </div>
        </section>
    }
}

fn event_row(e: AlertEvent) -> impl IntoView {
    let firing = e.state == AlertState::Firing;
    let cmp = e.comparison.map(Comparison::symbol).unwrap_or(">");
    let value = if e.metric == AlertMetric::Offline {
        format!(
            "silent {} (limit {})",
            value_text(e.metric, e.value),
            value_text(e.metric, e.threshold)
        )
    } else {
        format!(
            "{} ({cmp} {})",
            value_text(e.metric, e.value),
            value_text(e.metric, e.threshold)
        )
    };
    let what = match &e.rule_name {
        Some(n) => format!("{} · {n}", what_text(e.metric, e.label.as_deref())),
        None => what_text(e.metric, e.label.as_deref()),
    };
    let delivery = if e.deliveries.is_empty() {
        "—".to_string()
    } else {
        e.deliveries
            .iter()
            .map(|d| {
                let mut s = format!("{} {}", channel_name(d.channel), status_name(d.status));
                if let Some(err) = &d.error {
                    s.push_str(&format!(" ({err})"));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (agent_tip, what_tip) = (e.agent_name.clone(), what.clone());
    view! {
        <tr class="event-row" data-state=e.state.as_str()>
            <td class="nowrap">{format::datetime(e.ts_ms)}</td>
            <td class="name-cell"><span class="clip" title=agent_tip>{e.agent_name}</span></td>
            <td class="name-cell"><span class="clip" title=what_tip>{what}</span></td>
            <td><span class=if firing { "badge badge-firing" } else { "badge badge-online" }>{if firing { "Firing" } else { "Resolved" }}</span></td>
            <td class="nowrap">{value}</td>
            <td class="small">{delivery}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(metric: AlertMetric) -> Rule {
        Rule {
            id: 1,
            agent_id: 1,
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
