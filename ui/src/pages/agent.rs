//! One agent's dashboard: header with host facts and status; live cards
//! (CPU, memory, swap, load, disks, networks, temperatures) from the
//! WebSocket; CPU, memory, disk and network charts over a chosen range
//! (live 5 minutes from the WebSocket, otherwise the history API) with
//! drag-to-zoom; each chart opens an extended view, CPU the per-core modal.
//! The range lives in the URL (`?range=24h`) so a reload or a shared link
//! keeps it.

use crate::components::common::Title;
use leptos::either::Either;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use storage::model::{HistoryResponse, Report};

use crate::api::{self, ApiError};
use crate::chart_data::{ChartData, ChartKind, ChartSpec, align, report_interval_ms, summarize};
use crate::components::chart::Chart;
use crate::components::common::{
    ErrorNote, Gauge, StatusBadge, agent_status, use_now, width_class,
};
use crate::components::modal::Modal;
use crate::format;
use crate::live::{LiveFeed, LiveStatus, use_live};
use crate::recover::{Reconnecting, keep_trying};

/// The ranges of the picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Live,
    H1,
    H24,
    D7,
    D30,
    Y1,
}

impl Range {
    pub const ALL: [Range; 6] = [
        Range::Live,
        Range::H1,
        Range::H24,
        Range::D7,
        Range::D30,
        Range::Y1,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Range::Live => "live",
            Range::H1 => "1h",
            Range::H24 => "24h",
            Range::D7 => "7d",
            Range::D30 => "30d",
            Range::Y1 => "1y",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Range::Live => "Live 5 m",
            Range::H1 => "1 h",
            Range::H24 => "24 h",
            Range::D7 => "7 d",
            Range::D30 => "30 d",
            Range::Y1 => "1 y",
        }
    }

    /// The history API's `start`; `None` for live.
    pub fn start(self) -> Option<&'static str> {
        match self {
            Range::Live => None,
            Range::H1 => Some("-1h"),
            Range::H24 => Some("-24h"),
            Range::D7 => Some("-7d"),
            Range::D30 => Some("-30d"),
            Range::Y1 => Some("-1y"),
        }
    }

    /// The span the range names, in ms (the live window for live).
    pub fn span_ms(self) -> i64 {
        const H: i64 = 3_600_000;
        match self {
            Range::Live => LIVE_WINDOW_MS,
            Range::H1 => H,
            Range::H24 => 24 * H,
            Range::D7 => 7 * 24 * H,
            Range::D30 => 30 * 24 * H,
            Range::Y1 => 365 * 24 * H,
        }
    }

    pub fn from_key(key: &str) -> Range {
        Range::ALL
            .into_iter()
            .find(|r| r.key() == key)
            .unwrap_or(Range::Live)
    }
}

const LIVE_WINDOW_MS: i64 = 5 * 60 * 1000;
pub(crate) const CHART_H: u32 = 200;
const BIG_H: u32 = 380;

/// What a chart shows right now (the containers page draws with it too).
#[derive(Debug, Clone, PartialEq)]
pub enum Plot {
    Loading,
    Failed(ApiError),
    /// Drawn; for a history range also where the range starts (ms), so the
    /// chart can say when the agent's data begins later than that.
    Ready(ChartSpec, ChartData, Option<i64>),
}

type History = LocalResource<Option<Result<HistoryResponse, ApiError>>>;

/// The history of one group for the chosen range (nothing in live mode).
fn history_of(id: u64, group: &'static str, range: Memo<Range>) -> History {
    LocalResource::new(move || {
        let range = range.get();
        async move {
            match range.start() {
                Some(start) => Some(api::history(id, group, start, None, 600).await),
                None => None,
            }
        }
    })
}

/// The reports of the last five minutes (by the agent's own clock).
pub(crate) fn live_window(reports: &[Report]) -> &[Report] {
    let Some(newest) = reports.last().map(|r| r.ts_ms) else {
        return reports;
    };
    let cut = reports.partition_point(|r| r.ts_ms < newest - LIVE_WINDOW_MS);
    &reports[cut..]
}

