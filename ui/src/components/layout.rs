//! The frame around every page: header with navigation, theme toggle and the
//! account corner (log in / log out), main area, footer.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::components::theme::ThemeToggle;
use crate::session::use_session;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-dot" aria-hidden="true"></span>
                "StatusMonitor"
            </a>
            <nav aria-label="Main">
                <A href="/">"Overview"</A>
                <A href="/agents">"Agents"</A>
                <A href="/account">"Account"</A>
            </nav>
            <div class="topbar-end">
                <ThemeToggle />
                <AccountCorner />
            </div>
        </header>
        <main id="main" class="page">{children()}</main>
        <footer class="footer">
            "StatusMonitor — self-hosted server monitoring · "
            <a href="/status">"Server status"</a>
        </footer>
    }
}

/// Log in, or the user's name and a log-out button. Fixed width, so nothing
/// moves when the answer arrives.
#[component]
fn AccountCorner() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();
    let logout = Action::new_local(|_: &()| api::logout());
    Effect::new(move |_| {
        if logout.value().get().is_some() {
            session.reload();
            navigate("/login", Default::default());
        }
    });
    view! {
        <div class="account-corner">
            {move || match session.user.get() {
                Some(Ok(Some(user))) => view! {
                    <span class="who" title="Logged in">{user.username}</span>
                    <button
                        type="button"
                        class="button secondary small"
                        id="logout"
                        disabled=move || logout.pending().get()
                        on:click=move |_| { logout.dispatch(()); }
                    >"Log out"</button>
                }.into_any(),
                Some(_) => view! { <A href="/login" attr:class="button small">"Log in"</A> }.into_any(),
                None => view! { <span class="who muted" aria-hidden="true"></span> }.into_any(),
            }}
        </div>
    }
}
