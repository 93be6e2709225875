//! What runs on an agent's machine, below its charts: the containers table
//! (sortable, live, state and health badges; a row opens that container's
//! CPU and memory charts over the page's range), the busiest processes and
//! the systemd services (failed first). Each part shows only when the agent
//! reports it.

use leptos::prelude::*;
use storage::model::{Container, ContainerCounts, HistoryResponse, Report};

use super::agent::{CHART_H, Plot, PlotView, Range, live_window};
use crate::api::{self, ApiError};
use crate::chart_data::{Line, Unit, align, report_interval_ms};
use crate::components::modal::Modal;
use crate::format;
use crate::live::LiveFeed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Name,
    State,
    Cpu,
    Memory,
    Restarts,
}

/// "12 containers, 1 unhealthy": the overview card's line, too.
pub fn counts_text(c: &ContainerCounts) -> String {
    let mut text = format!(
        "{} container{}",
        c.total,
        if c.total == 1 { "" } else { "s" }
    );
    if c.stopped > 0 {
        text.push_str(&format!(", {} stopped", c.stopped));
    }
    if c.unhealthy > 0 {
        text.push_str(&format!(", {} unhealthy", c.unhealthy));
    }
    text
}

/// "1 failed service", or nothing when none failed (or none are reported).
pub fn failed_text(r: &Report) -> Option<String> {
    let n = r
        .services
        .as_ref()?
        .iter()
        .filter(|s| s.is_failed())
        .count();
    (n > 0).then(|| format!("{n} failed service{}", if n == 1 { "" } else { "s" }))
}

fn sorted(mut list: Vec<Container>, by: Column, desc: bool) -> Vec<Container> {
    let num = |v: Option<f64>| v.unwrap_or(-1.0);
    list.sort_by(|a, b| {
        let o = match by {
            Column::Name => a.name.cmp(&b.name),
            Column::State => (a.state.as_str(), &a.health).cmp(&(b.state.as_str(), &b.health)),
            Column::Cpu => num(a.cpu_pct).total_cmp(&num(b.cpu_pct)),
            Column::Memory => a.mem_used_bytes.cmp(&b.mem_used_bytes),
            Column::Restarts => a.restarts.cmp(&b.restarts),
        };
        if desc { o.reverse() } else { o }
    });
    list
}