fn plot_of(
    kind: ChartKind,
    range: Memo<Range>,
    feed: LiveFeed,
    history: History,
    height: u32,
) -> Memo<Plot> {
    Memo::new(move |prev: Option<&Plot>| {
        if range.get() == Range::Live {
            return feed.reports.with(|all| {
                let reports = live_window(all);
                let lines = kind.lines_from_reports(reports);
                let (spec, data) = align(
                    &lines,
                    report_interval_ms(reports),
                    false,
                    kind.unit(),
                    height,
                );
                Plot::Ready(spec, data, None)
            });
        }
        match history.get() {
            None | Some(None) => Plot::Loading,
            // The server is away: keep the chart drawn, the page says "reconnecting…".
            Some(Some(Err(e))) if e.transient() => match prev {
                Some(p @ Plot::Ready(..)) => p.clone(),
                _ => Plot::Loading,
            },
            Some(Some(Err(e))) => Plot::Failed(e),
            Some(Some(Ok(resp))) => {
                let lines = kind.lines_from_history(&resp);
                let bands = resp.tier != "5s";
                let (spec, mut data) = align(&lines, resp.interval_ms, bands, kind.unit(), height);
                // The whole span the range names, ending now: never an axis
                // outside it (the answer's start is aligned to the tier's
                // buckets, up to one bucket earlier), and room on the left
                // where there is no data yet.
                let start = resp.stop_ms - range.get_untracked().span_ms();
                data.frame(start, resp.stop_ms);
                Plot::Ready(spec, data, Some(start))
            }
        }
    })
}

#[component]
pub fn AgentPage(id: Option<u64>) -> impl IntoView {
    view! {
        {match id {
            Some(id) => Either::Left(view! { <AgentDashboard id=id /> }),
            None => Either::Right(view! {
                <section class="card"><h1>"No such agent"</h1><p><a href="/agents">"Back to your agents"</a></p></section>
            }),
        }}
    }
}

