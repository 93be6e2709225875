//! The frame around every page: header with navigation, main area, footer.

use leptos::prelude::*;
use leptos_router::components::A;

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
                <A href="/status">"Server status"</A>
            </nav>
        </header>
        <main id="main" class="page">{children()}</main>
        <footer class="footer">"StatusMonitor — self-hosted server monitoring"</footer>
    }
}
