//! Users (admins only): every account with its last log-in and agents;
//! create one with a one-time password or an invitation link; disable,
//! reset the password, make admin, delete with the name typed again.

use leptos::either::Either;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;

use crate::api::{
    self, CreateUserRequest, CreatedUser, ManagedUser, NewUserAccess, UpdateUserRequest,
};
use crate::components::common::{ErrorNote, Title, use_hydrated};
use crate::format;

/// What a row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Update(u64, UpdateUserRequest),
    Reset(u64),
    Delete(u64, String),
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let ready = use_hydrated();
    let users = LocalResource::new(api::users);
    let name = RwSignal::new(String::new());
    let invite = RwSignal::new(false);
    let create = Action::new_local(move |req: &CreateUserRequest| {
        let req = req.clone();
        async move { api::create_user(&req).await }
    });
    // A one-time password or invitation to show, once.
    let shown = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(Ok(c)) = create.value().get() {
            shown.set(Some(created_text(&c)));
            name.set(String::new());
            users.refetch();
        }
    });
    let op = Action::new_local(move |op: &Op| {
        let op = op.clone();
        async move {
            match op {
                Op::Update(id, req) => api::update_user(id, &req).await.map(|_| None),
                Op::Reset(id) => api::reset_password(id).await.map(|p| {
                    Some(format!(
                        "One-time password for {}: {} (it must be changed at the next log-in)",
                        p.username, p.one_time_password
                    ))
                }),
                Op::Delete(id, confirm) => api::delete_user(id, confirm).await.map(|_| None),
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(text)) = op.value().get() {
            if text.is_some() {
                shown.set(text);
            }
            users.refetch();
        }
    });
    let on_create = move |ev: SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateUserRequest {
            username: name.get_untracked().trim().to_string(),
            access: if invite.get_untracked() {
                NewUserAccess::Invitation
            } else {
                NewUserAccess::OneTimePassword
            },
        });
    };
    view! {
        <Title text="Users · StatusMonitor" />
        <div class="page-head"><h1>"Users"</h1></div>
        <section class="card" aria-labelledby="new-user-title">
            <h2 class="card-title" id="new-user-title">"Add a user"</h2>
            <form class="form" on:submit=on_create>
                <label for="new-user-name">"Username"</label>
                <input id="new-user-name" required bind:value=name />
                <label><input type="checkbox" id="new-user-invite" bind:checked=invite />
                    " Send an invitation link (valid 24 hours, once) instead of a one-time password"</label>
                <button class="button" type="submit" id="new-user-submit"
                    disabled=move || !ready.get() || create.pending().get()>"Add"</button>
            </form>
            {move || match create.value().get() {
                Some(Err(e)) => Some(view! { <ErrorNote what="Adding the user" error=e /> }),
                _ => None,
            }}
        </section>
        {move || shown.get().map(|t| view! {
            <p class="card secret" id="user-secret" role="status">{t}</p>
        })}
        {move || match op.value().get() {
            Some(Err(e)) => Some(view! { <ErrorNote what="Changing the user" error=e /> }),
            _ => None,
        }}
        <section class="card" aria-labelledby="users-title">
            <h2 class="card-title" id="users-title">"Accounts"</h2>
            {move || match users.get() {
                None => None,
                Some(Err(e)) => Some(Either::Left(view! { <ErrorNote what="Loading the users" error=e /> })),
                Some(Ok(list)) => Some(Either::Right(view! {
                    <ul class="agent-rows" id="user-list">
                        {list.into_iter().map(|u| view! { <UserRow user=u op=op /> }).collect_view()}
                    </ul>
                })),
            }}
        </section>
    }
}

fn created_text(c: &CreatedUser) -> String {
    match (&c.user, &c.one_time_password, &c.invitation) {
        (Some(u), Some(p), _) => format!(
            "One-time password for {}: {p} (it must be changed at the first log-in)",
            u.username
        ),
        (_, _, Some(i)) => {
            let origin = web_origin();
            format!(
                "Invitation link for {} (valid 24 hours, once): {origin}{}",
                i.username, i.path
            )
        }
        _ => String::new(),
    }
}

fn web_origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

