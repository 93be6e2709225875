//! Where notifications go: the caller's channels (a list with each one's
//! last outcome, "Send test", edit, delete) and one form for every kind,
//! drawn from the kind's field list (`storage::model::fields_of`, the same
//! list the server checks); quiet hours and mute; and, for the admin, the
//! server's Telegram bot token. Secrets are never shown back: their fields
//! say "set · type to replace".

use std::collections::BTreeMap;

use leptos::either::{Either, EitherOf4};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;

use crate::api::{
    self, ApiError, CHANNEL_KINDS, ChannelRequest, DeliveryStatus, NotifyChannel, NotifySettings,
    QuietHours, TelegramSettings, fields_of,
};
use crate::components::common::{ErrorNote, use_hydrated};
use crate::format;

/// The caller's channels, loaded once by the page and shared with the
/// rule form's picker.
pub(super) type Channels = LocalResource<Result<Vec<NotifyChannel>, ApiError>>;

/// One operation on the channels (one action for all).
#[derive(Debug, Clone)]
enum ChannelOp {
    Save(Option<u64>, ChannelRequest),
    Delete(u64),
}

/// The field an API refusal names (`config.topic: …` → `topic`) and its
/// sentence.
fn refusal(e: &ApiError) -> (Option<String>, String) {
    if matches!(e.status, 400 | 422)
        && let Some((field, why)) = e.message.split_once(": ")
        && !field.contains(' ')
    {
        let field = field.strip_prefix("config.").unwrap_or(field);
        return (Some(field.to_string()), capital(why));
    }
    (None, e.to_string())
}

fn capital(s: &str) -> String {
    let mut out = s.to_string();
    if let Some(first) = out.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    out
}

