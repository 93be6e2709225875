//! Alerts: rules, notification settings, history.

use leptos::prelude::*;

#[component]
pub fn AlertsPage() -> impl IntoView {
    view! { <section class="card"><h1>"Alerts"</h1></section> }
}
