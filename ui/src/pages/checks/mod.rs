//! Uptime checks: the list with state, last latency, uptime over 24 h and
//! 30 d and the 90 daily bars (`GET /api/checks?days=90`), asked again
//! every 5 seconds; the form that creates and edits a check (fields by
//! kind: HTTP, TCP, DNS, ping), refusing bad values by field; delete with
//! confirmation. A check runs from the server or one of the user's agents
//! ("Run from"). One check's page is [`detail`].

pub mod detail;
mod form;
mod status_page_editor;
mod status_pages;

use crate::components::common::Title;
use leptos::either::{Either, EitherOf3};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use storage::model::{CheckInfo, CheckKind, CheckRequest, CheckState};

use crate::api::{self, ApiError};
use crate::components::common::{ErrorNote, StatusBadge, use_hydrated, use_now};
use crate::format;
use form::{CheckForm, METHODS, check_problem, field_problem};

/// The badge class and word of a check's state.
pub(crate) fn state_badge(state: CheckState) -> (&'static str, &'static str) {
    match state {
        CheckState::Up => ("online", "Up"),
        CheckState::Down => ("offline", "Down"),
        CheckState::Pending => ("pending", "Pending"),
        CheckState::Paused => ("paused", "Paused"),
    }
}

/// A percentage of uptime, or a dash before the first run.
pub(crate) fn uptime_text(pct: Option<f64>) -> String {
    pct.map(|p| format!("{p:.2} %"))
        .unwrap_or_else(|| "—".into())
}

/// What a check probes, in a few words.
fn kind_word(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::Http => "HTTP",
        CheckKind::Tcp => "TCP",
        CheckKind::Dns => "DNS",
        CheckKind::Ping => "Ping",
    }
}

/// Days of the history strip.
pub(crate) const STRIP_DAYS: u32 = 90;

/// One bar per UTC day, oldest first: green all up, amber mostly, red
/// worse, grey without runs. Static (the list redraws a row when it changes).
#[component]
pub(crate) fn UptimeStrip(days: Vec<Option<f64>>) -> impl IntoView {
    let n = days.len();
    let label = format!("Uptime per day, last {n} days");
    view! {
        <div class="uptime-strip" role="img" aria-label=label>
            {days.into_iter().enumerate().map(|(i, d)| {
                let ago = n - 1 - i;
                let when = match ago { 0 => "today".to_string(), 1 => "yesterday".to_string(), a => format!("{a} days ago") };
                let (class, title) = match d {
                    None => ("none", format!("{when}: no runs")),
                    Some(p) if p >= 99.9 => ("ok", format!("{when}: {p:.2} %")),
                    Some(p) if p >= 95.0 => ("part", format!("{when}: {p:.2} %")),
                    Some(p) => ("bad", format!("{when}: {p:.2} %")),
                };
                view! { <span class=format!("day {class}") title=title></span> }
            }).collect_view()}
        </div>
    }
}

/// One operation on a check (one action for all: one instantiation).
#[derive(Debug, Clone)]
enum CheckOp {
    Save(Option<u64>, Box<CheckRequest>),
    Delete(u64),
}

