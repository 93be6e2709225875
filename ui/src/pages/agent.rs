//! placeholder

use leptos::prelude::*;

#[component]
pub fn AgentPage() -> impl IntoView {
    view! { <p>"soon"</p> }
}
