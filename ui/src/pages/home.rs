//! The home page: for visitors a short introduction; once logged in, the
//! overview — one live card per agent, filterable and ordered, or an empty
//! state that points a new user at creating an agent.

use crate::components::common::Title;
use std::collections::BTreeMap;

use leptos::either::{EitherOf3, EitherOf4};
use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::{self, AgentInfo, ApiError};
use crate::components::agent_card::{AgentCard, CardReadings, Reading};
use crate::components::common::{ErrorNote, use_now};
use crate::recover::{Reconnecting, keep_trying};
use crate::session::use_session;

#[component]
pub fn HomePage() -> impl IntoView {
    let session = use_session();
    view! {
        <Title text="Overview · StatusMonitor" />
        {move || match session.logged_in() {
            Some(true) => EitherOf3::A(view! { <Overview /> }),
            Some(false) => EitherOf3::B(view! { <Landing /> }),
            None => EitherOf3::C(view! { <OverviewSkeleton /> }),
        }}
    }
}

#[component]
fn Landing() -> impl IntoView {
    // Once registration is closed the page no longer offers it.
    let registration = LocalResource::new(api::registration);
    let open = move || !matches!(registration.get(), Some(Ok(r)) if !r.open);
    view! {
        <section class="hero">
            <h1>"Your servers, at a glance"</h1>
            <p class="lead">
                "StatusMonitor collects CPU, memory, disk and network metrics from a small agent on each machine, "
                "shows them live and as history, and tells you on Telegram when something crosses a line."
            </p>
            <p class="hero-actions">
                <A href="/login" attr:class="button">"Log in"</A>
                {move || open().then(|| view! { <A href="/register" attr:class="button secondary">"Create an account"</A> })}
            </p>
        </section>
    }
}

#[component]
fn OverviewSkeleton() -> impl IntoView {
    view! {
        <div class="page-head">
            <h1>"Overview"</h1>
            <div class="toolbar-skeleton"></div>
        </div>
        <div class="card-grid" aria-busy="true">
            {(0..3).map(|_| view! { <div class="card agent-card skeleton-card"></div> }).collect_view()}
        </div>
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Status,
    Name,
    LastSeen,
    /// Busiest CPU first (from the cards' live data), then by name.
    Cpu,
    /// Fullest memory first, then by name.
    Memory,
}

impl Order {
    /// The order a `value` (of the menu, and of `?order=` in the address)
    /// names; anything else is the default, problems first.
    fn from_value(v: &str) -> Self {
        match v {
            "name" => Order::Name,
            "seen" => Order::LastSeen,
            "cpu" => Order::Cpu,
            "memory" => Order::Memory,
            _ => Order::Status,
        }
    }

    fn value(self) -> &'static str {
        match self {
            Order::Status => "status",
            Order::Name => "name",
            Order::LastSeen => "seen",
            Order::Cpu => "cpu",
            Order::Memory => "memory",
        }
    }
}

/// The overview's address for a filter, an order and grouping: only what
/// differs from the defaults, so a plain overview stays `/`.
fn overview_url(filter: &str, order: Order, grouped: bool) -> String {
    let mut query = Vec::new();
    if order != Order::Status {
        query.push(format!("order={}", order.value()));
    }
    if !filter.trim().is_empty() {
        query.push(format!("q={}", api::encode(filter.trim())));
    }
    if grouped {
        query.push("group=1".to_string());
    }
    if query.is_empty() {
        "/".to_string()
    } else {
        format!("/?{}", query.join("&"))
    }
}

/// How urgent an agent's state is (0 = look first); `firing`: the agents
/// with a rule firing now.
fn rank(a: &AgentInfo, firing: &[u64]) -> u8 {
    match crate::components::common::agent_status(a).0 {
        "offline" => 0,
        _ if firing.contains(&a.id) => 1,
        "expired" => 2,
        "pending" => 3,
        _ => 4,
    }
}

