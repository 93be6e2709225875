//! A button that copies text to the clipboard and says so. Where the browser
//! has no clipboard API (plain http on a LAN address is not a secure context)
//! it says how to copy by hand instead. Its accessible name says the same as
//! its text ("Copy the token", then "Copied the token"), so a screen reader
//! hears what happened.

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Copied {
    Not,
    Yes,
    Failed,
}

#[component]
pub fn CopyButton(
    #[prop(into)] text: Signal<String>,
    /// What is copied, for the accessible name: "token", "command".
    what: &'static str,
    #[prop(optional)] id: &'static str,
) -> impl IntoView {
    let state = RwSignal::new(Copied::Not);
    let copy = move |_| {
        let value = text.get_untracked();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let ok = write_clipboard(&value).await;
            state.set(if ok { Copied::Yes } else { Copied::Failed });
            leptos::prelude::set_timeout(
                move || state.set(Copied::Not),
                std::time::Duration::from_millis(2500),
            );
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = value;
    };
    view! {
        <button
            type="button"
            class="button secondary small copy-button"
            id=(!id.is_empty()).then_some(id)
            aria-label=move || match state.get() {
                Copied::Not => format!("Copy the {what}"),
                Copied::Yes => format!("Copied the {what}"),
                Copied::Failed => format!("Could not copy the {what}: select it and copy by hand"),
            }
            on:click=copy
        >
            {move || match state.get() {
                Copied::Not => "Copy",
                Copied::Yes => "Copied ✓",
                Copied::Failed => "Select and copy by hand",
            }}
        </button>
    }
}

#[cfg(feature = "hydrate")]
async fn write_clipboard(text: &str) -> bool {
    use wasm_bindgen::JsValue;
    let Some(window) = web_sys::window() else {
        return false;
    };
    let navigator = window.navigator();
    let has = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard"))
        .map(|c| !c.is_undefined())
        .unwrap_or(false);
    if !has {
        return false;
    }
    wasm_bindgen_futures::JsFuture::from(navigator.clipboard().write_text(text))
        .await
        .is_ok()
}