#[component]
pub(super) fn NotificationsCard(channels: Channels) -> impl IntoView {
    let ready = use_hydrated();
    // `Some(None)`: adding; `Some(Some(id))`: editing `id`.
    let editing = RwSignal::new(None::<Option<u64>>);
    let kind = RwSignal::new("ntfy".to_string());
    let name = RwSignal::new(String::new());
    let default = RwSignal::new(true);
    let values = RwSignal::new(BTreeMap::<String, String>::new());
    let secrets_set = RwSignal::new(Vec::<String>::new());
    let problem = RwSignal::new(None::<(Option<String>, String)>);
    let op = Action::new_local(|op: &ChannelOp| {
        let op = op.clone();
        async move {
            match op {
                ChannelOp::Save(None, r) => api::create_channel(&r).await.map(|_| ()),
                ChannelOp::Save(Some(id), r) => api::update_channel(id, &r).await.map(|_| ()),
                ChannelOp::Delete(id) => api::delete_channel(id).await,
            }
        }
    });
    Effect::new(move |_| match op.value().get() {
        Some(Ok(())) => {
            editing.set(None);
            problem.set(None);
            channels.refetch();
        }
        Some(Err(e)) => problem.set(Some(refusal(&e))),
        None => {}
    });
    let test = Action::new_local(|id: &u64| {
        let id = *id;
        async move { (id, api::test_channel(id).await) }
    });
    Effect::new(move |_| {
        if test.value().with(Option::is_some) {
            channels.refetch();
        }
    });
    let open = move |c: Option<&NotifyChannel>| {
        editing.set(Some(c.map(|c| c.id)));
        kind.set(c.map_or("ntfy", |c| c.kind.as_str()).to_string());
        name.set(c.map(|c| c.name.clone()).unwrap_or_default());
        default.set(c.is_none_or(|c| c.default));
        values.set(c.map(|c| c.config.clone()).unwrap_or_default());
        secrets_set.set(
            c.map(|c| {
                c.secrets
                    .iter()
                    .filter(|(_, s)| s.set)
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default(),
        );
        problem.set(None);
    };
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let Some(target) = editing.get_untracked() else {
            return;
        };
        let Some(k) = api::Channel::parse(&kind.get_untracked()) else {
            return;
        };
        let typed = values.get_untracked();
        let mut config = BTreeMap::new();
        for f in fields_of(k) {
            let v = typed.get(f.name).cloned().unwrap_or_default();
            // An empty secret keeps what is stored.
            if !(f.secret && v.is_empty()) {
                config.insert(f.name.to_string(), v);
            }
        }
        op.dispatch(ChannelOp::Save(
            target,
            ChannelRequest {
                name: Some(name.get_untracked()),
                kind: target.is_none().then(|| k.as_str().to_string()),
                default: Some(default.get_untracked()),
                config: Some(config),
            },
        ));
    };
    let field_error = move |field: &'static str| {
        move || {
            problem.with(|p| match p {
                Some((Some(f), text)) if f == field => Some(
                    view! { <span class="error field-error" role="alert">{text.clone()}</span> },
                ),
                _ => None,
            })
        }
    };
    view! {
        <section class="card" aria-labelledby="channels-title">
            <div class="card-head">
                <h2 class="card-title" id="channels-title">"Notifications"</h2>
                <button type="button" class="button small" id="new-channel" disabled=move || !ready.get()
                    on:click=move |_| open(None)>"Add channel"</button>
            </div>
            <form class="rule-form" id="channel-form" novalidate hidden=move || editing.get().is_none()
                on:submit=on_submit>
                <div class="form-grid">
                    <label>"Kind"
                        <select id="channel-kind" prop:value=move || kind.get()
                            disabled=move || matches!(editing.get(), Some(Some(_)))
                            on:change=move |ev| kind.set(event_target_value(&ev))>
                            {CHANNEL_KINDS.into_iter().map(|k| view! {
                                <option value=k.as_str()>{k.title()}</option>
                            }).collect_view()}
                        </select>
                        {field_error("kind")}
                    </label>
                    <label>"Name"
                        <input id="channel-name" maxlength="64" bind:value=name placeholder="phone" />
                        {field_error("name")}
                    </label>
                    {move || {
                        let k = api::Channel::parse(&kind.get()).unwrap_or(api::Channel::Ntfy);
                        fields_of(k).iter().map(|f| {
                            let n = f.name;
                            let set = secrets_set.with(|s| s.iter().any(|x| x == n));
                            let placeholder = if f.secret && set { "set · type to replace" } else { f.hint };
                            view! {
                                <label>{f.label}{if f.required { "" } else { " (optional)" }}
                                    <input id=format!("channel-{n}") name=n
                                        type=if f.secret { "password" } else { "text" }
                                        autocomplete="off" placeholder=placeholder
                                        prop:value=move || values.with(|v| v.get(n).cloned().unwrap_or_default())
                                        on:input=move |ev| values.update(|v| { v.insert(n.to_string(), event_target_value(&ev)); }) />
                                    {field_error(n)}
                                </label>
                            }
                        }).collect_view()
                    }}
                    <label class="check">
                        <input type="checkbox" id="channel-default" bind:checked=default />
                        "Default (rules that name no channel)"
                    </label>
                </div>
                <div class="form-error" aria-live="polite">
                    {move || problem.get().and_then(|(f, p)| f.is_none().then(|| view! { <p class="error" role="alert">{p}</p> }))}
                </div>
                <div class="form-actions">
                    <button class="button" type="submit" id="save-channel" disabled=move || op.pending().get()>"Save channel"</button>
                    <button class="button secondary" type="button" on:click=move |_| editing.set(None)>"Cancel"</button>
                </div>
            </form>
            <div id="channels">
                {move || match channels.get() {
                    None => EitherOf4::A(()),
                    Some(Err(e)) => EitherOf4::B(view! {
                        <ErrorNote what="Loading your channels" error=e retry=Callback::new(move |_| channels.refetch()) />
                    }),
                    Some(Ok(list)) if list.is_empty() => EitherOf4::C(view! {
                        <p class="empty" id="channels-empty">"No channels yet: alerts are only kept in the history."</p>
                    }),
                    Some(Ok(list)) => EitherOf4::D(view! { <ul class="plain-list">{list.into_iter().map(|c| {
                        let id = c.id;
                        let health = if c.health.failing {
                            ("error", format!("failing: {}", c.health.last_error.clone().unwrap_or_default()))
                        } else if let Some(t) = c.health.last_ok_ms {
                            ("ok-text", format!("last sent {}", format::datetime(t)))
                        } else {
                            ("muted", "not used yet".to_string())
                        };
                        let stored = StoredValue::new(c.clone());
                        view! {
                            <li class="channel-row" data-channel=id.to_string()>
                                <strong>{c.name.clone()}</strong>
                                " · " {c.kind.title()} {c.default.then_some(" · default")}
                                " · " <span class=health.0>{health.1}</span>
                                " "
                                <button type="button" class="button secondary small action-test"
                                    disabled=move || test.pending().get()
                                    on:click=move |_| { test.dispatch(id); }>"Send test"</button>
                                <button type="button" class="button secondary small action-edit"
                                    on:click=move |_| stored.with_value(|c| open(Some(c)))>"Edit"</button>
                                <button type="button" class="button secondary small action-delete"
                                    disabled=move || op.pending().get()
                                    on:click=move |_| { op.dispatch(ChannelOp::Delete(id)); }>"Delete"</button>
                                {move || test.value().get().filter(|(t, _)| *t == id).map(|(_, r)| match r {
                                    Ok(r) => Either::Left(view! {
                                        <span class=if r.sent { "ok-text test-result" } else { "error test-result" }>
                                            {match r.error { None => " Test sent.".to_string(), Some(e) => format!(" Test failed: {e}") }}
                                        </span>
                                    }),
                                    Err(e) => Either::Right(view! { <ErrorNote what="Sending the test" error=e /> }),
                                })}
                            </li>
                        }
                    }).collect_view()}</ul> }),
                }}
            </div>
            <QuietHoursForm />
            <TelegramTokenForm />
        </section>
    }
}

