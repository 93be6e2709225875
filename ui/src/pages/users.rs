//! Users (admins only): every account with its last log-in and agents;
//! create one with a one-time password or an invitation link; disable,
//! reset the password, make admin, remove a lost two-factor log-in, delete
//! with the name typed again; the pending invitations (revoke one); require
//! two-factor log-in for everyone.

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
    RemoveTwoFactor(u64),
    Revoke(String),
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let ready = use_hydrated();
    let users = LocalResource::new(api::users);
    let invitations = LocalResource::new(api::invitations);
    let settings = LocalResource::new(api::admin_settings);
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
            invitations.refetch();
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
                Op::RemoveTwoFactor(id) => api::remove_user_two_factor(id).await.map(|_| None),
                Op::Revoke(name) => api::revoke_invitation(&name).await.map(|_| None),
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(text)) = op.value().get() {
            if text.is_some() {
                shown.set(text);
            }
            users.refetch();
            invitations.refetch();
        }
    });
    // Require two-factor log-in: the other setting is sent back unchanged.
    let require = Action::new_local(move |on: &bool| {
        let on = *on;
        async move {
            let mut s = api::admin_settings().await?;
            s.require_two_factor = on;
            api::set_admin_settings(&s).await
        }
    });
    // Refused too (the admin has no two-factor log-in yet): the box shows
    // the setting as it is.
    Effect::new(move |_| {
        if require.value().get().is_some() {
            settings.refetch();
        }
    });
    let required = move || matches!(settings.get(), Some(Ok(s)) if s.require_two_factor);
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
        <section class="card" aria-labelledby="invitations-title">
            <h2 class="card-title" id="invitations-title">"Pending invitations"</h2>
            {move || match invitations.get() {
                None => None,
                Some(Err(e)) => Some(Either::Left(view! { <ErrorNote what="Loading the invitations" error=e /> })),
                Some(Ok(list)) if list.is_empty() => Some(Either::Right(Either::Left(view! {
                    <p class="empty">"None."</p>
                }))),
                Some(Ok(list)) => Some(Either::Right(Either::Right(view! {
                    <ul class="agent-rows" id="invitation-list">
                        {list.into_iter().map(|i| {
                            let who = i.username.clone();
                            let key = i.username.clone();
                            view! {
                                <li class="agent-row" data-invitation=key>
                                    <div class="agent-main">
                                        <strong>{i.username}</strong>
                                        <span class="muted small">{format!("expires {}", format::datetime(i.expires_ms))}</span>
                                    </div>
                                    <div class="agent-actions">
                                        <button type="button" class="button secondary small action-revoke"
                                            on:click=move |_| { op.dispatch(Op::Revoke(who.clone())); }>"Revoke"</button>
                                    </div>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }))),
            }}
        </section>
        <section class="card" aria-labelledby="policy-title">
            <h2 class="card-title" id="policy-title">"Two-factor log-in"</h2>
            <label><input type="checkbox" id="require-two-factor"
                prop:checked=required
                disabled=move || !ready.get() || require.pending().get() || settings.get().is_none()
                on:change=move |ev| { require.dispatch(event_target_checked(&ev)); } />
                " Require two-factor log-in for everyone (each account sets it up at its next log-in)"</label>
            {move || match require.value().get() {
                Some(Err(e)) => Some(view! { <ErrorNote what="Changing the setting" error=e /> }),
                _ => None,
            }}
        </section>
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

/// The dashboard's own origin (`https://monitor.example`), for links to copy.
pub(crate) fn web_origin() -> String {
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
    let (disabled, admin, two_factor) = (user.disabled, user.is_admin, user.two_factor);
    let update = move |req: UpdateUserRequest| {
        op.dispatch(Op::Update(id, req));
    };
    view! {
        <li class="agent-row" data-user=user.username.clone()>
            <div class="agent-main">
                <strong>{user.username.clone()}</strong>
                <span class="muted small">
                    {format!(
                        "{}{}{}since {} · {} agents · last log-in {}",
                        if admin { "admin · " } else { "" },
                        if disabled { "disabled · " } else { "" },
                        if two_factor { "two-factor · " } else { "" },
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
                        {two_factor.then(|| view! {
                            <button type="button" class="button secondary small action-remove-2fa"
                                on:click=move |_| { op.dispatch(Op::RemoveTwoFactor(id)); }>"Remove two-factor"</button>
                        })}
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
