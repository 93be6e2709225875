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
use crate::chart_data::{ChartData, ChartKind, ChartSpec, align, report_interval_ms};
use crate::components::chart::Chart;
use crate::components::common::{ErrorNote, Gauge, StatusBadge, agent_status, use_now};
use crate::components::modal::Modal;
use crate::format;
use crate::live::{LiveFeed, LiveStatus, use_live};

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

    pub fn from_key(key: &str) -> Range {
        Range::ALL
            .into_iter()
            .find(|r| r.key() == key)
            .unwrap_or(Range::Live)
    }
}

const LIVE_WINDOW_MS: i64 = 5 * 60 * 1000;
const CHART_H: u32 = 200;
const BIG_H: u32 = 380;

/// What a chart shows right now.
#[derive(Debug, Clone, PartialEq)]
enum Plot {
    Loading,
    Failed(ApiError),
    Ready(ChartSpec, ChartData),
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
fn live_window(reports: &[Report]) -> &[Report] {
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
    Memo::new(move |_| {
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
                Plot::Ready(spec, data)
            });
        }
        match history.get() {
            None | Some(None) => Plot::Loading,
            Some(Some(Err(e))) => Plot::Failed(e),
            Some(Some(Ok(resp))) => {
                let lines = kind.lines_from_history(&resp);
                let bands = resp.tier != "5s";
                let (spec, data) = align(&lines, resp.interval_ms, bands, kind.unit(), height);
                Plot::Ready(spec, data)
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
                replace: true,
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
    let name = move || match agent.get() {
        Some(Ok(a)) => a.name,
        _ => "\u{a0}".into(),
    };

    view! {
        <Title text=move || format!("{} · StatusMonitor", match agent.get() { Some(Ok(a)) => a.name, _ => "Agent".into() }) />
        <nav class="crumbs" aria-label="Breadcrumb"><a href="/agents">"Agents"</a> " / "</nav>
        <header class="page-head agent-head">
            <div>
                <h1 id="agent-name">{name}</h1>
                <AgentFacts agent=agent latest=latest now=now feed=feed />
            </div>
        </header>
        {move || match agent.get() {
            Some(Err(e)) => Some(view! {
                <ErrorNote what="Loading the agent" error=e retry=Callback::new(move |_| agent.refetch()) />
            }),
            _ => None,
        }}

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

#[component]
fn AgentFacts(
    agent: LocalResource<Result<api::AgentInfo, ApiError>>,
    latest: Memo<Option<Report>>,
    now: ReadSignal<i64>,
    feed: LiveFeed,
) -> impl IntoView {
    view! {
        <div class="agent-facts">
            {move || match agent.get() {
                Some(Ok(a)) => {
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
                                {a.last_seen_ms.map(|t| format!("seen {}", format::ago(now.get(), t)))
                                    .unwrap_or_else(|| "never seen".into())}
                            </span>
                            {latest.get().and_then(|r| r.uptime_s).map(|u| view! {
                                <span class="muted small">"up " {format::duration_s(u)}</span>
                            })}
                            <span class="muted small live-state">
                                {move || match feed.status.get() {
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
                _ => Either::Right(view! { <div class="facts-row"><span class="skeleton-text"></span></div><dl class="host-facts"></dl> }),
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
                        <div class="scroll-list">
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
                        <ul class="kv-list scroll-list">
                            {nets.is_empty().then(|| view! { <li class="muted small">"—"</li> })}
                            {nets.into_iter().map(|n| view! {
                                <li><span class="k">{n.iface}</span>
                                    <span class="v">"↓ " {format::rate(n.rx_bps as f64)} " · ↑ " {format::rate(n.tx_bps as f64)}</span></li>
                            }).collect_view()}
                        </ul>
                    </div>
                    <div class="card live-card">
                        <h3>"Temperatures"</h3>
                        <ul class="kv-list scroll-list">
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
                    aria-label=format!("Open the {what} of {title}")
                    on:click=move |_| on_expand.run(())>"Expand ⤢"</button>
            </header>
            <PlotView plot=plot label=title height=CHART_H />
        </section>
    }
}

/// A chart with its loading, error and empty states laid over it.
#[component]
fn PlotView(plot: Memo<Plot>, label: &'static str, height: u32) -> impl IntoView {
    let spec = Signal::derive(move || {
        plot.with(|p| match p {
            Plot::Ready(spec, _) => spec.clone(),
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
            Plot::Ready(_, data) => data.clone(),
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
            Plot::Ready(_, d) if d.is_empty() => Some((
                "plot-overlay",
                None,
                "No data in this range yet".to_string(),
            )),
            Plot::Ready(..) => None,
        })
        .map(|(class, role, text)| view! { <div class=class role=role>{text}</div> })
    };
    view! {
        <div class="plot">
            <Chart spec=spec data=data label=format!("{label} chart") />
            {overlay}
        </div>
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
                                <div class="gauge-track"><div class="gauge-bar" style=format!("width:{:.1}%", p.clamp(0.0, 100.0))></div></div>
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