/// Quiet hours and mute.
#[component]
fn QuietHoursForm() -> impl IntoView {
    let current = LocalResource::new(api::notify_settings);
    let start = RwSignal::new(String::new());
    let end = RwSignal::new(String::new());
    let zone = RwSignal::new(String::new());
    let mute_hours = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(s)) = current.get() {
            let q = s.quiet_hours.unwrap_or(QuietHours {
                start: String::new(),
                end: String::new(),
                time_zone: String::new(),
            });
            start.set(q.start);
            end.set(q.end);
            zone.set(q.time_zone);
        }
    });
    let save = Action::new_local(|s: &NotifySettings| {
        let s = s.clone();
        async move { api::set_notify_settings(&s).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            current.refetch();
        }
    });
    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let (s, e, z) = (
            start.get_untracked(),
            end.get_untracked(),
            zone.get_untracked(),
        );
        let hours: f64 = mute_hours.get_untracked().trim().parse().unwrap_or(0.0);
        save.dispatch(NotifySettings {
            quiet_hours: (!s.trim().is_empty()).then(|| QuietHours {
                start: s.trim().to_string(),
                end: e.trim().to_string(),
                time_zone: z.trim().to_string(),
            }),
            mute_until_ms: (hours > 0.0).then(|| format::now_ms() + (hours * 3_600_000.0) as i64),
        });
    };
    view! {
        <form class="rule-form" id="quiet-form" on:submit=on_submit novalidate>
            <h3 class="section-title">"Quiet hours and mute"</h3>
            <div class="form-grid">
                <label>"Quiet from (HH:MM; empty: none)"<input id="quiet-start" bind:value=start placeholder="23:00" /></label>
                <label>"Until"<input id="quiet-end" bind:value=end placeholder="07:00" /></label>
                <label>"Time zone"<input id="quiet-zone" bind:value=zone placeholder="Europe/Berlin" /></label>
                <label>"Mute everything for (hours; empty: no)"<input id="mute-hours" inputmode="decimal" bind:value=mute_hours /></label>
            </div>
            <p class="muted small" id="quiet-note">
                "During quiet hours only rules marked urgent notify; the rest arrive as one summary when they end. "
                {move || current.get().and_then(|r| r.ok()).and_then(|s| s.mute_until_ms)
                    .filter(|t| *t > format::now_ms())
                    .map(|t| format!("Muted until {}.", format::datetime(t)))}
            </p>
            <div class="form-actions">
                <button class="button secondary" type="submit" id="save-quiet" disabled=move || save.pending().get()>"Save"</button>
                {move || match save.value().get() {
                    Some(Ok(_)) => Some(Either::Left(view! { <span class="ok-text">"Saved."</span> })),
                    Some(Err(e)) => Some(Either::Right(view! { <ErrorNote what="Saving" error=e /> })),
                    None => None,
                }}
            </div>
        </form>
    }
}

/// The admin's Telegram bot token (hidden for other accounts: the server
/// answers them 403).
#[component]
fn TelegramTokenForm() -> impl IntoView {
    let current = LocalResource::new(api::telegram_settings);
    let token = RwSignal::new(String::new());
    let save = Action::new_local(|t: &String| {
        let t = t.clone();
        async move {
            api::set_telegram_settings(&TelegramSettings {
                bot_token: Some(t),
                ..Default::default()
            })
            .await
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            token.set(String::new());
            current.refetch();
        }
    });
    move || {
        current.get().and_then(|r| r.ok()).map(|s| {
            let placeholder = if s.token_set {
                "set · type to replace"
            } else if s.config_token_set {
                "from the server's configuration"
            } else {
                "123456789:AAE…"
            };
            view! {
                <form class="rule-form" id="telegram-form" novalidate
                    on:submit=move |ev: SubmitEvent| { ev.prevent_default(); save.dispatch(token.get_untracked()); }>
                    <h3 class="section-title">"Telegram bot (admin)"</h3>
                    <label>"Bot token from @BotFather, the default of every Telegram channel"
                        <input id="telegram-token" type="password" autocomplete="off" bind:value=token placeholder=placeholder />
                    </label>
                    <div class="form-actions">
                        <button class="button secondary" type="submit" id="save-telegram">"Save token"</button>
                        {move || save.value().get().map(|r| match r {
                            Ok(_) => Either::Left(view! { <span class="ok-text">"Saved."</span> }),
                            Err(e) => Either::Right(view! { <ErrorNote what="Saving the token" error=e /> }),
                        })}
                    </div>
                </form>
            }
        })
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
        DeliveryStatus::Skipped => "skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_lands_on_its_field_in_words() {
        let e = ApiError {
            status: 422,
            message: "config.topic: letters, digits, - and _ (at most 64)".into(),
        };
        assert_eq!(
            refusal(&e),
            (
                Some("topic".into()),
                "Letters, digits, - and _ (at most 64)".into()
            )
        );
        let e = ApiError {
            status: 422,
            message: "name: required".into(),
        };
        assert_eq!(refusal(&e).0.as_deref(), Some("name"));
        let e = ApiError {
            status: 500,
            message: "internal error: x".into(),
        };
        assert_eq!(refusal(&e).0, None);
    }

    #[test]
    fn every_kind_has_a_form() {
        for k in CHANNEL_KINDS {
            assert!(fields_of(k).iter().any(|f| f.required), "{}", k.as_str());
            assert_eq!(api::Channel::parse(k.as_str()), Some(k));
        }
    }
}
