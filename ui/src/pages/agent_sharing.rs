//! The agent page's owner tools: its tags, and sharing it with another
//! account as viewer or editor. Shown only to the owner.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;

use crate::api::{self, ShareAccess, ShareAgentRequest};
use crate::components::common::{ErrorNote, use_hydrated};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Share(ShareAgentRequest),
    Unshare(u64),
    Tags(Vec<String>),
}

#[component]
pub fn AgentSharing(id: u64, tags: Vec<String>) -> impl IntoView {
    let ready = use_hydrated();
    let shares = LocalResource::new(move || api::shares(id));
    let who = RwSignal::new(String::new());
    let editor = RwSignal::new(false);
    let tag_text = RwSignal::new(tags.join(", "));
    let op = Action::new_local(move |op: &Op| {
        let op = op.clone();
        async move {
            match op {
                Op::Share(req) => api::share(id, &req).await.map(|_| ()),
                Op::Unshare(user) => api::unshare(id, user).await,
                Op::Tags(tags) => api::set_tags(id, tags).await.map(|_| ()),
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = op.value().get() {
            who.set(String::new());
            shares.refetch();
        }
    });
    let on_share = move |ev: SubmitEvent| {
        ev.prevent_default();
        op.dispatch(Op::Share(ShareAgentRequest {
            username: who.get_untracked().trim().to_string(),
            access: if editor.get_untracked() {
                ShareAccess::Editor
            } else {
                ShareAccess::Viewer
            },
        }));
    };
    let on_tags = move |ev: SubmitEvent| {
        ev.prevent_default();
        let tags = tag_text
            .get_untracked()
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        op.dispatch(Op::Tags(tags));
    };
    view! {
        <section class="card" aria-labelledby="share-title" id="agent-sharing">
            <h2 class="card-title" id="share-title">"Tags and sharing"</h2>
            <form class="inline-form" on:submit=on_tags>
                <label for="agent-tags">"Tags (comma-separated)"</label>
                <input id="agent-tags" bind:value=tag_text placeholder="home, vps" />
                <button class="button small" type="submit" id="agent-tags-save"
                    disabled=move || !ready.get() || op.pending().get()>"Save tags"</button>
            </form>
            <form class="inline-form" on:submit=on_share>
                <label for="share-user">"Share with"</label>
                <input id="share-user" required bind:value=who placeholder="username" />
                <label><input type="checkbox" id="share-editor" bind:checked=editor />" may edit its alert rules"</label>
                <button class="button small" type="submit" id="share-submit"
                    disabled=move || !ready.get() || op.pending().get()>"Share"</button>
            </form>
            {move || match op.value().get() {
                Some(Err(e)) => Some(view! { <ErrorNote what="Saving" error=e /> }),
                _ => None,
            }}
            <ul id="share-list">
                {move || shares.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|s| {
                    let user = s.user_id;
                    view! {
                        <li>
                            {format!("{} ({})", s.username, match s.access { ShareAccess::Viewer => "viewer", ShareAccess::Editor => "editor" })}
                            " "
                            <button type="button" class="button secondary small"
                                on:click=move |_| { op.dispatch(Op::Unshare(user)); }>"Stop sharing"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}
