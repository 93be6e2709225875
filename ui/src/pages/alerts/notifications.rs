//! Where notifications go: the Telegram chat and webhook, with "send test".

use leptos::either::Either;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;

use crate::api::{self, DeliveryStatus, UpdateRecipientRequest};
use crate::components::common::{ErrorNote, use_hydrated};

#[component]
pub(super) fn RecipientCard() -> impl IntoView {
    let ready = use_hydrated();
    let current = LocalResource::new(api::recipient);
    let chat = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(r)) = current.get() {
            chat.set(r.telegram_chat_id.unwrap_or_default());
            url.set(r.webhook_url.unwrap_or_default());
            secret.set(String::new());
        }
    });
    let save = Action::new_local(move |change: &UpdateRecipientRequest| {
        let change = change.clone();
        async move { api::set_recipient(&change).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            current.refetch();
        }
    });
    let test = Action::new_local(|_: &()| api::test_recipient());
    let on_save = move |ev: SubmitEvent| {
        ev.prevent_default();
        let secret_text = secret.get_untracked();
        save.dispatch(UpdateRecipientRequest {
            telegram_chat_id: Some(chat.get_untracked().trim().to_string()),
            webhook_url: Some(url.get_untracked().trim().to_string()),
            // Empty keeps the stored secret; "Remove secret" clears it.
            webhook_secret: (!secret_text.is_empty()).then_some(secret_text),
        });
    };
    let loaded = move || current.get().and_then(|r| r.ok());
    view! {
        <section class="card" aria-labelledby="recipient-title">
            <h2 class="card-title" id="recipient-title">"Notifications"</h2>
            {move || match current.get() {
                Some(Err(e)) => Some(view! {
                    <ErrorNote what="Loading your notification settings" error=e retry=Callback::new(move |_| current.refetch()) />
                }),
                _ => None,
            }}
            <form class="rule-form" id="recipient-form" on:submit=on_save>
                <div class="form-grid">
                    <label>"Telegram chat id"
                        <input id="telegram-chat" bind:value=chat placeholder="123456789" maxlength="64" />
                        <span class="muted small" id="telegram-note">{move || match loaded() {
                            Some(r) if !r.telegram_configured => "The server has no Telegram bot token: Telegram messages are skipped (see README, Alerts).",
                            Some(_) => "Send /start to the bot, then put your chat id here.",
                            None => "\u{a0}",
                        }}</span>
                    </label>
                    <label>"Webhook URL"
                        <input id="webhook-url" type="url" bind:value=url placeholder="https://example.com/hook" maxlength="2048" />
                    </label>
                    <label>"Webhook secret (HMAC-SHA256 signature)"
                        <input id="webhook-secret" type="password" autocomplete="new-password" bind:value=secret
                            placeholder=move || if loaded().is_some_and(|r| r.webhook_secret_set) { "set · type to replace" } else { "none" } />
                    </label>
                </div>
                <div class="form-actions">
                    <button class="button" type="submit" id="save-recipient"
                        disabled=move || !ready.get() || save.pending().get()>"Save"</button>
                    <button class="button secondary" type="button" id="send-test"
                        disabled=move || !ready.get() || test.pending().get()
                        on:click=move |_| { test.dispatch(()); }>
                        {move || if test.pending().get() { "Sending…" } else { "Send test" }}
                    </button>
                    {move || loaded().filter(|r| r.webhook_secret_set).map(|_| view! {
                        <button class="link-button" type="button" id="remove-secret"
                            on:click=move |_| { save.dispatch(UpdateRecipientRequest { webhook_secret: Some(String::new()), ..Default::default() }); }>
                            "Remove secret"
                        </button>
                    })}
                </div>
                <div class="form-error" aria-live="polite" id="recipient-result">
                    {move || match save.value().get() {
                        Some(Ok(_)) => Some(Either::Left(view! { <p class="ok-text">"Saved."</p> })),
                        Some(Err(e)) => Some(Either::Right(view! { <ErrorNote what="Saving" error=e /> })),
                        None => None,
                    }}
                    {move || match test.value().get() {
                        Some(Ok(r)) => Some(Either::Left(view! {
                            <ul class="plain-list" id="test-results">
                                {r.results.into_iter().map(|d| {
                                    let ok = d.status == DeliveryStatus::Sent;
                                    view! {
                                        <li class=if ok { "ok-text" } else { "error" }>
                                            {format!("{}: {}", channel_name(d.channel), status_name(d.status))}
                                            {d.error.map(|e| format!(" — {e}"))}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        })),
                        Some(Err(e)) => Some(Either::Right(view! { <ErrorNote what="Sending the test" error=e /> })),
                        None => None,
                    }}
                </div>
            </form>
        </section>
    }
}

pub(super) fn channel_name(c: api::Channel) -> &'static str {
    c.title()
}

pub(super) fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Pending => "sending",
        DeliveryStatus::Skipped => "not configured",
    }
}
