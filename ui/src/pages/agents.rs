//! Agents: the list with status and last seen; create (the token is shown
//! once), regenerate a token, rename, delete with confirmation. The list is
//! asked again every 5 seconds so a new agent turns online by itself.

use crate::components::common::Title;
use leptos::either::Either;
use leptos::either::{EitherOf3, EitherOf4};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;

use crate::api::{self, AgentInfo, AgentWithToken, ApiError};
use crate::components::common::{ErrorNote, StatusBadge, agent_status, use_hydrated, use_now};
use crate::components::copy::CopyButton;
use crate::components::token_panel::{TokenPanel, origin, upgrade_command};
use crate::format;

/// What a row is asking the user to confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Regenerate(u64),
    Delete(u64),
    Rename(u64),
}

#[component]
pub fn AgentsPage() -> impl IntoView {
    let agents = LocalResource::new(api::agents);
    let ready = use_hydrated();
    let now = use_now(5000);
    // Poll: the tick of `now` refetches (client only).
    let shown = RwSignal::new(None::<AgentWithToken>);
    let pending = RwSignal::new(None::<Pending>);
    Effect::new(move |prev: Option<i64>| {
        let t = now.get();
        // Not while a rename is being typed: the row would be rebuilt.
        let renaming = matches!(pending.get_untracked(), Some(Pending::Rename(_)));
        if prev.is_some() && !renaming {
            agents.refetch();
        }
        t
    });
    // Rows are keyed, and the list's state only changes between loading,
    // failed, empty and ready: a poll updates rows in place and keeps focus.
    let list = Memo::new(move |_| agents.get().and_then(|r| r.ok()).unwrap_or_default());
    let state = Memo::new(move |prev: Option<&ListState>| match agents.get() {
        None => prev.cloned().unwrap_or(ListState::Loading),
        Some(Err(e)) => ListState::Failed(e),
        Some(Ok(l)) if l.is_empty() => ListState::Empty,
        Some(Ok(_)) => ListState::Ready,
    });
    let new_name = RwSignal::new(String::new());
    let row_error = RwSignal::new(None::<(&'static str, ApiError)>);
    // What is wrong with the name being typed in a row's rename field.
    let rename_problem = RwSignal::new(None::<String>);

    let create = Action::new_local(|name: &String| api::create_agent(name.clone()));
    // One action for every row operation (one instantiation in the bundle).
    let row_op = Action::new_local(|op: &RowOp| {
        let op = op.clone();
        async move {
            let what = op.what();
            let result = match op {
                RowOp::Regenerate(id) => api::regenerate_token(id).await.map(Some),
                RowOp::Delete(id) => api::delete_agent(id).await.map(|_| None),
                RowOp::Rename(id, name) => api::rename_agent(id, name).await.map(|_| None),
            };
            result.map_err(|e| (what, e))
        }
    });

    Effect::new(move |_| {
        if let Some(Ok(created)) = create.value().get() {
            new_name.set(String::new());
            shown.set(Some(created));
            agents.refetch();
        }
    });
    Effect::new(move |_| match row_op.value().get() {
        Some(Ok(token)) => {
            pending.set(None);
            rename_problem.set(None);
            if token.is_some() {
                shown.set(token);
            }
            agents.refetch();
        }
        Some(Err(("Renaming the agent", e))) => rename_problem.set(Some(name_sentence(&e))),
        Some(Err(e)) => row_error.set(Some(e)),
        None => {}
    });

    // What is wrong with the typed name (cleared on the next attempt).
    let name_problem = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(Err(e)) = create.value().get() {
            name_problem.set(Some(name_sentence(&e)));
        }
    });
    let on_create = move |ev: SubmitEvent| {
        ev.prevent_default();
        let name = new_name.get_untracked().trim().to_string();
        name_problem.set(name_check(&list.get_untracked(), None, &name));
        if name_problem.get_untracked().is_none() {
            create.dispatch(name);
        }
    };

    // Whether the agent whose token is shown has reported since.
    let shown_active = Signal::derive(move || {
        let Some(id) = shown.with(|s| s.as_ref().map(|s| s.agent.id)) else {
            return false;
        };
        agents.get().and_then(|r| r.ok()).is_some_and(|list| {
            list.iter()
                .any(|a| a.id == id && a.token_state == api::TokenState::Active)
        })
    });

    view! {
        <Title text="Agents · StatusMonitor" />
        <div class="page-head">
            <div>
                <h1>"Agents"</h1>
                <p class="muted">"An agent is the small program on each machine that sends its metrics here."</p>
            </div>
        </div>

        <section class="card">
            <h2 class="card-title">"Add a machine"</h2>
            <form class="inline-form" on:submit=on_create>
                <label class="visually-hidden" for="new-agent-name">"Name of the new agent"</label>
                <input id="new-agent-name" placeholder="Name, e.g. nas or web-1" maxlength="64" required
                    aria-describedby="new-agent-error" bind:value=new_name />
                <button class="button" type="submit" id="create-agent"
                    disabled=move || !ready.get() || create.pending().get()>
                    {move || if create.pending().get() { "Creating…" } else { "Create agent" }}
                </button>
            </form>
            <div class="form-error" aria-live="polite">
                {move || name_problem.get().map(|p| view! { <p class="error" role="alert" id="new-agent-error">{p}</p> })}
            </div>
        </section>

        {move || shown.get().map(|s| view! {
            <TokenPanel
                name=s.agent.name.clone()
                token=s.token.clone()
                server=s.public_url.clone()
                expires_ms=s.agent.token_expires_ms
                active=shown_active
                on_close=Callback::new(move |_| shown.set(None))
            />
        })}

        {move || row_error.get().map(|(what, e)| view! {
            <ErrorNote what=what error=e retry=Callback::new(move |_| row_error.set(None)) />
        })}

        <section class="card" aria-labelledby="agents-list-title">
            <h2 class="card-title" id="agents-list-title">"Your agents"</h2>
            <div class="agents-list" id="agents-list">
                {move || match state.get() {
                    ListState::Loading => EitherOf4::A(view! { <AgentsSkeleton /> }),
                    ListState::Failed(e) => EitherOf4::B(view! {
                        <ErrorNote what="Loading your agents" error=e retry=Callback::new(move |_| agents.refetch()) />
                    }),
                    ListState::Empty => EitherOf4::C(view! {
                        <p class="empty" id="agents-empty">"No agents yet. Give your first machine a name above."</p>
                    }),
                    ListState::Ready => EitherOf4::D(view! {
                        <ul class="agent-rows">
                            <For
                                each=move || list.get()
                                key=|a| (a.id, a.name.clone(), api::state_key(a.token_state), a.online, api::host_key(&a.host), a.outdated)
                                let(a)
                            >
                                <AgentRow
                                    last_seen=Signal::derive({
                                        let id = a.id;
                                        move || list.with(|l| l.iter().find(|x| x.id == id).and_then(|x| x.last_seen_ms))
                                    })
                                    agent=a now=now pending=pending row_op=row_op
                                    rename_problem=rename_problem agents=list />
                            </For>
                        </ul>
                    }),
                }}
            </div>
        </section>
    }
}

