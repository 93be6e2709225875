//! The landing page.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="Overview · StatusMonitor" />
        <section class="hero">
            <h1>"Your servers, at a glance"</h1>
            <p class="lead">
                "StatusMonitor collects CPU, memory, disk and network metrics from a small agent on each machine, "
                "shows them live and as history, and tells you on Telegram when something crosses a line."
            </p>
            <p>
                <a class="button" href="/status">"Check the server"</a>
            </p>
        </section>
    }
}
