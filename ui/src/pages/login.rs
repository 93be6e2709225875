//! Log in and register: one form in two modes (one view tree in the bundle).
//! Registration is offered only while the server says it is open. After
//! logging in the browser goes back to `?next=` (a local path only), where an
//! expired session had sent it from; a new account goes to its agents.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::{self, LoginRequest, RegisterRequest};
use crate::components::common::{Problem, Title, api_problem, field_error, use_hydrated};
use crate::session::use_session;

#[component]
pub fn LoginPage() -> impl IntoView {
    view! { <AuthForm register=false /> }
}

#[component]
pub fn RegisterPage() -> impl IntoView {
    view! { <AuthForm register=true /> }
}

/// Element ids per mode (the end-to-end tests use them).
struct Ids {
    user: &'static str,
    pass: &'static str,
    submit: &'static str,
}

#[component]
fn AuthForm(register: bool) -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    let navigate = use_navigate();
    let ready = use_hydrated();
    let registration = LocalResource::new(api::registration);
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    // Two-factor: the server asked for a code after a right password.
    let code = RwSignal::new(String::new());
    let need_code = RwSignal::new(false);
    // One message at a time, next to its field; cleared on the next attempt.
    let problem: Problem = RwSignal::new(None);
    let submit = Action::new_local(move |c: &LoginRequest| {
        let c = c.clone();
        async move {
            if register {
                api::register(&RegisterRequest {
                    username: c.username.clone(),
                    password: c.password.clone(),
                })
                .await?;
            }
            api::login(&c).await
        }
    });
    Effect::new(move |_| match submit.value().get() {
        // Once a code was asked for, a 401 is about the code: the server says how.
        Some(Err(e))
            if e.status == 401
                && !register
                && (is_code_request(&e.message) || need_code.get_untracked()) =>
        {
            problem.set(Some((None, e.message)))
        }
        Some(Err(e)) if e.status == 401 && !register => {
            problem.set(Some((None, "Wrong username or password.".into())))
        }
        Some(Err(e)) => problem.set(Some(api_problem(&e, |f| match f {
            "username" => Some("username"),
            "password" => Some("password"),
            _ => None,
        }))),
        _ => {}
    });
    Effect::new(move |_| {
        if let Some(Err(e)) = submit.value().get()
            && e.status == 401
            && is_code_request(&e.message)
        {
            need_code.set(true);
        }
    });
    // Behind a proxy that logs people in: try that first.
    let sso = Action::new_local(|_: &()| api::sso());
    Effect::new(move |_| {
        if !register && matches!(registration.get(), Some(Ok(r)) if r.trusted_header_login) {
            sso.dispatch(());
        }
    });
    Effect::new(move |_| {
        let done = match (submit.value().get(), sso.value().get()) {
            (Some(Ok(u)), _) | (_, Some(Ok(u))) => {
                Some(u.must_change_password || u.must_enrol_two_factor)
            }
            _ => None,
        };
        if let Some(restricted) = done {
            session.reload();
            // A one-time password or a missing second factor: the Account
            // page is where that is put right.
            let next = match query.with_untracked(|q| q.get("next")) {
                _ if restricted => "/account".to_string(),
                None if register => "/agents".to_string(),
                n => api::safe_next(n),
            };
            navigate(&next, Default::default());
        }
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let mismatch = register && password.get_untracked() != confirm.get_untracked();
        problem.set(mismatch.then(|| (Some("confirm"), "The passwords differ.".to_string())));
        if !mismatch {
            submit.dispatch(LoginRequest {
                username: username.get_untracked().trim().to_string(),
                password: password.get_untracked(),
                two_factor_code: need_code
                    .get_untracked()
                    .then(|| code.get_untracked().trim().to_string()),
            });
        }
    };
    let other_href = move || {
        let base = if register { "/login" } else { "/register" };
        match query.with(|q| q.get("next")) {
            Some(next) => format!("{base}?next={}", api::encode(&next)),
            None => base.to_string(),
        }
    };
    let closed = move || register && matches!(registration.get(), Some(Ok(r)) if !r.open);
    let ids = if register {
        Ids {
            user: "reg-username",
            pass: "reg-password",
            submit: "register-submit",
        }
    } else {
        Ids {
            user: "login-username",
            pass: "login-password",
            submit: "login-submit",
        }
    };
    let (title, action, busy) = if register {
        ("Create an account", "Create account", "Creating…")
    } else {
        ("Log in", "Log in", "Logging in…")
    };

    view! {
        <Title text=format!("{title} · StatusMonitor") />
        <section class="card auth-card">
            <h1>{title}</h1>
            {move || closed().then(|| view! {
                <p id="registration-closed">"Registration is closed on this server. Ask its operator for an account."</p>
            })}
            {register.then(|| view! {
                <p class="muted small" id="register-rules">
                    {move || matches!(registration.get(), Some(Ok(r)) if r.first_account)
                        .then_some("The first account on this server becomes its administrator. ")}
                    "A username has 3 to 32 letters, digits, “_”, “.” or “-”; a password at least 10 characters."
                </p>
            })}
            <form class="form" method="post" on:submit=on_submit hidden=closed>
                <label for=ids.user>"Username"</label>
                <input id=ids.user name="username" autocomplete="username" required bind:value=username
                    aria-describedby=register.then_some("register-rules") />
                {field_error(problem, "username", "username-error")}
                <label for=ids.pass>"Password"</label>
                <input id=ids.pass name="password" type="password" required bind:value=password
                    autocomplete=if register { "new-password" } else { "current-password" } />
                {move || need_code.get().then(|| view! {
                    <label for="login-code">"Two-factor code (or a recovery code)"</label>
                    <input id="login-code" name="code" autocomplete="one-time-code" required bind:value=code />
                })}
                {field_error(problem, "password", "password-error")}
                {register.then(|| view! {
                    <label for="reg-confirm">"Repeat the password"</label>
                    <input id="reg-confirm" name="confirm" type="password" autocomplete="new-password" required
                        bind:value=confirm />
                    {field_error(problem, "confirm", "confirm-error")}
                })}
                <div class="form-error" aria-live="polite">
                    {move || problem.with(|p| match p {
                        Some((None, text)) => Some(view! { <p class="error" role="alert" id="auth-error">{text.clone()}</p> }),
                        _ => None,
                    })}
                </div>
                <button class="button" type="submit" id=ids.submit
                    disabled=move || !ready.get() || submit.pending().get()>
                    {move || if submit.pending().get() { busy } else { action }}
                </button>
            </form>
            <p class="muted auth-switch">
                {move || match (register, registration.get()) {
                    (true, _) => Some(("Already have an account? ", "Log in")),
                    (false, Some(Ok(r))) if r.open => Some(("No account yet? ", "Create one")),
                    (false, Some(Ok(_))) => Some(("New accounts are created by the server's operator.", "")),
                    _ => None,
                }
                .map(|(text, link)| view! {
                    {text}
                    {(!link.is_empty()).then(|| view! { <A href=other_href>{link}</A> })}
                })}
            </p>
        </section>
    }
}

/// Whether a refused log-in asks for a two-factor code.
fn is_code_request(message: &str) -> bool {
    message.contains("two-factor") || message.contains("two_factor")
}