/// Sorts and filters agents for the overview; `readings`: the cards' latest
/// CPU and memory by agent id.
fn arrange(
    mut agents: Vec<AgentInfo>,
    firing: &[u64],
    readings: &BTreeMap<u64, Reading>,
    filter: &str,
    order: Order,
) -> Vec<AgentInfo> {
    let needle = filter.trim().to_lowercase();
    if let Some(tag) = needle.strip_prefix("tag:") {
        // `tag:vps`: exactly the agents with that tag.
        agents.retain(|a| a.tags.iter().any(|t| t == tag.trim()));
    } else if !needle.is_empty() {
        agents.retain(|a| {
            a.name.to_lowercase().contains(&needle)
                || a.tags.iter().any(|t| t.contains(&needle))
                || a.host
                    .as_ref()
                    .is_some_and(|h| h.hostname.to_lowercase().contains(&needle))
        });
    }
    let by_name = |a: &AgentInfo, b: &AgentInfo| a.name.to_lowercase().cmp(&b.name.to_lowercase());
    match order {
        Order::Name => agents.sort_by(by_name),
        // Problems first: offline, then a rule firing, then an expired
        // token, then waiting for the first report, then online.
        Order::Status => agents.sort_by(|a, b| {
            rank(a, firing)
                .cmp(&rank(b, firing))
                .then_with(|| by_name(a, b))
        }),
        // Highest first; agents with no reading (yet) last.
        Order::Cpu | Order::Memory => {
            let value = |a: &AgentInfo| {
                let r = readings.get(&a.id).copied().unwrap_or_default();
                if order == Order::Cpu { r.0 } else { r.1 }
            };
            agents.sort_by(|a, b| match (value(a), value(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| by_name(a, b)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => by_name(a, b),
            });
        }
        Order::LastSeen => agents.sort_by(|a, b| {
            b.last_seen_ms
                .cmp(&a.last_seen_ms)
                .then_with(|| by_name(a, b))
        }),
    }
    agents
}

/// The overview grouped by tag: one group per tag in alphabetical order,
/// each with its agents in the order given (an agent with several tags is
/// in each of their groups), then the untagged ones (`None`), if any.
fn group_by_tag(agents: &[AgentInfo]) -> Vec<(Option<String>, Vec<AgentInfo>)> {
    let mut tags: Vec<&String> = agents.iter().flat_map(|a| &a.tags).collect();
    tags.sort();
    tags.dedup();
    let mut groups: Vec<(Option<String>, Vec<AgentInfo>)> = tags
        .into_iter()
        .map(|t| {
            let members = agents.iter().filter(|a| a.tags.contains(t)).cloned();
            (Some(t.clone()), members.collect())
        })
        .collect();
    let untagged: Vec<AgentInfo> = agents
        .iter()
        .filter(|a| a.tags.is_empty())
        .cloned()
        .collect();
    if !untagged.is_empty() {
        groups.push((None, untagged));
    }
    groups
}

#[derive(Debug, Clone, PartialEq)]
enum ListState {
    Loading,
    Failed(ApiError),
    Empty,
    Ready,
}

#[component]
fn Overview() -> impl IntoView {
    let agents = LocalResource::new(api::agents);
    let rules = LocalResource::new(api::rules);
    let now = use_now(5000);
    Effect::new(move |prev: Option<i64>| {
        let t = now.get();
        if prev.is_some() {
            agents.refetch();
            rules.refetch();
        }
        t
    });
    // The agents with a rule firing now (kept while the server is away).
    let firing = Memo::new(move |prev: Option<&Vec<u64>>| match rules.get() {
        Some(Ok(list)) => list
            .iter()
            // A rule on a tag names the agent of each firing label.
            .flat_map(|r| r.firing.iter().map(|f| f.agent_id.unwrap_or(r.agent_id)))
            .collect(),
        _ => prev.cloned().unwrap_or_default(),
    });
    // Filter, order and grouping start from the address and are kept in it
    // (replacing the entry: no history step per keystroke), so a reload or
    // a shared link shows the same overview. Unknown values: the defaults.
    let query = leptos_router::hooks::use_query_map();
    let navigate = leptos_router::hooks::use_navigate();
    let (filter, order, grouped) = query.with_untracked(|q| {
        (
            RwSignal::new(q.get("q").unwrap_or_default()),
            RwSignal::new(Order::from_value(&q.get("order").unwrap_or_default())),
            RwSignal::new(q.get("group").as_deref() == Some("1")),
        )
    });
    Effect::new(move |prev: Option<String>| {
        let url = overview_url(&filter.get(), order.get(), grouped.get());
        // Not on the first run: the address is where the values came from
        // (a bad value there is left for the reader to see corrected once
        // something changes).
        if prev.as_ref().is_some_and(|p| *p != url) {
            navigate(
                &url,
                leptos_router::NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..Default::default()
                },
            );
        }
        url
    });
    let readings = CardReadings(RwSignal::new(BTreeMap::new()));
    provide_context(readings);
    let reconnecting = keep_trying(agents);
    // The last list the server gave: kept while it is away.
    let all = Memo::new(move |prev: Option<&Vec<AgentInfo>>| match agents.get() {
        Some(Ok(l)) => l,
        _ => prev.cloned().unwrap_or_default(),
    });
    // The live readings only matter to the CPU and memory orders.
    let shown = Memo::new(move |_| {
        let order = order.get();
        let none = BTreeMap::new();
        let sort_by_reading = matches!(order, Order::Cpu | Order::Memory);
        firing.with(|f| {
            readings.0.with(|r| {
                let r = if sort_by_reading { r } else { &none };
                arrange(all.get(), f, r, &filter.get(), order)
            })
        })
    });
    // Grouped: a group per tag (`Some(tag)`), the untagged as `Some("")`;
    // else one group of all (`None`: no title).
    let groups = Memo::new(move |_| {
        shown.with(|s| {
            if grouped.get() {
                group_by_tag(s)
                    .into_iter()
                    .map(|(t, l)| (Some(t.unwrap_or_default()), l))
                    .collect()
            } else {
                vec![(None, s.clone())]
            }
        })
    });
    let state = Memo::new(move |prev: Option<&ListState>| match agents.get() {
        None => prev.cloned().unwrap_or(ListState::Loading),
        Some(Err(e)) if e.transient() => prev.cloned().unwrap_or(ListState::Loading),
        Some(Err(e)) => ListState::Failed(e),
        Some(Ok(l)) if l.is_empty() => ListState::Empty,
        Some(Ok(_)) => ListState::Ready,
    });
    let lookup = move |id: u64| all.with(|l| l.iter().find(|a| a.id == id).cloned());
    let card = move |a: AgentInfo| {
        let id = a.id;
        view! {
            <AgentCard
                agent=a
                last_seen=Signal::derive(move || lookup(id).and_then(|a| a.last_seen_ms))
                online=Signal::derive(move || lookup(id).is_some_and(|a| a.online))
                now=now
            />
        }
    };

    view! {
        <div class="page-head">
            <h1>"Overview"</h1>
            <div class="toolbar" role="search">
                <label class="visually-hidden" for="overview-filter">"Filter agents"</label>
                <input id="overview-filter" type="search" placeholder="Filter by name, host, tag (tag:vps)"
                    bind:value=filter />
                <label class="visually-hidden" for="overview-order">"Order"</label>
                <select id="overview-order" prop:value=move || order.get().value()
                    on:change=move |ev| order.set(Order::from_value(&event_target_value(&ev)))>
                    // `selected` too: the order from the address shows before
                    // the menu's value is set.
                    {[
                        (Order::Status, "Problems first"),
                        (Order::Name, "By name"),
                        (Order::LastSeen, "Last seen"),
                        (Order::Cpu, "By CPU"),
                        (Order::Memory, "By memory"),
                    ].into_iter().map(|(o, label)| view! {
                        <option value=o.value() selected=order.get_untracked() == o>{label}</option>
                    }).collect_view()}
                </select>
                <label><input type="checkbox" id="overview-group" bind:checked=grouped />" Group by tag"</label>
            </div>
        </div>
        <Reconnecting when=reconnecting />
        {move || match state.get() {
            ListState::Loading => EitherOf4::A(view! { <OverviewCards /> }),
            ListState::Failed(e) => EitherOf4::B(view! {
                <ErrorNote what="Loading your agents" error=e retry=Callback::new(move |_| agents.refetch()) />
            }),
            ListState::Empty => EitherOf4::C(view! {
                <section class="card empty-state" id="overview-empty">
                    <h2>"No machines yet"</h2>
                    <p>"Create an agent, run the command it shows on the machine you want to watch, and it appears here within seconds."</p>
                    <A href="/agents" attr:class="button">"Create your first agent"</A>
                </section>
            }),
            ListState::Ready => EitherOf4::D(view! {
                // One structure for both: ungrouped is one group without a title.
                <div id="overview-cards">
                    <For each=move || groups.with(|g| g.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>())
                        key=|t| t.clone() let(tag)>
                        {
                            let title = tag.clone().map(|t| if t.is_empty() { "Untagged".to_string() } else { t });
                            let members = move || groups.with(|g| {
                                g.iter().find(|(t, _)| *t == tag).map(|(_, l)| l.clone()).unwrap_or_default()
                            });
                            view! {
                                {title.map(|t| view! { <h2 class="tag-group-title">{t}</h2> })}
                                <div class="card-grid">
                                    <For each=members key=|a| (a.id, a.name.clone(), api::host_key(&a.host)) let(a)>
                                        {card(a)}
                                    </For>
                                </div>
                            }
                        }
                    </For>
                </div>
                {move || shown.with(|s| s.is_empty()).then(|| view! {
                    <p class="empty">"No agent matches “" {filter.get()} "”."</p>
                })}
            }),
        }}
    }
}

