//! One check's page (`/checks/{id}`): state, target, uptime over 24 h, 7 d,
//! 30 d and 1 y with the 90 daily bars; the latency chart over the range
//! picked like on an agent's page (in the URL, `?range=7d`; the agent
//! page's chart and picker); "Run now"; and the last changes between up and
//! down with how long each state lasted.

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use storage::model::CheckHistory;

use super::{UptimeStrip, duration_ms, state_badge, uptime_text};
use crate::api;
use crate::chart_data::{Line, Unit, align};
use crate::components::common::{ErrorNote, StatusBadge, Title, use_now};
use crate::format;
use crate::pages::agent::{CHART_H, Plot, PlotView, Range};

/// The ranges of the picker: the agent page's, without live.
const RANGES: [Range; 5] = [Range::H1, Range::H24, Range::D7, Range::D30, Range::Y1];

#[component]
pub fn CheckPage(id: Option<u64>) -> impl IntoView {
    view! {
        {match id {
            Some(id) => Either::Left(view! { <CheckDashboard id=id /> }),
            None => Either::Right(view! {
                <section class="card"><h1>"No such check"</h1><p><a href="/checks">"Back to your checks"</a></p></section>
            }),
        }}
    }
}

/// The latency line of `h` framed to the span `range` names, ending now.
fn latency_plot(h: &CheckHistory, range: Range) -> Plot {
    let line = Line {
        label: "Latency".into(),
        points: h
            .points
            .iter()
            .filter_map(|p| p.latency_ms.map(|l| (p.ts_ms, l, l, l)))
            .collect(),
    };
    let (spec, mut data) = align(&[line], h.interval_ms, false, Unit::Ms, CHART_H);
    let start = h.stop_ms - range.span_ms();
    data.frame(start, h.stop_ms);
    Plot::Ready(spec, data, Some(start))
}

