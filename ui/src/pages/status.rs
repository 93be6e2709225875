//! Server status: asks `/api/health` from the browser as soon as the page
//! runs (and again on "Check now"), and shows the storage figures: the
//! store's size by part, free space, series, compactor lag and the
//! remote-write backlog.

use crate::components::common::Title;
use leptos::either::EitherOf3;
use leptos::prelude::*;
use storage::model::Health;

use crate::api;
use crate::format;

#[component]
pub fn StatusPage() -> impl IntoView {
    let check = Action::new_local(|_: &()| api::get_json::<Health>("/api/health"));
    let pending = check.pending();
    let result = check.value();
    // On load: effects run only in the browser, once hydrated.
    Effect::new(move |_| {
        check.dispatch(());
    });

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
                            <dt>"Up for"</dt><dd>{format::duration_s(h.uptime_s)}</dd>
                            <dt>"Stored metrics"</dt><dd id="health-store-bytes">{
                                let b = h.storage.bytes;
                                let size = |v: u64| format::bytes(v as f64);
                                format!("{} (5 s {}, 1 min {}, 1 h {}, head {}, journal {}, index {})",
                                    size(b.total()), size(b.raw), size(b.minute), size(b.hour), size(b.head), size(b.journal), size(b.meta))
                            }</dd>
                            <dt>"Free space"</dt><dd id="health-free">{h.storage.free_bytes.map_or("unknown".into(), |f| format::bytes(f as f64))}</dd>
                            <dt>"Series"</dt><dd id="health-series">{h.storage.series}</dd>
                            <dt>"Compactor lag"</dt><dd>{format::duration_s(h.storage.compactor_lag_s)}</dd>
                            {h.remote_write.into_iter().map(|r| view! {
                                <dt>"Remote write"</dt>
                                <dd>{format!("{}: {}, {} batches ({}) queued, {} dropped", r.endpoint, r.status, r.queued_batches, format::bytes(r.queued_bytes as f64), r.dropped_batches)}</dd>
                            }).collect_view()}
                        </dl>
                    }),
                    Some(Err(e)) => EitherOf3::C(view! { <p class="error" role="alert">{e.to_string()}</p> }),
                }}
            </div>
        </section>
    }
}