/// What is wrong with `name` for an agent (`renaming`: its id), if anything.
fn name_check(agents: &[AgentInfo], renaming: Option<u64>, name: &str) -> Option<String> {
    let taken = agents
        .iter()
        .any(|a| Some(a.id) != renaming && a.name.eq_ignore_ascii_case(name));
    if name.is_empty() {
        Some("A name needs at least one letter or digit; spaces alone are not a name.".into())
    } else if taken {
        Some(format!(
            "You already have an agent named “{name}”. Choose another name so the two can be told apart."
        ))
    } else {
        None
    }
}

/// A refused name in a sentence (without the API's `name:` in front).
fn name_sentence(e: &ApiError) -> String {
    if e.field() == Some("name") {
        e.sentence()
    } else {
        e.to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum ListState {
    Loading,
    Failed(ApiError),
    Empty,
    Ready,
}

#[component]
fn AgentsSkeleton() -> impl IntoView {
    view! {
        <ul class="agent-rows" aria-busy="true" aria-label="Loading agents">
            {(0..2).map(|_| view! { <li class="agent-row skeleton-row"><span class="skeleton"></span></li> }).collect_view()}
        </ul>
    }
}

/// What a row asks the server to do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RowOp {
    Regenerate(u64),
    Delete(u64),
    Rename(u64, String),
}

impl RowOp {
    fn what(&self) -> &'static str {
        match self {
            RowOp::Regenerate(_) => "Regenerating the token",
            RowOp::Delete(_) => "Deleting the agent",
            RowOp::Rename(..) => "Renaming the agent",
        }
    }
}