#[component]
fn CheckDashboard(id: u64) -> impl IntoView {
    let check = LocalResource::new(move || api::check(id));
    let uptime = LocalResource::new(move || api::check_uptime(id));
    let events = LocalResource::new(move || api::check_events(id));
    let now = use_now(10_000);
    Effect::new(move |prev: Option<i64>| {
        let t = now.get();
        if prev.is_some() {
            check.refetch();
            events.refetch();
        }
        t
    });
    let query = use_query_map();
    let navigate = use_navigate();
    let range = Memo::new(move |_| {
        match query.with(|q| Range::from_key(&q.get("range").unwrap_or_default())) {
            Range::Live => Range::H24,
            r => r,
        }
    });
    let set_range = move |r: Range| {
        let url = if r == Range::H24 {
            format!("/checks/{id}")
        } else {
            format!("/checks/{id}?range={}", r.key())
        };
        navigate(
            &url,
            leptos_router::NavigateOptions {
                scroll: false,
                ..Default::default()
            },
        );
    };
    let history = LocalResource::new(move || {
        let start = range.get().start().unwrap_or("-24h");
        async move { api::check_history(id, start).await }
    });
    let plot = Memo::new(move |_| match history.get() {
        None => Plot::Loading,
        Some(Err(e)) => Plot::Failed(e),
        Some(Ok(h)) => latency_plot(&h, range.get_untracked()),
    });
    let run = Action::new_local(move |_: &()| async move { api::run_check(id).await });
    Effect::new(move |_| {
        if run.value().with(|v| v.is_some()) {
            check.refetch();
            uptime.refetch();
            events.refetch();
            history.refetch();
        }
    });
    // The last answer about the check: kept while it is asked again.
    let info = Memo::new(
        move |prev: Option<&Option<api::CheckInfo>>| match check.get() {
            Some(Ok(c)) => Some(c),
            _ => prev.cloned().flatten(),
        },
    );
    let name = move || info.with(|c| c.as_ref().map(|c| c.spec.name.clone()));

    view! {
        <Title text=move || format!("{} · StatusMonitor", name().unwrap_or_else(|| "Check".into())) />
        <nav class="crumbs" aria-label="Breadcrumb"><a href="/checks">"Checks"</a> " / "</nav>
        <header class="page-head">
            <div>
                <h1 id="check-name" class="clip">{move || name().unwrap_or_else(|| "\u{a0}".into())}</h1>
                {move || info.get().map(|c| {
                    let (class, word) = state_badge(c.state);
                    let last = c.last.clone();
                    view! {
                        <div class="facts-row" id="check-state">
                            <StatusBadge class=class text=word />
                            {c.state_since_ms.map(|t| view! { <span class="muted small">"since " {format::datetime(t)}</span> })}
                            <span class="muted small clip">{c.spec.target.clone()}</span>
                            <span class="muted small" id="check-runner">{match c.runner {
                                None => Either::Left("Runs from the server"),
                                Some(a) => Either::Right(view! { "Runs from " <a href=format!("/agents/{a}")>"its agent"</a> }),
                            }}</span>
                        </div>
                        <p class="muted small" id="check-last">{match last {
                            Some(r) => format!("Last run {}: {}{}", format::ago(now.get(), r.ts_ms),
                                if r.ok { "up" } else { "failed" },
                                match (r.latency_ms, r.error) {
                                    (_, Some(e)) => format!(" ({e})"),
                                    (Some(l), None) => format!(" in {l:.0} ms"),
                                    _ => String::new(),
                                }),
                            None => "Not run yet.".into(),
                        }}</p>
                    }
                })}
            </div>
            // Not for a check an agent runs: the server does not run it.
            {move || info.with(|c| c.as_ref().is_none_or(|c| c.runner.is_none())).then(|| view! {
                <button type="button" class="button secondary small" id="run-check"
                    disabled=move || run.pending().get() on:click=move |_| { run.dispatch(()); }>
                    {move || if run.pending().get() { "Running…" } else { "Run now" }}
                </button>
            })}
        </header>
        {move || match check.get() {
            Some(Err(e)) if !e.transient() => Some(view! {
                <ErrorNote what="Loading the check" error=e retry=Callback::new(move |_| check.refetch()) />
            }),
            _ => None,
        }}
        {move || match run.value().get() {
            Some(Err(e)) => Some(view! { <ErrorNote what="Running the check" error=e /> }),
            _ => None,
        }}

        <section class="card" id="check-uptime" aria-label="Uptime">
            {move || uptime.get().map(|u| match u {
                Ok(u) => Either::Left(view! {
                    <dl class="host-facts">
                        <div><dt>"24 h"</dt><dd>{uptime_text(u.h24)}</dd></div>
                        <div><dt>"7 d"</dt><dd>{uptime_text(u.d7)}</dd></div>
                        <div><dt>"30 d"</dt><dd>{uptime_text(u.d30)}</dd></div>
                        <div><dt>"1 y"</dt><dd>{uptime_text(u.y1)}</dd></div>
                    </dl>
                    <UptimeStrip days=u.days />
                }),
                Err(e) => Either::Right(view! { <ErrorNote what="Loading the uptime" error=e /> }),
            })}
        </section>

        <div class="range-bar">
            <h2 class="section-title">"Latency"</h2>
            <div class="segmented" role="group" aria-label="Time range" id="range-picker">
                {RANGES.into_iter().map(|r| {
                    let set_range = set_range.clone();
                    view! {
                        <button type="button" data-range=r.key()
                            aria-pressed=move || (range.get() == r).to_string()
                            on:click=move |_| set_range(r)>{r.label()}</button>
                    }
                }).collect_view()}
            </div>
        </div>
        <section class="card chart-card" data-chart="Latency">
            <PlotView plot=plot label="Latency" height=CHART_H />
        </section>

        <section class="card" aria-labelledby="events-title">
            <h2 class="card-title" id="events-title">"Events"</h2>
            <div class="table-wrap" id="check-events">
                {move || match events.get() {
                    None => EitherOf3::A(view! { <div class="skeleton-row"></div> }),
                    Some(Err(e)) => EitherOf3::B(view! { <ErrorNote what="Loading the events" error=e /> }),
                    Some(Ok(list)) => EitherOf3::C(if list.is_empty() {
                        Either::Left(view! { <p class="empty">"No changes yet."</p> })
                    } else {
                        let now_ms = now.get();
                        // How long each state lasted: until the next (newer) change, or until now.
                        let ends: Vec<Option<i64>> = std::iter::once(None)
                            .chain(list.iter().map(|e| Some(e.ts_ms)))
                            .collect();
                        Either::Right(view! {
                            <table class="table">
                                <thead><tr><th scope="col">"When"</th><th scope="col">"Went"</th><th scope="col">"Why"</th><th scope="col">"Lasted"</th></tr></thead>
                                <tbody>
                                    {list.into_iter().zip(ends).map(|(e, end)| {
                                        let (class, word) = state_badge(e.state);
                                        let lasted = match end {
                                            Some(end) => duration_ms(end - e.ts_ms),
                                            None => format!("{} so far", duration_ms(now_ms - e.ts_ms)),
                                        };
                                        view! {
                                            <tr data-event=word>
                                                <td data-label="When">{format::datetime(e.ts_ms)}</td>
                                                <td data-label="Went"><StatusBadge class=class text=word /></td>
                                                <td data-label="Why">{e.error.unwrap_or_default()}</td>
                                                <td data-label="Lasted" class="event-lasted">{lasted}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        })
                    }),
                }}
            </div>
        </section>
    }
}
