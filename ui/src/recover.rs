//! Recovery by itself: when the server cannot be reached, pages keep showing
//! their last data with a small "reconnecting…" note, ask again with a
//! growing delay (0.5 s, 1 s, 2 s … 8 s, with jitter so many tabs do not
//! knock in step), and at once when the tab becomes visible again or the
//! network comes back.

use leptos::prelude::*;

use crate::api::ApiError;

/// The longest wait between two attempts while the server is away.
pub const MAX_DELAY_MS: u64 = 8_000;

/// The wait before attempt `failures` (1 for the first retry), given a
/// random `jitter` in `[0, 1)`: half the exponential step plus a random part
/// of the other half, capped at [`MAX_DELAY_MS`].
pub fn backoff_ms(failures: u32, jitter: f64) -> u64 {
    let step = (500u64 << failures.saturating_sub(1).min(5)).min(MAX_DELAY_MS);
    let half = step / 2;
    half + (half as f64 * jitter.clamp(0.0, 1.0)) as u64
}

/// Asks `resource` again by itself while its answer is a [`transient`]
/// failure, and returns whether it is reconnecting right now.
///
/// [`transient`]: ApiError::transient
pub fn keep_trying<T: 'static>(resource: LocalResource<Result<T, ApiError>>) -> Signal<bool> {
    let reconnecting = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    {
        use std::time::Duration;
        let failures = StoredValue::new(0u32);
        let pending = StoredValue::new_local(None::<TimeoutHandle>);
        let clear = move || {
            if let Some(t) = pending.try_update_value(|p| p.take()).flatten() {
                t.clear();
            }
        };
        Effect::new(move |_| {
            let transient = resource.with(|r| match r {
                Some(Err(e)) => Some(e.transient()),
                Some(Ok(_)) => Some(false),
                None => None,
            });
            match transient {
                None => {}
                Some(true) => {
                    reconnecting.set(true);
                    let n = failures.try_update_value(|f| {
                        *f = f.saturating_add(1);
                        *f
                    });
                    let delay = backoff_ms(n.unwrap_or(1), js_sys::Math::random());
                    clear();
                    let handle = set_timeout_with_handle(
                        move || resource.refetch(),
                        Duration::from_millis(delay),
                    )
                    .ok();
                    pending.set_value(handle);
                }
                Some(false) => {
                    failures.set_value(0);
                    reconnecting.set(false);
                }
            }
        });
        on_wake(move || {
            if reconnecting.get_untracked() {
                clear();
                resource.refetch();
            }
        });
        on_cleanup(clear);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = resource;
    reconnecting.into()
}

/// Calls `f` when the tab becomes visible again or the browser goes back
/// online, for as long as the calling component lives.
#[cfg(feature = "hydrate")]
pub fn on_wake(f: impl Fn() + 'static) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::Closure;
    let Some(window) = web_sys::window() else {
        return;
    };
    let Some(document) = window.document() else {
        return;
    };
    let callback = Closure::<dyn Fn()>::new({
        let document = document.clone();
        move || {
            if !document.hidden() {
                f();
            }
        }
    });
    let js: js_sys::Function = callback
        .as_ref()
        .unchecked_ref::<js_sys::Function>()
        .clone();
    let _ = document.add_event_listener_with_callback("visibilitychange", &js);
    let _ = window.add_event_listener_with_callback("online", &js);
    let kept = StoredValue::new_local(Some(callback));
    on_cleanup(move || {
        let _ = document.remove_event_listener_with_callback("visibilitychange", &js);
        let _ = window.remove_event_listener_with_callback("online", &js);
        kept.set_value(None);
    });
}

/// The small note shown while a page waits for the server to come back.
#[component]
pub fn Reconnecting(#[prop(into)] when: Signal<bool>) -> impl IntoView {
    move || {
        when.get().then(|| {
            view! {
                <p class="reconnecting" role="status">
                    <span class="dot" aria-hidden="true"></span>
                    "Reconnecting… showing the last data"
                </p>
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_spread() {
        assert_eq!(backoff_ms(1, 0.0), 250);
        assert_eq!(backoff_ms(1, 0.999), 499);
        assert_eq!(backoff_ms(2, 0.0), 500);
        assert_eq!(backoff_ms(4, 0.0), 2_000);
        assert_eq!(backoff_ms(5, 0.0), 4_000);
        assert_eq!(backoff_ms(50, 0.0), 4_000);
        assert!(backoff_ms(50, 0.99) < MAX_DELAY_MS);
        assert!(backoff_ms(0, 0.5) <= 500);
    }
}