#[component]
fn OverviewCards() -> impl IntoView {
    view! {
        <div class="card-grid" aria-busy="true">
            {(0..3).map(|_| view! { <div class="card agent-card skeleton-card"></div> }).collect_view()}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: u64, name: &str, online: bool, seen: Option<i64>) -> AgentInfo {
        AgentInfo {
            agent_version: None,
            outdated: false,
            id,
            name: name.into(),
            created_ms: 0,
            token_state: api::TokenState::Active,
            token_expires_ms: None,
            activated_ms: None,
            last_seen_ms: seen,
            interval_ms: None,
            host: None,
            online,
            tags: Vec::new(),
            shared: None,
        }
    }

    fn none() -> BTreeMap<u64, Reading> {
        BTreeMap::new()
    }

    #[test]
    fn problems_first_then_by_name_and_filtered() {
        let list = vec![
            agent(1, "web", false, Some(5)),
            agent(2, "nas", true, Some(1)),
            agent(3, "Backup", false, None),
        ];
        let names = |l: Vec<AgentInfo>| l.into_iter().map(|a| a.name).collect::<Vec<_>>();
        assert_eq!(
            names(arrange(list.clone(), &[], &none(), "", Order::Status)),
            ["Backup", "web", "nas"]
        );
        assert_eq!(
            names(arrange(list.clone(), &[], &none(), "", Order::LastSeen)),
            ["web", "nas", "Backup"]
        );
        assert_eq!(
            names(arrange(list.clone(), &[], &none(), " NA", Order::Name)),
            ["nas"]
        );
        // A firing rule comes right after offline, before the quiet ones.
        let mut more = list;
        more.push(agent(4, "app", true, Some(2)));
        assert_eq!(
            names(arrange(more, &[2], &none(), "", Order::Status)),
            ["Backup", "web", "nas", "app"]
        );
    }

    #[test]
    fn tags_filter_exactly_with_tag_prefix_and_group_untagged_last() {
        let mut vps = agent(1, "web", true, None);
        vps.tags = vec!["vps".into()];
        let mut home = agent(2, "nas", true, None);
        home.tags = vec!["home".into(), "vpsish".into()];
        let bare = agent(3, "Backup", true, None);
        let list = vec![vps, home, bare];
        let names = |l: Vec<AgentInfo>| l.into_iter().map(|a| a.name).collect::<Vec<_>>();
        assert_eq!(
            names(arrange(list.clone(), &[], &none(), "tag:vps", Order::Name)),
            ["web"]
        );
        assert_eq!(
            names(arrange(list.clone(), &[], &none(), "vps", Order::Name)),
            ["nas", "web"]
        );
        // Grouped: a group per tag, alphabetically, an agent in each of
        // its tags' groups, the untagged last; within a group the order given.
        let sorted = arrange(list, &[], &none(), "", Order::Name);
        let groups: Vec<(Option<String>, Vec<String>)> = group_by_tag(&sorted)
            .into_iter()
            .map(|(t, l)| (t, names(l)))
            .collect();
        let g = |t: Option<&str>, n: &[&str]| {
            (
                t.map(str::to_string),
                n.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            groups,
            [
                g(Some("home"), &["nas"]),
                g(Some("vps"), &["web"]),
                g(Some("vpsish"), &["nas"]),
                g(None, &["Backup"]),
            ]
        );
        assert!(group_by_tag(&[]).is_empty());
    }

    #[test]
    fn cpu_and_memory_orders_put_the_busiest_first_and_the_unknown_last() {
        let list = vec![
            agent(1, "web", true, None),
            agent(2, "nas", true, None),
            agent(3, "db", true, None),
            agent(4, "app", true, None),
        ];
        let readings = BTreeMap::from([
            (1, (Some(12.0), Some(80.0))),
            (2, (Some(97.5), None)),
            (4, (Some(12.0), Some(20.0))),
        ]);
        let names = |l: Vec<AgentInfo>| l.into_iter().map(|a| a.name).collect::<Vec<_>>();
        assert_eq!(
            names(arrange(list.clone(), &[], &readings, "", Order::Cpu)),
            ["nas", "app", "web", "db"],
            "ties by name, no reading last"
        );
        assert_eq!(
            names(arrange(list, &[], &readings, "", Order::Memory)),
            ["web", "app", "db", "nas"]
        );
        assert_eq!(Order::from_value("cpu"), Order::Cpu);
        assert_eq!(Order::from_value("memory"), Order::Memory);
        assert_eq!(Order::from_value("bogus"), Order::Status);
    }

    #[test]
    fn the_address_keeps_only_what_differs_from_the_defaults() {
        assert_eq!(overview_url("", Order::Status, false), "/");
        assert_eq!(overview_url("  ", Order::Status, false), "/");
        assert_eq!(
            overview_url("tag:vps", Order::Cpu, true),
            "/?order=cpu&q=tag%3Avps&group=1"
        );
        for o in [
            Order::Status,
            Order::Name,
            Order::LastSeen,
            Order::Cpu,
            Order::Memory,
        ] {
            assert_eq!(Order::from_value(o.value()), o);
        }
    }
}
