//! The rules card: the table of rules, and the form to create or edit one.

use leptos::either::{Either, EitherOf3};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;

use super::rule_form::{
    OTHER_TAG, RATE_UNITS, RuleForm, RuleOp, field_problem, form_field, own_tags, rule_sentence,
    update_of,
};
use super::{agent_name, condition_text, metric_option, short_seconds, value_text, what_text};
use crate::api::{self, AgentInfo, AlertMetric, ApiError, Rule, UpdateRuleRequest};
use crate::components::common::{ErrorNote, use_hydrated};

#[component]
pub(super) fn RulesCard(
    agents: Memo<Vec<AgentInfo>>,
    agents_failed: Signal<Option<ApiError>>,
    rules: LocalResource<Result<Vec<Rule>, ApiError>>,
    changed: RwSignal<u32>,
) -> impl IntoView {
    let ready = use_hydrated();
    let form = RuleForm::new();
    let confirm = RwSignal::new(None::<u64>);
    let op = Action::new_local(move |op: &RuleOp| {
        let op = op.clone();
        let notify = form.notify();
        async move {
            match op {
                RuleOp::Save(None, r) => {
                    let rule = api::create_rule(&r).await?;
                    api::set_rule_notify(rule.id, &notify).await.map(|_| true)
                }
                RuleOp::Save(Some(id), r) => {
                    api::update_rule(id, &update_of(*r)).await?;
                    api::set_rule_notify(id, &notify).await.map(|_| true)
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
                // A refusal of the tag typed or picked lands by the tag.
                let field = e.field().and_then(form_field).map(|f| match f {
                    "tag" if form.agent.get_untracked() != OTHER_TAG => "agent",
                    f => f,
                });
                form.problem.set(Some((field, rule_sentence(&e))));
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
    // What runs on it now: its containers and systemd units, offered for
    // the rules that name one (typing another is allowed).
    let running = LocalResource::new(move || {
        let agent = form.agent.get().parse::<u64>().ok();
        async move {
            match agent {
                Some(id) => api::running(id).await.ok(),
                None => None,
            }
        }
    });
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
                        // One agent, or every agent of yours with a tag (now
                        // and later): a known tag or one typed.
                        <select id="rule-agent" node_ref=first_field prop:value=move || form.agent.get()
                            disabled=move || form.tag_rule.get()
                            on:change=move |ev| form.agent.set(event_target_value(&ev))>
                            <option value="">"Choose an agent…"</option>
                            {move || agents.get().into_iter().map(|a| {
                                let id = a.id.to_string();
                                let selected = form.agent.get_untracked() == id;
                                view! { <option value=id selected=selected>{a.name}</option> }
                            }).collect_view()}
                            // An agent rule being edited stays on an agent.
                            {move || (form.editing.get().is_none() || form.tag_rule.get()).then(|| {
                                let current = form.agent.get_untracked();
                                let mut tags = agents.with(|a| own_tags(a));
                                if let Some(t) = current.strip_prefix("tag:").filter(|t| !t.is_empty() && !tags.iter().any(|x| x == t)) {
                                    tags.push(t.to_string());
                                }
                                view! {
                                    <optgroup label="Every agent tagged">
                                        {tags.into_iter().map(|t| {
                                            let value = format!("tag:{t}");
                                            let selected = current == value;
                                            view! { <option value=value selected=selected>{t}</option> }
                                        }).collect_view()}
                                        <option value=OTHER_TAG selected=current == OTHER_TAG>"Another tag…"</option>
                                    </optgroup>
                                }
                            })}
                        </select>
                        {field_problem(form, "agent")}
                    </label>
                    <label class:hidden=move || form.agent.get() != OTHER_TAG>"Tag (every agent of yours with it, now and later)"
                        <input id="rule-tag" maxlength="32" bind:value=form.tag placeholder="vps" />
                        {field_problem(form, "tag")}
                    </label>
                    <label>"Watch"
                        <select id="rule-metric" prop:value=move || form.metric.get()
                            on:change=move |ev| form.metric.set(event_target_value(&ev))>
                            {AlertMetric::ALL.into_iter().filter(|m| !m.is_check()).map(|m| {
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
                            Some("container") => "Container (empty: every container)",
                            Some("unit") => "Unit (empty: every unit)",
                            _ => "Sensor (empty: every sensor)",
                        }}
                        {move || match form.metric().label_kind() {
                            // Containers and units: free text (a rule may
                            // name a container not created yet), with the
                            // ones running now offered.
                            Some(kind @ ("container" | "unit")) => Either::Left(view! {
                                <input id="rule-label" list="rule-label-options" autocomplete="off"
                                    placeholder=if kind == "unit" { "Every unit" } else { "Every container" }
                                    bind:value=form.label />
                                <datalist id="rule-label-options">
                                    {move || {
                                        let mut offered = running
                                            .get()
                                            .flatten()
                                            .map(|now| api::running_labels(&now, kind))
                                            .unwrap_or_default();
                                        // Containers of the last hour too.
                                        seen.with(|s| if let Some(Ok(s)) = s {
                                            offered.extend(api::labels_of(s, kind));
                                        });
                                        offered.sort();
                                        offered.dedup();
                                        offered.into_iter().map(|l| view! { <option value=l></option> }).collect_view()
                                    }}
                                </datalist>
                            }),
                            // The agent's own mounts, interfaces and sensors
                            // (from its latest reports), not free text: a typo
                            // would save a rule that can never fire.
                            kind => Either::Right(view! {
                                <select id="rule-label" prop:value=move || form.label.get()
                                    on:change=move |ev| form.label.set(event_target_value(&ev))>
                                    <option value="">{match kind {
                                        Some("mount") => "Every mount",
                                        Some("iface") => "Every interface",
                                        _ => "Every sensor",
                                    }}</option>
                                    {move || {
                                        let kind = kind.unwrap_or("mount");
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
                            }),
                        }}
                        {field_problem(form, "label")}
                    </label>
                    <label class:hidden=move || form.metric().is_condition()>"Condition"
                        <span class="input-pair">
                            <select id="rule-comparison" aria-label="Comparison" prop:value=move || form.comparison.get()
                                on:change=move |ev| form.comparison.set(event_target_value(&ev))>
                                <option value="gt">"above"</option>
                                <option value="lt">"below"</option>
                            </select>
                            <input id="rule-threshold" inputmode="decimal" aria-label="Threshold" bind:value=form.threshold />
                            {move || if form.metric().unit() == "B/s" {
                                Either::Left(view! {
                                    <select id="rule-rate-unit" aria-label="Unit" prop:value=move || form.rate_unit.get()
                                        on:change=move |ev| form.rate_unit.set(event_target_value(&ev))>
                                        {RATE_UNITS.into_iter().map(|(u, _)| view! { <option value=u selected=form.rate_unit.get_untracked() == u>{u}</option> }).collect_view()}
                                    </select>
                                })
                            } else {
                                Either::Right(view! { <span class="unit muted">{form.metric().unit()}</span> })
                            }}
                        </span>
                        {field_problem(form, "threshold")}
                    </label>
                    <label>
                        {move || match form.metric() {
                            AlertMetric::Offline => "Silent for (min; empty: 3 intervals)",
                            AlertMetric::ContainerRestarts => "Within (min, at most 15)",
                            _ => "For at least (min; empty: at once)",
                        }}
                        <input id="rule-duration" inputmode="decimal" bind:value=form.duration placeholder="—" />
                        {field_problem(form, "duration")}
                    </label>
                    <label>"Repeat at most every (min)"
                        <input id="rule-cooldown" inputmode="decimal" bind:value=form.cooldown />
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
                    <super::channel_picker::ChannelPicker form=form />
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
            .map(|f| {
                let text = match &f.label {
                    Some(l) => format!("{l}: {}", value_text(r.metric, f.value)),
                    None => value_text(r.metric, f.value),
                };
                // A rule on a tag fires per agent.
                match f.agent_id {
                    Some(a) => format!("{} {text}", agent_name(agents, a)),
                    None => text,
                }
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
    let agent = match r.target.as_ref().map(|t| &t.tag) {
        Some(tag) => format!("every agent tagged {tag}"),
        None => agent_name(agents, r.agent_id),
    };
    let (title_tip, what_tip, agent_tip) = (title.clone(), what.clone(), agent.clone());
    let rule = StoredValue::new(r);
    view! {
        <tr class="rule-row" data-rule=id.to_string()>
            <td class="name-cell"><strong class="clip" title=title_tip>{title}</strong><div class="muted small clip" title=what_tip>{what}</div></td>
            <td class="name-cell" data-label="Agent"><span class="clip" title=agent_tip>{agent}</span></td>
            <td class="nowrap" data-label="Condition">{condition}</td>
            <td class="nowrap" data-label="Repeat">{cooldown}</td>
            <td data-label="State"><span class=state_class>{state}</span></td>
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