#[component]
fn AgentDashboard(id: u64) -> impl IntoView {
    let agent = LocalResource::new(move || api::agent(id));
    let feed = use_live(id);
    let now = use_now(5000);
    Effect::new(move |prev: Option<i64>| {
        let t = now.get();
        if prev.is_some() {
            agent.refetch();
        }
        t
    });
    let query = use_query_map();
    let navigate = use_navigate();
    let range =
        Memo::new(move |_| query.with(|q| Range::from_key(&q.get("range").unwrap_or_default())));
    let set_range = move |r: Range| {
        let url = if r == Range::Live {
            format!("/agents/{id}")
        } else {
            format!("/agents/{id}?range={}", r.key())
        };
        navigate(
            &url,
            leptos_router::NavigateOptions {
                scroll: false,
                ..Default::default()
            },
        );
    };
    let expanded = RwSignal::new(None::<ChartKind>);

    let cpu_hist = history_of(id, "cpu", range);
    let mem_hist = history_of(id, "memory", range);
    let disk_hist = history_of(id, "disk", range);
    let net_hist = history_of(id, "network", range);
    let hist_of = move |kind: ChartKind| match kind.group() {
        "cpu" => cpu_hist,
        "memory" => mem_hist,
        "disk" => disk_hist,
        _ => net_hist,
    };
    let latest = Memo::new(move |_| feed.reports.with(|r| r.last().cloned()));
    // The last answer about the agent: kept while the server is away.
    let info = Memo::new(
        move |prev: Option<&Option<api::AgentInfo>>| match agent.get() {
            Some(Ok(a)) => Some(a),
            _ => prev.cloned().flatten(),
        },
    );
    let name = move || match info.get() {
        Some(a) => a.name,
        None => "\u{a0}".into(),
    };
    // Known, but no report ever: no empty axes, say what to run instead.
    let never_seen = move || {
        info.with(|a| a.as_ref().is_some_and(|a| a.last_seen_ms.is_none()))
            && latest.with(Option::is_none)
    };
    provide_context(AgentSince(Memo::new(move |_| {
        info.with(|a| a.as_ref().and_then(|a| a.activated_ms))
    })));
    // Only what the owner's tools depend on, so they are not redrawn (and
    // their fields not cleared) by every refresh of the agent.
    let owner_view =
        Memo::new(move |_| info.with(|a| a.as_ref().map(|a| (a.shared.clone(), a.tags.clone()))));
    let agent_retrying = keep_trying(agent);
    let reconnecting =
        Signal::derive(move || agent_retrying.get() || feed.status.get() == LiveStatus::Retrying);
    // Back from an outage: histories that failed for it ask again.
    Effect::new(move |was: Option<bool>| {
        let now_reconnecting = agent_retrying.get();
        if was == Some(true) && !now_reconnecting {
            for h in [cpu_hist, mem_hist, disk_hist, net_hist] {
                if h.with_untracked(|r| matches!(r, Some(Some(Err(e))) if e.transient())) {
                    h.refetch();
                }
            }
        }
        now_reconnecting
    });

    view! {
        <Title text=move || format!("{} · StatusMonitor", match info.get() { Some(a) => a.name, None => "Agent".into() }) />
        <nav class="crumbs" aria-label="Breadcrumb"><a href="/agents">"Agents"</a> " / "</nav>
        <header class="page-head agent-head">
            <div>
                <h1 id="agent-name" class="clip" title=name>{name}</h1>
                <AgentFacts agent=info latest=latest now=now feed=feed />
            </div>
        </header>
        <Reconnecting when=reconnecting />
        {move || match agent.get() {
            Some(Err(e)) if !e.transient() => Some(view! {
                <ErrorNote what="Loading the agent" error=e retry=Callback::new(move |_| agent.refetch()) />
            }),
            _ => None,
        }}

        // The owner's tools; someone it is shared with sees a note instead.
        {move || owner_view.get().map(|(shared, tags)| match shared {
            None => leptos::either::Either::Left(view! { <crate::pages::agent_sharing::AgentSharing id=id tags=tags /> }),
            Some(s) => leptos::either::Either::Right(view! {
                <p class="muted" id="shared-note">{format!("Shared with you by {} ({}).", s.owner, match s.access { api::ShareAccess::Viewer => "view only", api::ShareAccess::Editor => "you may edit its alert rules" })}</p>
            }),
        })}
        {move || never_seen().then(|| view! { <WaitingForFirstReport /> })}
        <div class="agent-data" hidden=never_seen>
        <LiveCards latest=latest />

        <div class="range-bar">
            <h2 class="section-title">"History"</h2>
            <div class="segmented" role="group" aria-label="Time range" id="range-picker">
                {Range::ALL.into_iter().map(|r| {
                    let set_range = set_range.clone();
                    view! {
                        <button type="button"
                            data-range=r.key()
                            aria-pressed=move || (range.get() == r).to_string()
                            on:click=move |_| set_range(r)>
                            {r.label()}
                        </button>
                    }
                }).collect_view()}
            </div>
        </div>
        <p class="muted small chart-hint">"Drag across a chart to zoom in, double-click to zoom out. "
            {move || (range.get() != Range::Live).then_some("Shaded bands show the minimum and maximum behind each average.")}
        </p>
        <div class="chart-grid">
            {[ChartKind::Cpu, ChartKind::Memory, ChartKind::Disk, ChartKind::Network].into_iter().map(|kind| {
                let plot = plot_of(kind, range, feed, hist_of(kind), CHART_H);
                view! { <ChartCard kind=kind plot=plot on_expand=Callback::new(move |_| expanded.set(Some(kind))) /> }
            }).collect_view()}
        </div>
        <crate::pages::running::WhatRuns id=id feed=feed range=range />
        </div>

        {move || expanded.get().map(|kind| {
            let close = Callback::new(move |_| expanded.set(None));
            if kind == ChartKind::Cpu {
                Either::Left(view! { <CpuModal range=range feed=feed history=cpu_hist on_close=close /> })
            } else {
                let plot = plot_of(kind, range, feed, hist_of(kind), BIG_H);
                Either::Right(view! {
                    <Modal title=format!("{} · {}", kind.title(), range.get_untracked().label()) on_close=close id="chart-modal">
                        <PlotView plot=plot label=kind.title() height=BIG_H />
                    </Modal>
                })
            }
        })}
    }
}

/// When the agent's data begins (its activation), for the charts' notes.
#[derive(Clone, Copy)]
struct AgentSince(Memo<Option<i64>>);