#[component]
pub fn WhatRuns(id: u64, feed: LiveFeed, range: Memo<Range>) -> impl IntoView {
    let latest = Memo::new(move |_| feed.reports.with(|r| r.last().cloned()));
    let sort = RwSignal::new((Column::Name, false));
    let open = RwSignal::new(None::<String>);
    let header = move |col: Column, text: &'static str| {
        view! {
            <th aria-sort=move || match sort.get() {
                (c, false) if c == col => "ascending",
                (c, true) if c == col => "descending",
                _ => "none",
            }>
                <button type="button" class="link-button" data-sort=text
                    on:click=move |_| sort.update(|(c, d)| { *d = *c == col && !*d; *c = col; })>{text}</button>
            </th>
        }
    };
    let containers = move || {
        let list = latest.with(|r| r.as_ref().and_then(|r| r.containers.clone()))?;
        let counts = ContainerCounts::of(&list);
        let (by, desc) = sort.get();
        let rows = sorted(list, by, desc).into_iter().map(|c| {
            let name = c.name.clone();
            let row_name = c.name.clone();
            let state = if c.is_running() { "online" } else { "offline" };
            let health = c.health.clone().map(|h| {
                let class = if h == "unhealthy" { "badge badge-firing" } else { "badge" };
                view! { <span class=class>{h}</span> }
            });
            let mem = match (c.mem_used_bytes, c.mem_limit_bytes) {
                (Some(u), Some(l)) => format!("{} / {}", format::bytes(u as f64), format::bytes(l as f64)),
                (Some(u), None) => format::bytes(u as f64),
                _ => "—".into(),
            };
            let net = match (c.net_rx_bps, c.net_tx_bps) {
                (Some(rx), Some(tx)) => format!("↓ {} ↑ {}", format::rate(rx as f64), format::rate(tx as f64)),
                _ => "—".into(),
            };
            view! {
                <tr data-container=row_name>
                    <td><button type="button" class="link-button" on:click=move |_| open.set(Some(name.clone()))>{c.name.clone()}</button>
                        <div class="muted tiny ellipsis">{c.image.clone()}</div></td>
                    <td><span class=format!("badge badge-{state}")><span class="dot" aria-hidden="true"></span>{c.state.clone()}</span> {health}</td>
                    <td data-label="CPU">{c.cpu_pct.map(format::pct).unwrap_or_else(|| "—".into())}</td>
                    <td data-label="Memory">{mem}</td>
                    <td class="small" data-label="Network">{net}</td>
                    <td data-label="Restarts">{c.restarts.map(|r| r.to_string()).unwrap_or_else(|| "—".into())}</td>
                </tr>
            }
        }).collect_view();
        Some(view! {
            <section class="card" id="containers">
                <h2 class="section-title">"Containers " <span class="muted small" id="container-counts">{counts_text(&counts)}</span></h2>
                <div class="table-wrap"><table class="table">
                    <thead><tr>
                        {header(Column::Name, "Name")}{header(Column::State, "State")}{header(Column::Cpu, "CPU")}
                        {header(Column::Memory, "Memory")}<th>"Network"</th>{header(Column::Restarts, "Restarts")}
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table></div>
            </section>
        })
    };
    let processes = move || {
        let mut list = latest.with(|r| r.as_ref().and_then(|r| r.processes.clone()))?;
        list.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct));
        Some(view! {
            <section class="card" id="processes">
                <h2 class="section-title">"Top processes"</h2>
                <div class="table-wrap"><table class="table">
                    <thead><tr><th>"Process"</th><th>"PID"</th><th>"User"</th><th>"CPU"</th><th>"Memory"</th></tr></thead>
                    <tbody>{list.into_iter().map(|p| view! {
                        <tr><td>{p.name}<div class="muted tiny ellipsis">{p.cmdline}</div></td><td data-label="PID">{p.pid}</td>
                            <td data-label="User">{p.user.unwrap_or_default()}</td><td data-label="CPU">{format::pct(p.cpu_pct)}</td>
                            <td data-label="Memory">{format::bytes(p.rss_bytes as f64)}</td></tr>
                    }).collect_view()}</tbody>
                </table></div>
            </section>
        })
    };
    let services = move || {
        let mut list = latest.with(|r| r.as_ref().and_then(|r| r.services.clone()))?;
        list.sort_by(|a, b| (!a.is_failed(), &a.unit).cmp(&(!b.is_failed(), &b.unit)));
        Some(view! {
            <section class="card" id="services">
                <h2 class="section-title">"Services"</h2>
                {list.is_empty().then(|| view! { <p class="muted small">"No failed units."</p> })}
                <ul class="plain-list">{list.into_iter().map(|s| {
                    let class = if s.is_failed() { "badge badge-firing" } else { "badge" };
                    let unit = s.unit.clone();
                    view! { <li data-unit=unit><span class=class>{s.active}</span>" "{s.unit}" "<span class="muted tiny">{s.sub}</span></li> }
                }).collect_view()}</ul>
            </section>
        })
    };
    view! {
        {containers}
        {processes}
        {services}
        {move || open.get().map(|name| {
            let close = Callback::new(move |_| open.set(None));
            view! { <ContainerCharts id=id name=name feed=feed range=range on_close=close /> }
        })}
    }
}

