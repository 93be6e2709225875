//! The Account page's two-factor card: set it up with a QR code (drawn by
//! the server) and a first code, see the recovery codes once, turn it off.

use leptos::either::EitherOf3;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;

use crate::api;
use crate::components::common::{ErrorNote, use_hydrated};

/// What the card asks the server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Enrol,
    Confirm(String),
    Off(String),
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
enum Done {
    Enrolled(api::TwoFactorEnrolment),
    Codes(Vec<String>),
    Off,
}

#[component]
pub fn TwoFactorCard() -> impl IntoView {
    let ready = use_hydrated();
    let status = LocalResource::new(api::two_factor);
    let code = RwSignal::new(String::new());
    let step = Action::new_local(move |s: &Step| {
        let s = s.clone();
        async move {
            match s {
                Step::Enrol => api::enrol_two_factor().await.map(Done::Enrolled),
                Step::Confirm(c) => api::confirm_two_factor(c)
                    .await
                    .map(|r| Done::Codes(r.recovery_codes)),
                Step::Off(c) => api::turn_off_two_factor(c).await.map(|_| Done::Off),
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(Done::Codes(_) | Done::Off)) = step.value().get() {
            code.set(String::new());
            status.refetch();
        }
    });
    let on = move || matches!(status.get(), Some(Ok(s)) if s.enabled);
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let c = code.get_untracked().trim().to_string();
        step.dispatch(if on() { Step::Off(c) } else { Step::Confirm(c) });
    };
    view! {
        <section class="card" aria-labelledby="tf-title">
            <h2 class="card-title" id="tf-title">"Two-factor log-in"</h2>
            <p class="muted" id="tf-status">{move || match status.get() {
                Some(Ok(s)) if s.enabled => format!("On: log-in asks for a code from your authenticator app. {} recovery codes left.", s.recovery_codes_left),
                Some(Ok(s)) if s.required => "Off, but this server requires it: set it up now.".to_string(),
                Some(Ok(_)) => "Off: log-in asks only for the password.".to_string(),
                _ => "\u{a0}".to_string(),
            }}</p>
            {move || match step.value().get() {
                Some(Ok(Done::Enrolled(e))) => Some(EitherOf3::A(view! {
                    <p>"Scan this with an authenticator app, or type the key, then enter the code it shows."</p>
                    <img id="tf-qr" src=e.qr_svg_path width="200" height="200" alt="QR code of the two-factor key" />
                    <p class="small">"Key: " <code id="tf-secret">{e.secret}</code></p>
                })),
                Some(Ok(Done::Codes(codes))) => Some(EitherOf3::B(view! {
                    <p>"Two-factor log-in is on. Keep these recovery codes somewhere safe: each works once, and they are shown only now."</p>
                    <ul id="tf-recovery" class="recovery-codes">
                        {codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}
                    </ul>
                })),
                Some(Err(e)) => Some(EitherOf3::C(view! { <ErrorNote what="Two-factor log-in" error=e /> })),
                _ => None,
            }}
            {move || (!on() && !matches!(step.value().get(), Some(Ok(Done::Enrolled(_))))).then(|| view! {
                <button type="button" class="button" id="tf-start"
                    disabled=move || !ready.get() || step.pending().get()
                    on:click=move |_| { step.dispatch(Step::Enrol); }>"Set up two-factor log-in"</button>
            })}
            {move || (on() || matches!(step.value().get(), Some(Ok(Done::Enrolled(_))))).then(|| view! {
                <form class="form" on:submit=submit>
                    <label for="tf-code">{move || if on() { "Code (or a recovery code) to turn it off" } else { "Code from the app" }}</label>
                    <input id="tf-code" autocomplete="one-time-code" required bind:value=code />
                    <button class="button" type="submit" id="tf-submit"
                        disabled=move || !ready.get() || step.pending().get()>
                        {move || if on() { "Turn off" } else { "Turn on" }}</button>
                </form>
            })}
        </section>
    }
}
