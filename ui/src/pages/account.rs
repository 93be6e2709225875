//! placeholder

use leptos::prelude::*;

#[component]
pub fn AccountPage() -> impl IntoView {
    view! { <p>"soon"</p> }
}
