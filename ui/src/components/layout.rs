//! The frame around every page: header with navigation, theme toggle and the
//! account corner (log in / log out), main area, footer.

use leptos::either::EitherOf3;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::components::theme::ThemeToggle;
use crate::session::use_session;

/// The header: skip link, brand, navigation, theme toggle, account corner.
/// (Header and footer are separate components instead of one layout taking
/// the page as `Children`: `Children` boxes the page into an `AnyView`,
/// which costs bundle size; see `app.rs`.)
#[component]
pub fn Header() -> impl IntoView {
    view! {
        <a class="skip-link" href="#main" on:click=skip_to_main>"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-dot" aria-hidden="true"></span>
                "StatusMonitor"
            </a>
            <nav aria-label="Main">
                <A href="/">"Overview"</A>
                <A href="/agents">"Agents"</A>
                <A href="/checks">"Checks"</A>
                <A href="/alerts">"Alerts"</A>
                <A href="/account">"Account"</A>
                <AdminLink />
            </nav>
            <div class="topbar-end">
                <ThemeToggle />
                <AccountCorner />
            </div>
        </header>
    }
}

/// The skip link moves keyboard focus to the main content (the router
/// would otherwise take the `#main` link as a navigation and leave focus on
/// the link).
fn skip_to_main(ev: leptos::ev::MouseEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(main) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("main"))
            .and_then(|m| m.dyn_into::<web_sys::HtmlElement>().ok())
        {
            ev.prevent_default();
            let _ = main.focus();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

/// "Users", for admins only.
#[component]
fn AdminLink() -> impl IntoView {
    let session = use_session();
    move || {
        matches!(session.user.get(), Some(Ok(Some(u))) if u.is_admin)
            .then(|| view! { <A href="/users" attr:id="nav-users">"Users"</A> })
    }
}

#[component]
pub fn Footer() -> impl IntoView {
    view! {
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
                Some(Ok(Some(user))) => EitherOf3::A(view! {
                    <span class="who" title="Logged in">{user.username}</span>
                    <button
                        type="button"
                        class="button secondary small"
                        id="logout"
                        disabled=move || logout.pending().get()
                        on:click=move |_| { logout.dispatch(()); }
                    >"Log out"</button>
                }),
                Some(_) => EitherOf3::B(view! { <A href="/login" attr:class="button small">"Log in"</A> }),
                None => EitherOf3::C(view! { <span class="who muted" aria-hidden="true"></span> }),
            }}
        </div>
    }
}
