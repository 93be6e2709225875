//! Server status: asks `/api/health` from the browser. The button only works
//! once the page is hydrated, which is what the end-to-end test checks.

use crate::components::common::Title;
use leptos::either::EitherOf3;
use leptos::prelude::*;
use storage::model::Health;

use crate::api;

#[component]
pub fn StatusPage() -> impl IntoView {
    let check = Action::new_local(|_: &()| api::get_json::<Health>("/api/health"));
    let pending = check.pending();
    let result = check.value();

    view! {
        <Title text="Server status · StatusMonitor" />
        <section class="card">
            <h1>"Server status"</h1>
            <p>"Ask the server how it is doing. The answer comes from " <code>"/api/health"</code> "."</p>
            <button
                class="button"
                id="check-health"
                on:click=move |_| {
                    check.dispatch(());
                }
                disabled=move || pending.get()
            >
                {move || if pending.get() { "Checking…" } else { "Check now" }}
            </button>
            <div id="health-result" class="result" aria-live="polite">
                {move || match result.get() {
                    None => EitherOf3::A(view! { <p class="muted">"Not checked yet."</p> }),
                    Some(Ok(h)) => EitherOf3::B(view! {
                        <dl class="facts">
                            <dt>"Status"</dt><dd class="status-ok" data-status=h.status.clone()>{h.status.clone()}</dd>
                            <dt>"Version"</dt><dd id="health-version">{h.version.clone()}</dd>
                            <dt>"Storage"</dt><dd>{h.storage.status.clone()}</dd>
                            <dt>"Data directory"</dt><dd><code>{h.storage.data_dir.clone()}</code></dd>
                            <dt>"Up for"</dt><dd>{format!("{} s", h.uptime_s)}</dd>
                        </dl>
                    }),
                    Some(Err(e)) => EitherOf3::C(view! { <p class="error" role="alert">{e.to_string()}</p> }),
                }}
            </div>
        </section>
    }
}
