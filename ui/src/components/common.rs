//! Small pieces shared by pages: the hydration flag, a ticking clock, error
//! messages, status badges and gauges.

use leptos::prelude::*;

use crate::api::{AgentInfo, ApiError, TokenState};

/// Sets the document title once the page runs in the browser (the server
/// renders "StatusMonitor"). Cheaper in the bundle than `leptos_meta`.
#[component]
pub fn Title(#[prop(into)] text: TextProp) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let title = text.get();
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            doc.set_title(&title);
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}

/// `false` in the server-rendered HTML, `true` once the wasm has taken over.
/// Forms keep their submit buttons disabled until then, so nothing is sent
/// the browser's own way (which would put a password in a URL).
pub fn use_hydrated() -> ReadSignal<bool> {
    let (ready, set_ready) = signal(false);
    Effect::new(move |_| set_ready.set(true));
    ready
}

/// The browser clock in milliseconds, ticking every `every_ms` (0 on the server).
pub fn use_now(every_ms: u64) -> ReadSignal<i64> {
    let (now, set_now) = signal(crate::format::now_ms());
    #[cfg(feature = "hydrate")]
    {
        Effect::new(move |_| set_now.set(crate::format::now_ms()));
        if let Ok(handle) = set_interval_with_handle(
            move || set_now.set(crate::format::now_ms()),
            std::time::Duration::from_millis(every_ms),
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (set_now, every_ms);
    now
}

/// A failed request, said plainly, with an optional retry.
#[component]
pub fn ErrorNote(
    /// What was being done, e.g. "Loading your agents".
    what: &'static str,
    error: ApiError,
    #[prop(optional, into)] retry: Option<Callback<()>>,
) -> impl IntoView {
    view! {
        <div class="note error-note" role="alert">
            <strong>{what} " failed: "</strong>
            <span>{error.to_string()}</span>
            {retry.map(|retry| view! {
                <button type="button" class="button secondary small" on:click=move |_| retry.run(())>
                    "Try again"
                </button>
            })}
        </div>
    }
}

/// What is wrong with a form: the field it is about (`None`: the form as a
/// whole) and a sentence. Set on a failed attempt, cleared on the next.
pub type Problem = RwSignal<Option<(Option<&'static str>, String)>>;

/// `problem`'s sentence when it is about `field`, right under that field.
pub fn field_error(problem: Problem, field: &'static str, id: &'static str) -> impl IntoView {
    move || {
        problem.with(|p| match p {
            Some((Some(f), text)) if *f == field => Some(
                view! { <span class="error field-error" role="alert" id=id>{text.clone()}</span> },
            ),
            _ => None,
        })
    }
}

/// An API refusal as a form's problem: next to the field it names (mapped
/// to the form's own by `fields`) in a sentence, else about the whole form.
pub fn api_problem(
    e: &ApiError,
    fields: fn(&str) -> Option<&'static str>,
) -> (Option<&'static str>, String) {
    // `field: …`, or `field must …` as some refusals read.
    let first_word = || {
        matches!(e.status, 400 | 422)
            .then(|| e.message.split(' ').next())
            .flatten()
    };
    match e.field().or_else(first_word).and_then(fields) {
        Some(f) => (Some(f), e.sentence()),
        None => (None, e.to_string()),
    }
}

/// What the status badge of an agent says.
pub fn agent_status(agent: &AgentInfo) -> (&'static str, &'static str) {
    match (agent.token_state, agent.online) {
        (_, true) => ("online", "Online"),
        (TokenState::Pending, false) => ("pending", "Waiting for agent"),
        (TokenState::Expired, false) => ("expired", "Token expired"),
        (TokenState::Active, false) => ("offline", "Offline"),
    }
}

#[component]
pub fn StatusBadge(class: &'static str, text: &'static str) -> impl IntoView {
    view! {
        <span class=format!("badge badge-{class}") data-status=class>
            <span class="dot" aria-hidden="true"></span>
            {text}
        </span>
    }
}

/// The class that gives a bar its width, in 2 % steps (`w-36`). A class,
/// not a `style` attribute, so a strict Content-Security-Policy holds.
pub fn width_class(pct: f64) -> String {
    let p = if pct.is_finite() {
        pct.clamp(0.0, 100.0)
    } else {
        0.0
    };
    format!("w-{}", ((p / 2.0).round() as u32) * 2)
}

/// A horizontal gauge: label, bar and value. `pct` is `None` while unknown.
/// Static: a parent re-renders it when its values change, which keeps the
/// bundle small (one reactive closure per card, not one per number).
#[component]
pub fn Gauge(label: String, pct: Option<f64>, detail: String) -> impl IntoView {
    let level = match pct {
        Some(p) if p >= 90.0 => "bad",
        Some(p) if p >= 75.0 => "warn",
        _ => "",
    };
    let class = format!("gauge-bar {level} {}", width_class(pct.unwrap_or(0.0)));
    view! {
        <div class="gauge">
            <div class="gauge-head">
                <span class="gauge-label">{label.clone()}</span>
                <span class="gauge-value">{detail}</span>
            </div>
            <div
                class="gauge-track"
                // A meter only once there is a value (a meter needs one).
                role=pct.map(|_| "meter")
                aria-label=pct.map(|_| label)
                aria-valuemin=pct.map(|_| "0")
                aria-valuemax=pct.map(|_| "100")
                aria-valuenow=pct.map(|p| format!("{p:.0}"))
            >
                <div class=class></div>
            </div>
        </div>
    }
}