/// An agent that has never reported: what to run on the machine.
#[component]
fn WaitingForFirstReport() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    #[cfg(not(feature = "hydrate"))]
    let origin = String::new();
    view! {
        <section class="card empty-state" id="waiting-first-report">
            <h2>"Waiting for the first report"</h2>
            <p>"This agent has not reported yet. On the machine to watch, run:"</p>
            <pre class="command"><code>{format!("statusmonitor-agent --server {origin} --token <the token shown when the agent was created>")}</code></pre>
            <p class="muted small">"Lost the token? Regenerate it on the "<a href="/agents">"Agents"</a>" page. Charts appear here within seconds of the first report."</p>
        </section>
    }
}

#[component]
fn AgentFacts(
    agent: Memo<Option<api::AgentInfo>>,
    latest: Memo<Option<Report>>,
    now: ReadSignal<i64>,
    feed: LiveFeed,
) -> impl IntoView {
    view! {
        <div class="agent-facts">
            {move || match agent.get() {
                Some(a) => {
                    let mut a = a;
                    // A fresh report over the socket means online, between polls too.
                    if let Some(r) = latest.get() {
                        let interval = i64::from(r.interval_ms.unwrap_or(5_000));
                        if now.get() - r.ts_ms < 3 * interval + 5_000 { a.online = true; }
                    }
                    let (c, t) = agent_status(&a);
                    let host = a.host.clone().unwrap_or_default();
                    let facts: Vec<(&str, String)> = [
                        ("Host", Some(host.hostname.clone()).filter(|h| !h.is_empty())),
                        ("OS", host.os.clone()),
                        ("Kernel", host.kernel.clone()),
                        ("CPU", host.cpu_model.clone()),
                        ("Cores", host.cores.map(|c| c.to_string())),
                        ("Arch", host.arch.clone()),
                    ].into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
                    Either::Left(view! {
                        <div class="facts-row">
                            <StatusBadge class=c text=t />
                            <span class="muted small">
                                {a.last_seen_ms.map(|t| if c == "offline" {
                                    format!("offline since {}", format::since(t))
                                } else {
                                    format!("seen {}", format::ago(now.get(), t))
                                }).unwrap_or_else(|| "never seen".into())}
                            </span>
                            {latest.get().and_then(|r| r.uptime_s).map(|u| view! {
                                <span class="muted small">"up " {format::duration_s(u)}</span>
                            })}
                            <span class="muted small live-state">
                                {move || match feed.status.get() {
                                    LiveStatus::Open if c == "offline" => "no new reports",
                                    LiveStatus::Open => "● live",
                                    LiveStatus::Connecting => "connecting…",
                                    LiveStatus::Retrying => "reconnecting…",
                                    LiveStatus::Closed => "stream ended",
                                }}
                            </span>
                        </div>
                        <dl class="host-facts">
                            {facts.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
                        </dl>
                    })
                }
                None => Either::Right(view! { <div class="facts-row"><span class="skeleton-text"></span></div><dl class="host-facts"></dl> }),
            }}
        </div>
    }
}

/// The live cards, from the newest report. One reactive closure renders
/// them all (static inside), so a report updates them in one pass.
#[component]
fn LiveCards(latest: Memo<Option<Report>>) -> impl IntoView {
    let dash = || "—".to_string();
    view! {
        <section class="live-grid" aria-label="Live values" id="live-cards">
            {move || latest.with(|r| {
                let r = r.as_ref();
                let cpu = r.and_then(|r| r.cpu.as_ref());
                let mem = r.and_then(|r| r.memory.as_ref());
                let load = match r.and_then(|r| r.load) {
                    Some([a, b, c]) => format!("{} · {} · {}", format::load(a), format::load(b), format::load(c)),
                    None => dash(),
                };
                let swap = match mem.and_then(|m| Some((m.swap_used_bytes?, m.swap_total_bytes?))) {
                    Some((_, 0)) => "no swap".to_string(),
                    Some((u, t)) => format!("{} / {}", format::bytes(u as f64), format::bytes(t as f64)),
                    None => dash(),
                };
                let disks = r.map(|r| r.disks.clone()).unwrap_or_default();
                let nets = r.map(|r| r.networks.clone()).unwrap_or_default();
                let temps = r.map(|r| r.temps.clone()).unwrap_or_default();
                let rate = |v: Option<u64>| v.map(|v| format::rate(v as f64)).unwrap_or_else(dash);
                view! {
                    <div class="card live-card">
                        <h3>"CPU"</h3>
                        <p class="big" id="live-cpu">{cpu.map(|c| format::pct(c.total_pct)).unwrap_or_else(dash)}</p>
                        <Gauge label="CPU".into() pct=cpu.map(|c| c.total_pct)
                            detail=format!("{} cores", cpu.map(|c| c.cores_pct.len()).unwrap_or(0)) />
                        <p class="muted small">"Load " {load}</p>
                    </div>
                    <div class="card live-card">
                        <h3>"Memory"</h3>
                        <p class="big">{mem.and_then(|m| m.used_pct()).map(format::pct).unwrap_or_else(dash)}</p>
                        <Gauge label="Used".into() pct=mem.and_then(|m| m.used_pct())
                            detail=mem.map(|m| format!("{} / {}", format::bytes(m.used_bytes as f64), format::bytes(m.total_bytes as f64))).unwrap_or_else(dash) />
                        <Gauge label="Swap".into() pct=mem.and_then(|m| m.swap_used_pct()) detail=swap />
                    </div>
                    <div class="card live-card">
                        <h3>"Disks"</h3>
                        // Focusable: a list that scrolls must be reachable by keyboard.
                        <div class="scroll-list" tabindex="0" role="group" aria-label="Disks">
                            {disks.is_empty().then(|| view! { <p class="muted small">"—"</p> })}
                            {disks.into_iter().map(|d| view! {
                                <Gauge label=d.mount.clone() pct=d.used_pct()
                                    detail=format!("{} / {}", format::bytes(d.used_bytes as f64), format::bytes(d.total_bytes as f64)) />
                                <p class="muted tiny io">"read " {rate(d.read_bps)} " · write " {rate(d.write_bps)}</p>
                            }).collect_view()}
                        </div>
                    </div>
                    <div class="card live-card">
                        <h3>"Network"</h3>
                        <ul class="kv-list scroll-list" tabindex="0" aria-label="Network interfaces">
                            {nets.is_empty().then(|| view! { <li class="muted small">"—"</li> })}
                            {nets.into_iter().map(|n| view! {
                                <li><span class="k">{n.iface}</span>
                                    <span class="v">"↓ " {format::rate(n.rx_bps as f64)} " · ↑ " {format::rate(n.tx_bps as f64)}</span></li>
                            }).collect_view()}
                        </ul>
                    </div>
                    <div class="card live-card">
                        <h3>"Temperatures"</h3>
                        <ul class="kv-list scroll-list" tabindex="0" aria-label="Temperatures">
                            {temps.is_empty().then(|| view! { <li class="muted small">"No sensors reported"</li> })}
                            {temps.into_iter().map(|t| view! {
                                <li><span class="k">{t.sensor}</span><span class="v">{format::celsius(t.celsius)}</span></li>
                            }).collect_view()}
                        </ul>
                    </div>
                }
            })}
        </section>
    }
}

#[component]
fn ChartCard(kind: ChartKind, plot: Memo<Plot>, on_expand: Callback<()>) -> impl IntoView {
    let title = kind.title();
    let what = if kind == ChartKind::Cpu {
        "per-core view"
    } else {
        "larger view"
    };
    view! {
        <section class="card chart-card" data-chart=title>
            <header class="chart-head">
                <h3>
                    <button type="button" class="link-button" on:click=move |_| on_expand.run(())
                        aria-label=format!("{title}: open the {what}")>{title}</button>
                </h3>
                <button type="button" class="button secondary small expand"
                    aria-label=format!("Expand {title}: the {what}")
                    on:click=move |_| on_expand.run(())>"Expand ⤢"</button>
            </header>
            <PlotView plot=plot label=title height=CHART_H />
        </section>
    }
}

/// A chart with its loading, error and empty states laid over it.
#[component]
pub(crate) fn PlotView(plot: Memo<Plot>, label: &'static str, height: u32) -> impl IntoView {
    let spec = Signal::derive(move || {
        plot.with(|p| match p {
            Plot::Ready(spec, ..) => spec.clone(),
            _ => ChartSpec {
                unit: crate::chart_data::Unit::Pct,
                height,
                series: vec![],
                bands: vec![],
            },
        })
    });
    let data = Signal::derive(move || {
        plot.with(|p| match p {
            Plot::Ready(_, data, _) => data.clone(),
            _ => ChartData::default(),
        })
    });
    // One overlay element for every state: loading, failed, empty.
    let overlay = move || {
        plot.with(|p| match p {
            Plot::Loading => Some(("plot-overlay", None, "Loading…".to_string())),
            Plot::Failed(e) => Some((
                "plot-overlay error",
                Some("alert"),
                format!("Loading {label} history failed: {e}"),
            )),
            Plot::Ready(_, d, _) if !d.has_values() => Some((
                "plot-overlay",
                None,
                "No data in this range yet".to_string(),
            )),
            Plot::Ready(..) => None,
        })
        .map(|(class, role, text)| view! { <div class=class role=role>{text}</div> })
    };
    // The agent is younger than the range: say since when there is data.
    let activated = use_context::<AgentSince>();
    let since = move || {
        plot.with(|p| match p {
            Plot::Ready(_, d, Some(start)) => {
                // The first value in the range, else the agent's first report.
                let first = d
                    .first_value_ms()
                    .or_else(|| activated.and_then(|a| a.0.get()))?;
                let stop = d.xs.last().map(|x| (x * 1000.0) as i64)?;
                let slack = ((stop - *start) / 50).max(2 * 60_000);
                (first - *start > slack).then(|| {
                    view! {
                        <p class="chart-note muted tiny">
                            "Collecting since " {format::datetime(first)} " — earlier in this range there is no data."
                        </p>
                    }
                })
            }
            _ => None,
        })
    };
    // The text alternative: min, average and max of each line in view.
    let summary = move || {
        plot.with(|p| match p {
            Plot::Ready(spec, d, _) => {
                let lines = summarize(spec, d);
                (!lines.is_empty()).then(|| {
                    let unit = spec.unit;
                    view! {
                        <details class="chart-summary">
                            <summary class="muted tiny">"Summary of " {label}</summary>
                            <ul class="tiny">
                                {lines.into_iter().map(|l| view! {
                                    <li>{format!("{}: min {}, average {}, max {}", l.label,
                                        unit.format(l.min), unit.format(l.avg), unit.format(l.max))}</li>
                                }).collect_view()}
                            </ul>
                        </details>
                    }
                })
            }
            _ => None,
        })
    };
    view! {
        <div class="plot">
            <Chart spec=spec data=data label=format!("{label} chart") />
            {overlay}
        </div>
        {since}
        {summary}
    }
}

/// Per-core usage and frequency, live bars and charts over the chosen range.
#[component]
fn CpuModal(
    range: Memo<Range>,
    feed: LiveFeed,
    history: History,
    on_close: Callback<()>,
) -> impl IntoView {
    let cores = plot_of(ChartKind::Cores, range, feed, history, 240);
    let freq = plot_of(ChartKind::CoreFreq, range, feed, history, 240);
    let latest = Memo::new(move |_| feed.reports.with(|r| r.last().and_then(|r| r.cpu.clone())));
    view! {
        <Modal title=format!("CPU per core · {}", range.get_untracked().label()) on_close=on_close id="cpu-modal">
            <div class="core-bars" aria-label="Per-core usage now">
                {move || match latest.get() {
                    Some(cpu) if !cpu.cores_pct.is_empty() => Either::Left(cpu.cores_pct.iter().enumerate().map(|(i, p)| {
                        let mhz = cpu.cores_mhz.get(i).map(|m| format::mhz(*m as f64)).unwrap_or_default();
                        view! {
                            <div class="core-bar">
                                <span class="core-name">{format!("core {i}")}</span>
                                <div class="gauge-track" role="meter" aria-label=format!("core {i}")
                                    aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{p:.0}")>
                                    <div class=format!("gauge-bar {}", width_class(*p))></div>
                                </div>
                                <span class="core-value">{format::pct(*p)}</span>
                                <span class="core-mhz muted">{mhz}</span>
                            </div>
                        }
                    }).collect_view()),
                    _ => Either::Right(view! { <p class="muted">"Waiting for a live report…"</p> }),
                }}
            </div>
            <h3 class="section-title">"Usage per core"</h3>
            <PlotView plot=cores label="Per-core usage" height=240 />
            <h3 class="section-title">"Frequency per core"</h3>
            <PlotView plot=freq label="Per-core frequency" height=240 />
        </Modal>
    }
}
