//! The alert history: filters, sorting and paging.

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;

use super::notifications::{channel_name, status_name};
use super::{metric_option, value_text, what_text};
use crate::api::{
    self, AgentInfo, AlertEvent, AlertMetric, AlertQuery, AlertSort, AlertState, ApiError,
    Comparison, SortOrder,
};
use crate::components::common::ErrorNote;
use crate::format;

/// History page size.
const PAGE: u32 = 25;

/// How far back the history filter reaches (hours; 0 = all).
const SPANS: [(u32, &str); 5] = [
    (0, "Any time"),
    (1, "Last hour"),
    (24, "Last 24 hours"),
    (168, "Last 7 days"),
    (720, "Last 30 days"),
];

#[component]
pub(super) fn HistoryCard(agents: Memo<Vec<AgentInfo>>, changed: RwSignal<u32>) -> impl IntoView {
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
    } else if e.metric.is_condition() {
        // A container down or unhealthy, a failed unit: the state says it.
        String::new()
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
                let name = d.channel_name.as_deref().unwrap_or(channel_name(d.channel));
                let mut s = format!("{name} {}", status_name(d.status));
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
            <td class="name-cell" data-label="Agent"><span class="clip" title=agent_tip>{e.agent_name}</span></td>
            <td class="name-cell" data-label="What"><span class="clip" title=what_tip>{what}</span></td>
            <td data-label="State"><span class=if firing { "badge badge-firing" } else { "badge badge-online" }>{if firing { "Firing" } else { "Resolved" }}</span></td>
            <td class="nowrap" data-label="Value">{value}</td>
            <td class="small" data-label="Delivery">{delivery}</td>
        </tr>
    }
}