type RowAction = Action<RowOp, Result<Option<AgentWithToken>, (&'static str, ApiError)>>;

#[component]
fn AgentRow(
    agent: AgentInfo,
    #[prop(into)] last_seen: Signal<Option<i64>>,
    now: ReadSignal<i64>,
    pending: RwSignal<Option<Pending>>,
    row_op: RowAction,
    rename_problem: RwSignal<Option<String>>,
    agents: Memo<Vec<AgentInfo>>,
) -> impl IntoView {
    let id = agent.id;
    let (status_class, status_text) = agent_status(&agent);
    let name = agent.name.clone();
    let edit_name = RwSignal::new(agent.name.clone());
    let host = agent
        .host
        .as_ref()
        .map(|h| {
            let mut parts = vec![h.hostname.clone()];
            parts.extend(h.os.clone());
            if let Some(c) = h.cores {
                parts.push(format!("{c} cores"));
            }
            parts.join(" · ")
        })
        .unwrap_or_else(|| "no host facts yet".into());
    let host_tip = host.clone();
    let shared = agent.shared.clone();
    let shared_note = shared.as_ref().map(|s| format!("shared by {}", s.owner));
    let tags = agent.tags.join(" · ");
    // An agent older than the server: the line that upgrades it.
    let upgrade = agent.outdated.then(|| {
        let version = agent.agent_version.clone().unwrap_or_default();
        let command = upgrade_command(&origin());
        view! {
            <span class="agent-upgrade small" data-outdated="true">
                {format!("Agent {version} is older than the server; to upgrade, run on the machine: ")}
                <code>{command.clone()}</code>
                " "
                <CopyButton text=Signal::derive(move || command.clone()) what="upgrade command" />
            </span>
        }
    });
    let is = move |p: Pending| pending.get() == Some(p);
    let name_for_delete = name.clone();

    view! {
        <li class="agent-row" data-agent-id=id.to_string()>
            <div class="agent-main">
                {move || if is(Pending::Rename(id)) {
                    // Focus goes into the field that opened for editing.
                    let input = NodeRef::<leptos::html::Input>::new();
                    input.on_load(|el| { let _ = el.focus(); });
                    Either::Left(view! {
                    <form class="inline-form" on:submit=move |ev: SubmitEvent| {
                        ev.prevent_default();
                        let n = edit_name.get_untracked().trim().to_string();
                        rename_problem.set(name_check(&agents.get_untracked(), Some(id), &n));
                        if rename_problem.get_untracked().is_none() { row_op.dispatch(RowOp::Rename(id, n)); }
                    }>
                        <label class="visually-hidden" for=format!("rename-{id}")>"New name"</label>
                        <input id=format!("rename-{id}") class="rename-input" maxlength="64" required bind:value=edit_name node_ref=input
                            aria-describedby="rename-error" />
                        <button class="button small" type="submit">"Save"</button>
                        <button class="button secondary small" type="button"
                            on:click=move |_| { pending.set(None); rename_problem.set(None); }>"Cancel"</button>
                        {move || rename_problem.get().map(|p| view! { <span class="error field-error" role="alert" id="rename-error">{p}</span> })}
                    </form>
                }) } else { Either::Right(view! {
                    <a class="agent-name clip" title=name.clone() href=format!("/agents/{id}")>{name.clone()}</a>
                }) }}
                <span class="agent-host muted clip" title=host_tip>{host}</span>
                {shared_note.map(|n| view! { <span class="badge shared-badge">{n}</span> })}
                {(!tags.is_empty()).then(|| view! { <span class="muted small agent-tags">{tags}</span> })}
                {upgrade}
            </div>
            <div class="agent-state">
                <StatusBadge class=status_class text=status_text />
                <span class="muted small last-seen">
                    {move || match last_seen.get() {
                        Some(t) if now.get() > 0 => format!("seen {}", format::ago(now.get(), t)),
                        Some(_) => String::new(),
                        None => "never seen".into(),
                    }}
                </span>
            </div>
            <div class="agent-actions">
                {move || match pending.get() {
                    Some(Pending::Delete(p)) if p == id => EitherOf3::A(view! {
                        <div class="confirm" role="group" aria-label="Confirm delete">
                            <span>"Delete " <strong>{name_for_delete.clone()}</strong> " and all its data?"</span>
                            <button type="button" class="button danger small confirm-delete"
                                disabled=move || row_op.pending().get()
                                on:click=move |_| { row_op.dispatch(RowOp::Delete(id)); }>"Delete"</button>
                            <button type="button" class="button secondary small"
                                on:click=move |_| pending.set(None)>"Cancel"</button>
                        </div>
                    }),
                    Some(Pending::Regenerate(p)) if p == id => EitherOf3::B(view! {
                        <div class="confirm" role="group" aria-label="Confirm new token">
                            <span>"The current token stops working at once."</span>
                            <button type="button" class="button small confirm-regenerate"
                                disabled=move || row_op.pending().get()
                                on:click=move |_| { row_op.dispatch(RowOp::Regenerate(id)); }>"New token"</button>
                            <button type="button" class="button secondary small"
                                on:click=move |_| pending.set(None)>"Cancel"</button>
                        </div>
                    }),
                    _ => EitherOf3::C(view! {
                        <a class="button secondary small" href=format!("/agents/{id}")>"Dashboard"</a>
                        // Shared with the caller: look, don't touch.
                        {shared.is_none().then(|| view! {
                        <button type="button" class="button secondary small action-rename"
                            on:click=move |_| pending.set(Some(Pending::Rename(id)))>"Rename"</button>
                        <button type="button" class="button secondary small action-regenerate"
                            on:click=move |_| pending.set(Some(Pending::Regenerate(id)))>"New token"</button>
                        <button type="button" class="button secondary small action-delete"
                            on:click=move |_| pending.set(Some(Pending::Delete(id)))>"Delete"</button>
                        })}
                    }),
                }}
            </div>
        </li>
    }
}