/// One container's CPU and memory over the page's range: live from the
/// WebSocket, else `/api/history/{id}/containers?name=`.
#[component]
fn ContainerCharts(
    id: u64,
    name: String,
    feed: LiveFeed,
    range: Memo<Range>,
    on_close: Callback<()>,
) -> impl IntoView {
    let history = LocalResource::new({
        let name = name.clone();
        move || {
            let name = name.clone();
            let range = range.get();
            async move {
                match range.start() {
                    Some(start) => Some(api::container_history(id, &name, start, 600).await),
                    None => None,
                }
            }
        }
    });
    let cpu = container_plot(
        name.clone(),
        "container.cpu_pct",
        Unit::Pct,
        range,
        feed,
        history,
    );
    let mem = container_plot(
        name.clone(),
        "container.mem_used_bytes",
        Unit::Bytes,
        range,
        feed,
        history,
    );
    view! {
        <Modal title=format!("{name} · {}", range.get_untracked().label()) on_close=on_close id="container-modal">
            <h3 class="section-title">"CPU (% of one core)"</h3>
            <PlotView plot=cpu label="Container CPU" height=CHART_H />
            <h3 class="section-title">"Memory used"</h3>
            <PlotView plot=mem label="Container memory" height=CHART_H />
        </Modal>
    }
}

type ContainerHistory = LocalResource<Option<Result<HistoryResponse, ApiError>>>;

fn container_plot(
    name: String,
    metric: &'static str,
    unit: Unit,
    range: Memo<Range>,
    feed: LiveFeed,
    history: ContainerHistory,
) -> Memo<Plot> {
    Memo::new(move |_| {
        let line = |points| {
            vec![Line {
                label: name.clone(),
                points,
            }]
        };
        if range.get() == Range::Live {
            return feed.reports.with(|all| {
                let reports = live_window(all);
                let points = reports
                    .iter()
                    .filter_map(|r| {
                        let c = r.containers.as_ref()?.iter().find(|c| c.name == name)?;
                        let v = match metric {
                            "container.cpu_pct" => c.cpu_pct?,
                            _ => c.mem_used_bytes? as f64,
                        };
                        Some((r.ts_ms, v, v, v))
                    })
                    .collect();
                let (spec, data) = align(
                    &line(points),
                    report_interval_ms(reports),
                    false,
                    unit,
                    CHART_H,
                );
                Plot::Ready(spec, data, None)
            });
        }
        match history.get() {
            None | Some(None) => Plot::Loading,
            Some(Some(Err(e))) => Plot::Failed(e),
            Some(Some(Ok(resp))) => {
                let points = resp
                    .series
                    .iter()
                    .find(|s| s.metric == metric)
                    .map(|s| s.points.clone())
                    .unwrap_or_default();
                let (spec, mut data) = align(
                    &line(points),
                    resp.interval_ms,
                    resp.tier != "5s",
                    unit,
                    CHART_H,
                );
                let start = resp.stop_ms - range.get_untracked().span_ms();
                data.frame(start, resp.stop_ms);
                Plot::Ready(spec, data, Some(start))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_like_the_overview() {
        let c = ContainerCounts {
            total: 12,
            running: 11,
            unhealthy: 1,
            stopped: 1,
        };
        assert_eq!(counts_text(&c), "12 containers, 1 stopped, 1 unhealthy");
        let one = ContainerCounts {
            total: 1,
            running: 1,
            ..ContainerCounts::default()
        };
        assert_eq!(counts_text(&one), "1 container");
    }

    #[test]
    fn sorting_by_a_column_and_back() {
        let c = |name: &str, cpu: Option<f64>| Container {
            name: name.into(),
            cpu_pct: cpu,
            ..Container::default()
        };
        let list = vec![c("b", Some(5.0)), c("a", None), c("c", Some(50.0))];
        let names = |l: Vec<Container>| l.into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(
            names(sorted(list.clone(), Column::Cpu, true)),
            ["c", "b", "a"]
        );
        assert_eq!(names(sorted(list, Column::Name, false)), ["a", "b", "c"]);
    }
}