#[component]
pub fn ChecksPage() -> impl IntoView {
    let checks = LocalResource::new(|| api::checks(STRIP_DAYS));
    // The user's own agents, which may run a check ("Run from").
    let agents = LocalResource::new(api::agents);
    let own_agents = Memo::new(move |_| {
        agents
            .get()
            .and_then(Result::ok)
            .map(|l| {
                l.into_iter()
                    .filter(|a| a.shared.is_none())
                    .map(|a| (a.id, a.name))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    let ready = use_hydrated();
    let now = use_now(5_000);
    let form = CheckForm::new();
    let confirm = RwSignal::new(None::<u64>);
    let failed = RwSignal::new(None::<ApiError>);
    Effect::new(move |prev: Option<i64>| {
        let t = now.get();
        // Not while the form is open: a refresh would not touch it, but
        // the list jumping under the cursor is no help either.
        if prev.is_some() && !form.open.get_untracked() {
            checks.refetch();
        }
        t
    });
    let op = Action::new_local(|op: &CheckOp| {
        let op = op.clone();
        async move {
            match op {
                CheckOp::Save(None, spec) => api::create_check(&spec).await.map(|_| true),
                CheckOp::Save(Some(id), spec) => api::update_check(id, &spec).await.map(|_| true),
                CheckOp::Delete(id) => api::delete_check(id).await.map(|_| false),
            }
        }
    });
    Effect::new(move |_| match op.value().get() {
        Some(Ok(saved)) => {
            if saved {
                form.open.set(false);
            }
            confirm.set(None);
            checks.refetch();
        }
        Some(Err(e)) if form.open.get_untracked() => form.problem.set(Some(check_problem(&e))),
        Some(Err(e)) => failed.set(Some(e)),
        None => {}
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        match form.request() {
            Ok(spec) => {
                form.problem.set(None);
                op.dispatch(CheckOp::Save(form.editing.get_untracked(), Box::new(spec)));
            }
            Err(problem) => form.problem.set(Some(problem)),
        }
    };
    let text_field = move |label: &'static str,
                           id: &'static str,
                           field: &'static str,
                           value: RwSignal<String>,
                           hint: &'static str| {
        view! {
            <label>{label}
                <input id=id bind:value=value placeholder=hint aria-describedby="check-error" />
                {field_problem(form, field)}
            </label>
        }
    };
    let is = move |k: CheckKind| move || form.kind() != k;

    view! {
        <Title text="Checks · StatusMonitor" />
        <div class="page-head">
            <div>
                <h1>"Checks"</h1>
                <p class="muted">"Is the service answering, not only the machine: HTTP, TCP, DNS and ping checks the server runs on a schedule."</p>
            </div>
        </div>
        {move || failed.get().map(|e| view! {
            <ErrorNote what="Changing the check" error=e retry=Callback::new(move |_| failed.set(None)) />
        })}
        <section class="card" aria-labelledby="checks-title">
            <div class="card-head">
                <h2 class="card-title" id="checks-title">"Your checks"</h2>
                <button type="button" class="button small" id="new-check" disabled=move || !ready.get()
                    on:click=move |_| form.fill(None)>"New check"</button>
            </div>
            <form class="rule-form" id="check-form" on:submit=on_submit novalidate
                    hidden=move || !form.open.get()
                    on:keydown=move |ev| if ev.key() == "Escape" { form.open.set(false); }>
                <h3 class="section-title">{move || if form.editing.get().is_some() { "Edit check" } else { "New check" }}</h3>
                <div class="form-grid">
                    {text_field("Name", "check-name", "name", form.name, "Website")}
                    <label>"Kind"
                        <select id="check-kind" prop:value=move || form.kind.get()
                            on:change=move |ev| form.kind.set(event_target_value(&ev))>
                            <option value="http">"HTTP(S)"</option>
                            <option value="tcp">"TCP port"</option>
                            <option value="dns">"DNS"</option>
                            <option value="ping">"Ping"</option>
                        </select>
                        {field_problem(form, "kind")}
                    </label>
                    <label class="wide">{move || match form.kind() {
                            CheckKind::Http => "URL",
                            CheckKind::Tcp => "Host and port",
                            CheckKind::Dns => "Name to resolve",
                            CheckKind::Ping => "Host",
                        }}
                        <input id="check-target" bind:value=form.target aria-describedby="check-error"
                            placeholder=move || match form.kind() {
                                CheckKind::Http => "https://nas.lan/",
                                CheckKind::Tcp => "nas.lan:22",
                                _ => "nas.lan",
                            } />
                        {field_problem(form, "target")}
                    </label>
                    {text_field("Every (s, 20 to 3600)", "check-interval", "interval", form.interval, "60")}
                    {text_field("Timeout (ms)", "check-timeout", "timeout", form.timeout, "10000")}
                    {text_field("Failed runs before down", "check-retries", "retries", form.retries, "0")}
                    <label class:hidden=is(CheckKind::Http)>"Method"
                        <select id="check-method" prop:value=move || form.method.get()
                            on:change=move |ev| form.method.set(event_target_value(&ev))>
                            {METHODS.into_iter().map(|m| view! { <option value=m>{m}</option> }).collect_view()}
                        </select>
                        {field_problem(form, "method")}
                    </label>
                    <label class:hidden=is(CheckKind::Http)>"Status that counts as up"
                        <span class="input-pair">
                            <input id="check-status-min" inputmode="numeric" aria-label="Lowest status" bind:value=form.status_min />
                            <span class="unit muted">"to"</span>
                            <input id="check-status-max" inputmode="numeric" aria-label="Highest status" bind:value=form.status_max />
                        </span>
                        {field_problem(form, "status")}
                    </label>
                    <label class:hidden=is(CheckKind::Http)>"Keyword (optional)"
                        <input id="check-keyword" maxlength="256" bind:value=form.keyword placeholder="Welcome" />
                        {field_problem(form, "keyword")}
                    </label>
                    <label class="check" class:hidden=is(CheckKind::Http)>
                        <input type="checkbox" id="check-keyword-absent" bind:checked=form.keyword_absent />
                        "The keyword must not appear"
                    </label>
                    <label class="check" class:hidden=is(CheckKind::Http)>
                        <input type="checkbox" id="check-follow" bind:checked=form.follow_redirects />
                        "Follow redirects"
                    </label>
                    <label class="check" class:hidden=is(CheckKind::Http)>
                        <input type="checkbox" id="check-ignore-tls" bind:checked=form.ignore_tls />
                        "Accept an invalid certificate"
                    </label>
                    <label class="wide" class:hidden=is(CheckKind::Http)>"Headers (one “Name: value” per line; a stored value is kept when left empty)"
                        <textarea id="check-headers" rows="2" bind:value=form.headers></textarea>
                        {field_problem(form, "headers")}
                    </label>
                    <label class:hidden=is(CheckKind::Dns)>"Expected address (optional)"
                        <input id="check-dns-expected" bind:value=form.dns_expected placeholder="192.168.1.10" />
                        {field_problem(form, "dns_expected")}
                    </label>
                    <label>"Run from"
                        <select id="check-runner" prop:value=move || form.runner.get()
                            on:change=move |ev| form.runner.set(event_target_value(&ev))>
                            <option value="">"The server"</option>
                            {move || own_agents.get().into_iter().map(|(id, name)| view! {
                                <option value=id.to_string()>{format!("Agent {name}")}</option>
                            }).collect_view()}
                        </select>
                        {field_problem(form, "runner")}
                    </label>
                    <label class="check">
                        <input type="checkbox" id="check-enabled" bind:checked=form.enabled />
                        "Enabled"
                    </label>
                </div>
                <div class="form-error" aria-live="polite">
                    {move || form.problem.get().and_then(|(field, p)| field.is_none().then(|| view! { <p class="error" role="alert" id="check-error">{p}</p> }))}
                </div>
                <div class="form-actions">
                    <button class="button" type="submit" id="save-check" disabled=move || op.pending().get()>
                        {move || if op.pending().get() { "Saving…" } else { "Save check" }}
                    </button>
                    <button class="button secondary" type="button" on:click=move |_| form.open.set(false)>"Cancel"</button>
                </div>
            </form>
            <div class="table-wrap" id="checks">
                {move || match checks.get() {
                    None => EitherOf3::A(view! { <div class="skeleton-row"></div> }),
                    Some(Err(e)) => EitherOf3::B(view! {
                        <ErrorNote what="Loading your checks" error=e retry=Callback::new(move |_| checks.refetch()) />
                    }),
                    Some(Ok(list)) => EitherOf3::C(if list.is_empty() {
                        Either::Left(view! { <p class="empty" id="checks-empty">"No checks yet. “New check” watches a website, a port or a host for you."</p> })
                    } else {
                        Either::Right(view! {
                            <table class="table checks-table">
                                <thead><tr>
                                    <th scope="col">"Check"</th><th scope="col">"State"</th><th scope="col">"Latency"</th>
                                    <th scope="col">"24 h"</th><th scope="col">"30 d"</th><th scope="col">"Last 90 days"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|c| check_row(c, form, confirm, op, own_agents)).collect_view()}
                                </tbody>
                            </table>
                        })
                    }),
                }}
            </div>
        </section>
        <status_pages::StatusPages
            checks=Memo::new(move |_| checks.get().and_then(Result::ok)
                .map(|l| l.into_iter().map(|c| (c.id, c.spec.name)).collect()).unwrap_or_default())
            ready=ready />
    }
}

fn check_row(
    c: CheckInfo,
    form: CheckForm,
    confirm: RwSignal<Option<u64>>,
    op: Action<CheckOp, Result<bool, ApiError>>,
    agents: Memo<Vec<(u64, String)>>,
) -> impl IntoView + use<> {
    let id = c.id;
    let (class, word) = state_badge(c.state);
    let latency = c
        .last
        .as_ref()
        .and_then(|r| r.latency_ms)
        .map(|l| format!("{l:.0} ms"))
        .unwrap_or_else(|| "—".into());
    let error = c.last.as_ref().and_then(|r| r.error.clone());
    let days = c.days.clone().unwrap_or_default();
    let what = format!(
        "{} · {} · {}",
        kind_word(c.spec.kind),
        c.spec.target,
        runner_text(c.runner, &agents.get_untracked())
    );
    let edit = c.clone();
    view! {
        <tr data-check=c.spec.name.clone()>
            <td class="name-cell">
                <a href=format!("/checks/{id}") class="check-link">{c.spec.name.clone()}</a>
                <div class="muted tiny clip" title=what.clone()>{what.clone()}</div>
            </td>
            <td data-label="State">
                <StatusBadge class=class text=word />
                {error.map(|e| view! { <div class="muted tiny">{e}</div> })}
            </td>
            <td data-label="Latency" class="check-latency">{latency}</td>
            <td data-label="24 h" class="check-uptime-24h">{uptime_text(c.uptime_24h)}</td>
            <td data-label="30 d" class="check-uptime-30d">{uptime_text(c.uptime_30d)}</td>
            <td class="strip-cell"><UptimeStrip days=days /></td>
            <td class="row-actions">
                {move || if confirm.get() == Some(id) {
                    Either::Left(view! {
                        <span class="confirm">"Delete it and its history? "
                            <button type="button" class="button danger small" on:click=move |_| { op.dispatch(CheckOp::Delete(id)); }>"Delete"</button>
                            <button type="button" class="button secondary small" on:click=move |_| confirm.set(None)>"Keep"</button>
                        </span>
                    })
                } else {
                    let edit = edit.clone();
                    Either::Right(view! {
                        <button type="button" class="button secondary small" on:click=move |_| form.fill(Some(&edit))>"Edit"</button>
                        <button type="button" class="button secondary small" on:click=move |_| confirm.set(Some(id))>"Delete"</button>
                    })
                }}
            </td>
        </tr>
    }
}

/// Where a check runs, in words: `from the server`, `from agent nas`.
pub(crate) fn runner_text(runner: Option<u64>, agents: &[(u64, String)]) -> String {
    match runner {
        None => "from the server".into(),
        Some(id) => match agents.iter().find(|(a, _)| *a == id) {
            Some((_, name)) => format!("from agent {name}"),
            None => format!("from agent #{id}"),
        },
    }
}

/// `ms` as a short duration: `45 s`, `3 min`, `2 h 5 min`, `3 d 4 h`.
pub(crate) fn duration_ms(ms: i64) -> String {
    format::duration_s(u64::try_from(ms / 1000).unwrap_or(0))
}
