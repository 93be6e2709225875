//! The account: who is logged in, change the password, the open sessions
//! (end one, or log out everywhere).

use crate::components::common::Title;
use leptos::either::{Either, EitherOf3};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::api::{self, ChangePasswordRequest};
use crate::components::common::{
    ErrorNote, Problem, api_problem, field_error, use_hydrated, use_now,
};
use crate::format;
use crate::session::use_session;

#[component]
pub fn AccountPage() -> impl IntoView {
    let session = use_session();
    let ready = use_hydrated();
    let now = use_now(30_000);
    let navigate = use_navigate();
    let sessions = LocalResource::new(api::sessions);

    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let repeat = RwSignal::new(String::new());
    // One message at a time, next to its field; cleared on the next attempt.
    let problem: Problem = RwSignal::new(None);
    let change = Action::new_local(|c: &ChangePasswordRequest| {
        let c = c.clone();
        async move { api::change_password(&c).await }
    });
    Effect::new(move |_| {
        if let Some(Err(e)) = change.value().get() {
            problem.set(Some(if e.status == 403 {
                (Some("current"), "The current password is wrong.".into())
            } else {
                api_problem(&e, |f| match f {
                    "new_password" => Some("new"),
                    "current_password" => Some("current"),
                    _ => None,
                })
            }));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = change.value().get() {
            session.reload();
            current.set(String::new());
            new.set(String::new());
            repeat.set(String::new());
            sessions.refetch();
        }
    });
    let on_change = move |ev: SubmitEvent| {
        ev.prevent_default();
        change.value().set(None);
        if new.get_untracked() != repeat.get_untracked() {
            problem.set(Some((Some("repeat"), "The new passwords differ.".into())));
            return;
        }
        if new.get_untracked() == current.get_untracked() {
            problem.set(Some((
                Some("new"),
                "The new password is the same as the current one; choose a different one.".into(),
            )));
            return;
        }
        problem.set(None);
        change.dispatch(ChangePasswordRequest {
            current_password: current.get_untracked(),
            new_password: new.get_untracked(),
        });
    };

    // `Some(id)` ends one session, `None` all of them.
    let end = Action::new_local(|which: &Option<u64>| {
        let which = *which;
        async move {
            match which {
                Some(id) => api::revoke_session(id).await.map(|_| false),
                None => api::logout_all().await.map(|_| true),
            }
        }
    });
    Effect::new(move |_| match end.value().get() {
        Some(Ok(true)) => {
            session.reload();
            navigate("/login", Default::default());
        }
        Some(_) => sessions.refetch(),
        None => {}
    });

    view! {
        <Title text="Account · StatusMonitor" />
        <div class="page-head">
            <div>
                <h1>"Account"</h1>
                <p class="muted" id="account-user">
                    {move || match session.user.get() {
                        Some(Ok(Some(u))) => format!(
                            "Logged in as {}{}",
                            u.username,
                            if u.is_admin { " (administrator)" } else { "" }
                        ),
                        _ => "\u{a0}".into(),
                    }}
                </p>
            </div>
        </div>
        {move || matches!(session.user.get(), Some(Ok(Some(u))) if u.must_change_password).then(|| view! {
            <p class="card error" role="alert" id="must-change">"You logged in with a one-time password: choose your own password below."</p>
        })}
        <div class="account-grid">
            <crate::pages::two_factor::TwoFactorCard />
            <section class="card" aria-labelledby="pw-title">
                <h2 class="card-title" id="pw-title">"Change password"</h2>
                <form class="form" method="post" on:submit=on_change>
                    <label for="pw-current">"Current password"</label>
                    <input id="pw-current" type="password" autocomplete="current-password" required bind:value=current />
                    {field_error(problem, "current", "pw-error")}
                    <label for="pw-new">"New password (at least 10 characters)"</label>
                    <input id="pw-new" type="password" autocomplete="new-password" minlength="10" required bind:value=new />
                    {field_error(problem, "new", "pw-error")}
                    <label for="pw-repeat">"Repeat the new password"</label>
                    <input id="pw-repeat" type="password" autocomplete="new-password" minlength="10" required bind:value=repeat />
                    {field_error(problem, "repeat", "pw-error")}
                    <div class="form-error" aria-live="polite">
                        {move || match (problem.get(), change.value().get()) {
                            (Some((None, p)), _) => Some(Either::Right(view! { <p class="error" role="alert" id="pw-error">{p}</p> })),
                            (None, Some(Ok(()))) => Some(Either::Left(view! { <p class="ok-text" id="pw-changed">"Password changed."</p> })),
                            _ => None,
                        }}
                    </div>
                    <button class="button" type="submit" id="pw-submit"
                        disabled=move || !ready.get() || change.pending().get()>"Change password"</button>
                </form>
            </section>
            <section class="card" aria-labelledby="sessions-title">
                <h2 class="card-title" id="sessions-title">"Sessions"</h2>
                {move || match sessions.get() {
                    None => EitherOf3::A(view! { <ul class="session-list" aria-busy="true"><li><span class="skeleton"></span></li></ul> }),
                    Some(Err(e)) => EitherOf3::B(view! {
                        <ErrorNote what="Loading your sessions" error=e retry=Callback::new(move |_| sessions.refetch()) />
                    }),
                    Some(Ok(list)) => EitherOf3::C(view! {
                        <ul class="session-list" id="session-list">
                            {list.into_iter().map(|s| {
                                let id = s.id;
                                view! {
                                    <li>
                                        <div class="session-meta">
                                            <span class="ellipsis">
                                                {if s.user_agent.is_empty() { "Unknown client".to_string() } else { short_agent(&s.user_agent) }}
                                                {s.current.then_some(" · this browser")}
                                            </span>
                                            <span class="muted small">
                                                {move || format!("active {} · since {}", format::ago(now.get(), s.last_used_ms), format::datetime(s.created_ms))}
                                            </span>
                                        </div>
                                        {(!s.current).then(|| view! {
                                            <button type="button" class="button secondary small"
                                                on:click=move |_| { end.dispatch(Some(id)); }>"End"</button>
                                        })}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }),
                }}
                <button type="button" class="button danger" id="logout-all"
                    disabled=move || !ready.get() || end.pending().get()
                    on:click=move |_| { end.dispatch(None); }>"Log out everywhere"</button>
                {move || match end.value().get() {
                    Some(Err(e)) => Some(view! { <ErrorNote what="Ending the session" error=e /> }),
                    _ => None,
                }}
            </section>
        </div>
    }
}

/// A readable name for a browser's user-agent string.
fn short_agent(ua: &str) -> String {
    let browser = ["Firefox", "Edg", "Chrome", "Safari", "curl"]
        .into_iter()
        .find(|b| ua.contains(b))
        .map(|b| if b == "Edg" { "Edge" } else { b });
    let os = ["Windows", "Android", "iPhone", "Mac OS", "Linux"]
        .into_iter()
        .find(|o| ua.contains(o))
        .map(|o| if o == "Mac OS" { "macOS" } else { o });
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_string(),
        _ => ua.chars().take(60).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::short_agent;

    #[test]
    fn user_agents_read_short() {
        assert_eq!(
            short_agent(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/140.0 Safari/537.36"
            ),
            "Chrome on Linux"
        );
        assert_eq!(short_agent("curl/8.5.0"), "curl");
    }
}
