//! Log in and register. Registration is offered only while the server says
//! it is open. After logging in the browser goes back to `?next=` (a local
//! path only), where an expired session had sent it from.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::{self, LoginRequest, RegisterRequest};
use crate::components::common::use_hydrated;
use crate::session::use_session;

#[component]
pub fn LoginPage() -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    let navigate = use_navigate();
    let ready = use_hydrated();
    let registration = LocalResource::new(api::registration);
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let login = Action::new_local(|c: &LoginRequest| {
        let c = c.clone();
        async move { api::login(&c).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = login.value().get() {
            session.reload();
            let next = api::safe_next(query.with_untracked(|q| q.get("next")));
            navigate(&next, Default::default());
        }
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        login.dispatch(LoginRequest {
            username: username.get_untracked().trim().to_string(),
            password: password.get_untracked(),
        });
    };
    let register_href = move || match query.with(|q| q.get("next")) {
        Some(next) => format!("/register?next={}", api::encode(&next)),
        None => "/register".to_string(),
    };

    view! {
        <Title text="Log in · StatusMonitor" />
        <section class="card auth-card">
            <h1>"Log in"</h1>
            <form class="form" method="post" on:submit=on_submit>
                <label for="login-username">"Username"</label>
                <input id="login-username" name="username" autocomplete="username" required
                    bind:value=username />
                <label for="login-password">"Password"</label>
                <input id="login-password" name="password" type="password" autocomplete="current-password" required
                    bind:value=password />
                <div class="form-error" aria-live="polite">
                    {move || match login.value().get() {
                        Some(Err(e)) => Some(view! { <p class="error" role="alert">{
                            if e.status == 401 { "Wrong username or password.".to_string() } else { e.to_string() }
                        }</p> }),
                        _ => None,
                    }}
                </div>
                <button class="button" type="submit" id="login-submit"
                    disabled=move || !ready.get() || login.pending().get()>
                    {move || if login.pending().get() { "Logging in…" } else { "Log in" }}
                </button>
            </form>
            <p class="muted auth-switch">
                {move || match registration.get() {
                    Some(Ok(r)) if r.open => view! {
                        "No account yet? " <A href=register_href>"Create one"</A>
                    }.into_any(),
                    Some(Ok(_)) => view! { "New accounts are created by the server's operator." }.into_any(),
                    _ => view! { "\u{a0}" }.into_any(),
                }}
            </p>
        </section>
    }
}

#[component]
pub fn RegisterPage() -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    let navigate = use_navigate();
    let ready = use_hydrated();
    let registration = LocalResource::new(api::registration);
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let mismatch = RwSignal::new(false);
    let register = Action::new_local(|c: &LoginRequest| {
        let c = c.clone();
        async move {
            api::register(&RegisterRequest {
                username: c.username.clone(),
                password: c.password.clone(),
            })
            .await?;
            api::login(&c).await
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = register.value().get() {
            session.reload();
            let next = match query.with_untracked(|q| q.get("next")) {
                Some(n) => api::safe_next(Some(n)),
                None => "/agents".to_string(),
            };
            navigate(&next, Default::default());
        }
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if password.get_untracked() != confirm.get_untracked() {
            mismatch.set(true);
            return;
        }
        mismatch.set(false);
        register.dispatch(LoginRequest {
            username: username.get_untracked().trim().to_string(),
            password: password.get_untracked(),
        });
    };
    let closed = move || matches!(registration.get(), Some(Ok(r)) if !r.open);

    view! {
        <Title text="Create an account · StatusMonitor" />
        <section class="card auth-card">
            <h1>"Create an account"</h1>
            <Show when=closed fallback=move || view! {
                <form class="form" method="post" on:submit=on_submit>
                    <label for="reg-username">"Username"</label>
                    <input id="reg-username" name="username" autocomplete="username" required
                        bind:value=username />
                    <label for="reg-password">"Password"</label>
                    <input id="reg-password" name="password" type="password" autocomplete="new-password" required
                        bind:value=password />
                    <label for="reg-confirm">"Repeat the password"</label>
                    <input id="reg-confirm" name="confirm" type="password" autocomplete="new-password" required
                        bind:value=confirm />
                    <div class="form-error" aria-live="polite">
                        {move || mismatch.get().then(|| view! { <p class="error" role="alert">"The passwords differ."</p> })}
                        {move || match register.value().get() {
                            Some(Err(e)) => Some(view! { <p class="error" role="alert">{e.to_string()}</p> }),
                            _ => None,
                        }}
                    </div>
                    <button class="button" type="submit" id="register-submit"
                        disabled=move || !ready.get() || register.pending().get()>
                        {move || if register.pending().get() { "Creating…" } else { "Create account" }}
                    </button>
                </form>
            }>
                <p id="registration-closed">"Registration is closed on this server. Ask its operator for an account."</p>
            </Show>
            <p class="muted auth-switch">"Already have an account? " <A href="/login">"Log in"</A></p>
        </section>
    }
}
