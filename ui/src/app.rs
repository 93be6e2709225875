//! The HTML shell, the router and the layout every page shares.

use leptos::either::{EitherOf5, EitherOf9};
use leptos::prelude::*;
use leptos_router::components::Router;
use leptos_router::hooks::use_location;

use crate::components::layout::{Footer, Header};
use crate::components::theme::{THEME_BOOT, provide_theme};
use crate::pages::{
    account::AccountPage,
    agent::AgentPage,
    agents::AgentsPage,
    alerts::AlertsPage,
    checks::{ChecksPage, detail::CheckPage},
    home::HomePage,
    login::{LoginPage, RegisterPage},
    not_found::NotFound,
    status::StatusPage,
    users::{InvitePage, UsersPage},
};
use crate::session::provide_session;

/// The whole HTML document, rendered on the server. `asset_base` is the
/// versioned URL prefix of the static files (`/static/{hash}`).
pub fn shell(options: LeptosOptions, asset_base: String) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <title>"StatusMonitor"</title>
                <script nonce=use_nonce()>{THEME_BOOT}</script>
                <link rel="icon" href=format!("{asset_base}/favicon.svg") type="image/svg+xml" />
                <link rel="stylesheet" href=format!("{asset_base}/uPlot.min.css") />
                <link rel="stylesheet" href=format!("{asset_base}/style.css") />
                <HydrationScripts options />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// A page of the app, parsed from the URL path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Home,
    Login,
    Register,
    Agents,
    /// `/agents/{id}`; `None` when the id is not a number.
    Agent(Option<u64>),
    Alerts,
    /// Uptime checks.
    Checks,
    /// `/checks/{id}`; `None` when the id is not a number.
    Check(Option<u64>),
    Account,
    Status,
    /// Accounts (admins).
    Users,
    /// `/invite?token=`: accept an invitation.
    Invite,
    NotFound,
}

impl Page {
    /// The page a path shows (a trailing slash is ignored).
    pub fn of(path: &str) -> Page {
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        match path {
            "/" => Page::Home,
            "/login" => Page::Login,
            "/register" => Page::Register,
            "/agents" => Page::Agents,
            "/alerts" => Page::Alerts,
            "/checks" => Page::Checks,
            "/account" => Page::Account,
            "/status" => Page::Status,
            "/users" => Page::Users,
            "/invite" => Page::Invite,
            _ => match (path.strip_prefix("/agents/"), path.strip_prefix("/checks/")) {
                (Some(id), _) if !id.contains('/') => Page::Agent(id.parse().ok()),
                (_, Some(id)) if !id.contains('/') => Page::Check(id.parse().ok()),
                _ => Page::NotFound,
            },
        }
    }
}

/// The app: the page the URL names, inside the shared header and footer.
///
/// Routing is one `match` over [`Page`] instead of `leptos_router`'s
/// `<FlatRoutes>`: the router type-erases each page into an `AnyView`, which
/// compiles an async hydration path for every view of every page (a fifth of
/// the wasm) that a `hydrate_body` app never runs. `<Router>` still provides
/// the location, link interception and `use_navigate`.
///
/// One duty of the router's views is taken over by [`Pages`]: a clicked link
/// changes the location at once, but the browser's address bar (the history
/// entry) is only written when the routes tell the location provider that the
/// new page is ready (`ready_to_complete`). Without that call every link
/// showed its page while the address bar stayed on the old URL.
#[component]
pub fn App() -> impl IntoView {
    provide_theme();
    provide_session();
    view! {
        <Router>
            <Header />
            <main id="main" class="page" tabindex="-1"><Pages /></main>
            <Footer />
        </Router>
    }
}

#[component]
fn Pages() -> impl IntoView {
    let location = use_location();
    let page = Memo::new(move |_| Page::of(&location.pathname.get()));
    #[cfg(feature = "hydrate")]
    {
        use leptos_router::location::{BrowserUrl, LocationProvider};
        let provider = use_context::<BrowserUrl>();
        // Runs after the new page has been rendered for the new path: let
        // the pending link navigation push its history entry.
        Effect::new(move |_| {
            location.pathname.track();
            if let Some(provider) = &provider {
                provider.ready_to_complete();
            }
        });
    }
    move || match page.get() {
        Page::Home => EitherOf9::A(view! { <HomePage /> }),
        Page::Login => EitherOf9::B(view! { <LoginPage /> }),
        Page::Register => EitherOf9::C(view! { <RegisterPage /> }),
        Page::Agents => EitherOf9::D(view! { <AgentsPage /> }),
        Page::Agent(id) => EitherOf9::E(view! { <AgentPage id=id /> }),
        Page::Alerts => EitherOf9::F(view! { <AlertsPage /> }),
        Page::Account => EitherOf9::G(view! { <AccountPage /> }),
        Page::Status => EitherOf9::H(view! { <StatusPage /> }),
        // The ninth slot is shared (EitherOf9 is the largest).
        Page::Users => EitherOf9::I(EitherOf5::A(view! { <UsersPage /> })),
        Page::Invite => EitherOf9::I(EitherOf5::B(view! { <InvitePage /> })),
        Page::NotFound => EitherOf9::I(EitherOf5::C(view! { <NotFound /> })),
        Page::Checks => EitherOf9::I(EitherOf5::D(view! { <ChecksPage /> })),
        Page::Check(id) => EitherOf9::I(EitherOf5::E(view! { <CheckPage id=id /> })),
    }
}

#[cfg(test)]
mod tests {
    use super::Page;

    #[test]
    fn paths_name_pages() {
        assert_eq!(Page::of("/"), Page::Home);
        assert_eq!(Page::of("/agents/"), Page::Agents);
        assert_eq!(Page::of("/agents/12"), Page::Agent(Some(12)));
        assert_eq!(Page::of("/agents/x"), Page::Agent(None));
        assert_eq!(Page::of("/agents/1/2"), Page::NotFound);
        assert_eq!(Page::of("/alerts"), Page::Alerts);
        assert_eq!(Page::of("/checks"), Page::Checks);
        assert_eq!(Page::of("/checks/7"), Page::Check(Some(7)));
        assert_eq!(Page::of("/checks/x"), Page::Check(None));
        assert_eq!(Page::of("/checks/7/8"), Page::NotFound);
        assert_eq!(Page::of("/nope"), Page::NotFound);
    }
}
