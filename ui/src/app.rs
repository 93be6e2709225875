//! The HTML shell, the router and the layout every page shares.

use leptos::prelude::*;
use leptos_router::{
    components::{FlatRoutes, Route, Router},
    path,
};

use crate::components::layout::Layout;
use crate::components::theme::{THEME_BOOT, provide_theme};
use crate::pages::{
    account::AccountPage,
    agent::AgentPage,
    agents::AgentsPage,
    home::HomePage,
    login::{LoginPage, RegisterPage},
    not_found::NotFound,
    status::StatusPage,
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
                <script>{THEME_BOOT}</script>
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

/// The app: routes inside the shared layout.
#[component]
pub fn App() -> impl IntoView {
    provide_theme();
    provide_session();
    view! {
        <Router>
            <Layout>
                <FlatRoutes fallback=NotFound>
                    <Route path=path!("/") view=HomePage />
                    <Route path=path!("/login") view=LoginPage />
                    <Route path=path!("/register") view=RegisterPage />
                    <Route path=path!("/agents") view=AgentsPage />
                    <Route path=path!("/agents/:id") view=AgentPage />
                    <Route path=path!("/account") view=AccountPage />
                    <Route path=path!("/status") view=StatusPage />
                </FlatRoutes>
            </Layout>
        </Router>
    }
}