#[component]
fn UserRow(
    user: ManagedUser,
    op: Action<Op, Result<Option<String>, api::ApiError>>,
) -> impl IntoView {
    let id = user.id;
    let deleting = RwSignal::new(false);
    let typed = RwSignal::new(String::new());
    let name = user.username.clone();
    let (disabled, admin) = (user.disabled, user.is_admin);
    let update = move |req: UpdateUserRequest| {
        op.dispatch(Op::Update(id, req));
    };
    view! {
        <li class="agent-row" data-user=user.username.clone()>
            <div class="agent-main">
                <strong>{user.username.clone()}</strong>
                <span class="muted small">
                    {format!(
                        "{}{}since {} · {} agents · last log-in {}",
                        if admin { "admin · " } else { "" },
                        if disabled { "disabled · " } else { "" },
                        format::datetime(user.created_ms),
                        user.agent_count,
                        user.last_login_ms.map(format::datetime).unwrap_or_else(|| "never".into()),
                    )}
                </span>
            </div>
            <div class="agent-actions">
                {move || if deleting.get() {
                    let name = name.clone();
                    Either::Left(view! {
                        <label class="visually-hidden" for=format!("confirm-{id}")>"Type the name to delete"</label>
                        <input id=format!("confirm-{id}") class="confirm-name" placeholder=name.clone() bind:value=typed />
                        <button type="button" class="button danger small confirm-delete"
                            disabled=move || typed.get().trim() != name
                            on:click=move |_| { op.dispatch(Op::Delete(id, typed.get_untracked())); }>"Delete with all data"</button>
                        <button type="button" class="button secondary small" on:click=move |_| deleting.set(false)>"Cancel"</button>
                    })
                } else {
                    Either::Right(view! {
                        <button type="button" class="button secondary small action-disable"
                            on:click=move |_| update(UpdateUserRequest { disabled: Some(!disabled), is_admin: None })>
                            {if disabled { "Enable" } else { "Disable" }}</button>
                        <button type="button" class="button secondary small action-admin"
                            on:click=move |_| update(UpdateUserRequest { disabled: None, is_admin: Some(!admin) })>
                            {if admin { "Remove admin" } else { "Make admin" }}</button>
                        <button type="button" class="button secondary small action-reset"
                            on:click=move |_| { op.dispatch(Op::Reset(id)); }>"Reset password"</button>
                        <button type="button" class="button secondary small action-delete"
                            on:click=move |_| deleting.set(true)>"Delete"</button>
                    })
                }}
            </div>
        </li>
    }
}

/// `/invite?token=…`: whoever has the link chooses the password of the
/// account it was made for.
#[component]
pub fn InvitePage() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let navigate = leptos_router::hooks::use_navigate();
    let ready = use_hydrated();
    let token = move || query.with(|q| q.get("token")).unwrap_or_default();
    let info = LocalResource::new(move || {
        let t = token();
        async move {
            api::get_json::<storage::model::InvitationInfo>(&format!(
                "/api/auth/invitation?token={}",
                api::encode(&t)
            ))
            .await
        }
    });
    let password = RwSignal::new(String::new());
    let accept = Action::new_local(move |p: &String| {
        let req = storage::model::AcceptInvitationRequest {
            token: token(),
            password: p.clone(),
        };
        async move { api::post_json::<api::User>("/api/auth/invitation", &req).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = accept.value().get() {
            navigate("/login", Default::default());
        }
    });
    view! {
        <Title text="Invitation · StatusMonitor" />
        <section class="card auth-card">
            <h1>"Join this StatusMonitor"</h1>
            {move || match info.get() {
                Some(Ok(i)) => Some(Either::Left(view! { <p id="invite-user">"Choose a password for the account " {i.username} "."</p> })),
                Some(Err(e)) => Some(Either::Right(view! { <ErrorNote what="Opening the invitation" error=e /> })),
                None => None,
            }}
            <form class="form" on:submit=move |ev: SubmitEvent| {
                ev.prevent_default();
                accept.dispatch(password.get_untracked());
            }>
                <label for="invite-password">"Password (at least 10 characters)"</label>
                <input id="invite-password" type="password" autocomplete="new-password" minlength="10" required bind:value=password />
                <button class="button" type="submit" id="invite-submit"
                    disabled=move || !ready.get() || accept.pending().get()>"Create my account"</button>
            </form>
            {move || match accept.value().get() {
                Some(Err(e)) => Some(view! { <ErrorNote what="Accepting the invitation" error=e /> }),
                _ => None,
            }}
        </section>
    }
}
