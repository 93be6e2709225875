//! One agent on the overview: name, online/offline and last seen, CPU,
//! memory and disk gauges and a live CPU sparkline of the last 15 minutes,
//! fed by the agent's WebSocket. Fixed height, so nothing moves as data comes.

use leptos::prelude::*;

use crate::api::AgentInfo;
use crate::chart_data::{report_interval_ms, sparkline_path};
use crate::components::common::{Gauge, StatusBadge, agent_status};
use crate::format;
use crate::live::{KEEP_MS, LiveStatus, use_live};

/// The latest CPU and memory percentages of each card on the page, by
/// agent id (a `BTreeMap`: the bundle has no hash map): provided by the overview (as context) so it can sort by them.
#[derive(Debug, Clone, Copy)]
pub struct CardReadings(pub RwSignal<std::collections::BTreeMap<u64, Reading>>);

/// One card's latest CPU and memory, percent (`None`: not collected).
pub type Reading = (Option<f64>, Option<f64>);

const SPARK_W: f64 = 300.0;
const SPARK_H: f64 = 48.0;

#[component]
pub fn AgentCard(
    agent: AgentInfo,
    #[prop(into)] last_seen: Signal<Option<i64>>,
    #[prop(into)] online: Signal<bool>,
    now: ReadSignal<i64>,
) -> impl IntoView {
    let id = agent.id;
    let feed = use_live(id);
    let latest = Memo::new(move |_| feed.reports.with(|r| r.last().cloned()));
    if let Some(CardReadings(readings)) = use_context::<CardReadings>() {
        Effect::new(move |_| {
            let reading: Reading = latest.with(|r| {
                let r = r.as_ref();
                (
                    r.and_then(|r| r.cpu.as_ref()).map(|c| c.total_pct),
                    r.and_then(|r| r.memory.as_ref()).and_then(|m| m.used_pct()),
                )
            });
            if readings.with_untracked(|m| m.get(&id) != Some(&reading)) {
                readings.update(|m| {
                    m.insert(id, reading);
                });
            }
        });
    }
    // A report newer than the last list poll means online right now.
    let live_online = move || {
        online.get()
            || latest.with(|r| {
                r.as_ref().is_some_and(|r| {
                    let interval = i64::from(r.interval_ms.unwrap_or(5_000));
                    now.get() - r.ts_ms < 3 * interval + 5_000
                })
            })
    };
    let status = Memo::new({
        let agent = agent.clone();
        move |_| {
            let mut a = agent.clone();
            a.online = live_online();
            agent_status(&a)
        }
    });
    let gauges = move || {
        latest.with(|r| {
            let r = r.as_ref();
            let cpu = r.and_then(|r| r.cpu.as_ref()).map(|c| c.total_pct);
            let mem = r.and_then(|r| r.memory.as_ref());
            // The fullest filesystem is the one worth seeing.
            let disk = r.and_then(|r| {
                r.disks
                    .iter()
                    .filter_map(|d| d.used_pct().map(|p| (p, d.mount.clone())))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
            });
            view! {
                <Gauge label="CPU".into() pct=cpu detail=cpu.map(format::pct).unwrap_or_else(|| "—".into()) />
                <Gauge
                    label="Memory".into()
                    pct=mem.and_then(|m| m.used_pct())
                    detail=mem
                        .map(|m| format!("{} of {}", format::bytes(m.used_bytes as f64), format::bytes(m.total_bytes as f64)))
                        .unwrap_or_else(|| "—".into())
                />
                <Gauge
                    label="Disk".into()
                    pct=disk.as_ref().map(|d| d.0)
                    detail=disk.as_ref().map(|(p, m)| format!("{} {m}", format::pct(*p))).unwrap_or_else(|| "—".into())
                />
            }
        })
    };
    let spark = move || {
        feed.reports.with(|reports| {
            let t1 = reports.last().map(|r| r.ts_ms).unwrap_or(0);
            let points: Vec<(i64, f64)> = reports
                .iter()
                .filter_map(|r| r.cpu.as_ref().map(|c| (r.ts_ms, c.total_pct)))
                .collect();
            sparkline_path(
                &points,
                t1 - KEEP_MS,
                t1,
                100.0,
                report_interval_ms(reports),
                SPARK_W,
                SPARK_H,
            )
        })
    };
    let host = agent
        .host
        .as_ref()
        .map(|h| match &h.os {
            Some(os) => format!("{} · {os}", h.hostname),
            None => h.hostname.clone(),
        })
        .unwrap_or_else(|| "\u{a0}".into());
    let host_tip = host.clone();
    let seen = move || match (
        last_seen.get(),
        latest.with(|r| r.as_ref().map(|r| r.ts_ms)),
    ) {
        _ if now.get() == 0 => "\u{a0}".to_string(),
        (a, b) => match a.max(b) {
            Some(t) if status.get().0 == "offline" => format!("offline since {}", format::since(t)),
            Some(t) => format!("seen {}", format::ago(now.get(), t)),
            None => "never seen".into(),
        },
    };

    view! {
        <article class="card agent-card" data-agent-id=id.to_string() data-online=move || live_online().to_string()
            data-status=move || status.get().0>
            <header class="agent-card-head">
                <h2 title=agent.name.clone()><a class="stretched" href=format!("/agents/{id}")>{agent.name.clone()}</a></h2>
                {move || { let (c, t) = status.get(); view! { <StatusBadge class=c text=t /> } }}
            </header>
            {(agent.shared.is_some() || !agent.tags.is_empty()).then(|| view! {
                <p class="muted small agent-card-tags">
                    {agent.shared.as_ref().map(|s| view! { <span class="badge shared-badge">{format!("shared by {}", s.owner)}</span> " " })}
                    {agent.tags.join(" · ")}
                </p>
            })}
            <p class="muted small agent-card-sub">
                <span class="ellipsis" title=host_tip>{host}</span>
                <span class="last-seen">{seen}</span>
            </p>
            <div class="gauges">{gauges}</div>
            <svg class="sparkline" viewBox=format!("0 0 {SPARK_W} {SPARK_H}") preserveAspectRatio="none"
                role="img" aria-label="CPU over the last 15 minutes">
                <path d=spark vector-effect="non-scaling-stroke" />
            </svg>
            <p class="muted small agent-card-running">{move || latest.with(|r| {
                let r = r.as_ref()?;
                let containers = r.containers.as_deref().map(|l| {
                    crate::pages::running::counts_text(&storage::model::ContainerCounts::of(l))
                });
                let failed = crate::pages::running::failed_text(r);
                let text: Vec<String> = containers.into_iter().chain(failed).collect();
                (!text.is_empty()).then(|| text.join(" · "))
            })}</p>
            <p class="muted tiny spark-caption">
                {move || match feed.status.get() {
                    LiveStatus::Open if !live_online() => "CPU, last 15 min · no new reports",
                    LiveStatus::Open => "CPU, last 15 min · live",
                    LiveStatus::Connecting => "CPU, last 15 min · connecting…",
                    LiveStatus::Retrying => "CPU, last 15 min · reconnecting…",
                    LiveStatus::Closed => "CPU, last 15 min · stream ended",
                }}
            </p>
        </article>
    }
}
