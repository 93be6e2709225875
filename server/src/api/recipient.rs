//! The caller's notification settings in the shape older clients know:
//! `GET/POST /api/recipient` and `POST /api/recipient/test`, mapped onto
//! channels: the Telegram chat id is the caller's first Telegram channel,
//! the webhook their first webhook channel (created as default channels
//! named "Telegram" and "Webhook" when set here, deleted when cleared).
//! The webhook secret is write-only. A webhook URL passes the [outbound
//! guard](crate::outbound) when it is saved (and again at every delivery);
//! "Send test" is rate-limited per account. New clients use
//! `/api/channels` ([`crate::api::channels`]).

use std::collections::BTreeMap;

use axum::extract::State;
use storage::catalog::{ChannelRecord, DeliveryRecord};
use storage::model::{
    Channel, Delivery, DeliveryStatus, MAX_CHANNELS_PER_USER, Recipient, RecipientTestResult,
    UpdateRecipientRequest,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::channels::check_chat_id;
use crate::api::quota::is_admin;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Json};
use crate::outbound::{Caller, UrlError};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, update))
        .routes(routes!(test))
}

const URL_MAX: usize = 2048;
const SECRET_MAX: usize = 256;

/// The caller's first Telegram and first webhook channel.
fn legacy(channels: &[ChannelRecord]) -> (Option<&ChannelRecord>, Option<&ChannelRecord>) {
    (
        channels.iter().find(|c| c.kind == Channel::Telegram),
        channels.iter().find(|c| c.kind == Channel::Webhook),
    )
}

fn view(state: &AppState, channels: &[ChannelRecord]) -> Recipient {
    let (tg, wh) = legacy(channels);
    Recipient {
        telegram_chat_id: tg.and_then(|c| c.field("chat_id")).map(str::to_string),
        webhook_url: wh.and_then(|c| c.field("url")).map(str::to_string),
        webhook_secret_set: wh.is_some_and(|c| c.field("secret").is_some()),
        telegram_configured: state.alerting.telegram_configured(),
    }
}

/// The normalised URL to store, or 422 saying why not.
async fn check_url(state: &AppState, text: &str, caller: Caller) -> ApiResult<String> {
    if text.len() > URL_MAX {
        return Err(ApiError::Invalid(format!(
            "webhook_url: at most {URL_MAX} bytes"
        )));
    }
    match state.outbound.check_url(text, caller).await {
        Ok(url) => Ok(url.into()),
        Err(e @ UrlError::Invalid) => Err(ApiError::Invalid(format!("webhook_url: {e}"))),
        Err(e @ UrlError::Refused(_)) => Err(ApiError::Invalid(format!(
            "webhook_url: {e}; only the admin may send webhooks there"
        ))),
    }
}

/// What to do with one legacy channel.
enum Change {
    Keep,
    Delete(u64),
    Put(ChannelRecord),
}

fn put(
    existing: Option<&ChannelRecord>,
    owner_id: u64,
    name: &str,
    kind: Channel,
    now: i64,
    set: impl FnOnce(&mut BTreeMap<String, String>),
) -> Change {
    let mut c = existing.cloned().unwrap_or(ChannelRecord {
        id: 0,
        owner_id,
        name: name.to_string(),
        kind,
        default: true,
        fields: BTreeMap::new(),
        created_ms: now,
        updated_ms: now,
    });
    set(&mut c.fields);
    c.updated_ms = now;
    Change::Put(c)
}

#[utoipa::path(
    get,
    path = "/api/recipient",
    operation_id = "getRecipient",
    tag = "alerts",
    summary = "Where your alerts are sent",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::Recipient), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody))
)]
async fn show(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<Recipient>> {
    let user_id = user.user_id;
    let channels = state.catalog(move |c| c.channels_of(user_id)).await?;
    Ok(Json(view(&state, &channels)))
}

#[utoipa::path(
    post,
    path = "/api/recipient",
    operation_id = "updateRecipient",
    tag = "alerts",
    summary = "Set where your alerts are sent",
    request_body = storage::model::UpdateRecipientRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::Recipient), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<UpdateRecipientRequest>,
) -> ApiResult<Json<Recipient>> {
    let user_id = user.user_id;
    let channels = state.catalog(move |c| c.channels_of(user_id)).await?;
    let (tg, wh) = legacy(&channels);
    let now = state.clock.now_ms();
    // Everything is checked before anything is written.
    let telegram = match req.telegram_chat_id.as_deref().map(str::trim) {
        None => Change::Keep,
        Some("") => tg.map_or(Change::Keep, |c| Change::Delete(c.id)),
        Some(chat) => {
            check_chat_id("telegram_chat_id", chat)?;
            put(tg, user_id, "Telegram", Channel::Telegram, now, |f| {
                f.insert("chat_id".into(), chat.to_string());
            })
        }
    };
    if let Some(secret) = &req.webhook_secret
        && secret.len() > SECRET_MAX
    {
        return Err(ApiError::Invalid(format!(
            "webhook_secret: at most {SECRET_MAX} bytes"
        )));
    }
    let url = match req.webhook_url.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(url) => {
            let caller = Caller::of(is_admin(&state, user_id).await?);
            Some(Some(check_url(&state, url, caller).await?))
        }
    };
    let webhook = match (url, &req.webhook_secret) {
        (Some(None), _) => wh.map_or(Change::Keep, |c| Change::Delete(c.id)),
        (None, None) => Change::Keep,
        (None, Some(_)) if wh.is_none() => {
            return Err(ApiError::Invalid(
                "webhook_secret: set a webhook_url first".into(),
            ));
        }
        (url, secret) => put(wh, user_id, "Webhook", Channel::Webhook, now, |f| {
            if let Some(Some(url)) = url {
                f.insert("url".into(), url);
            }
            match secret.as_deref() {
                Some("") => {
                    f.remove("secret");
                }
                Some(s) => {
                    f.insert("secret".into(), s.to_string());
                }
                None => {}
            }
        }),
    };
    state
        .catalog(move |c| {
            for change in [telegram, webhook] {
                match change {
                    Change::Keep => {}
                    Change::Delete(id) => {
                        c.delete_channel(user_id, id)?;
                    }
                    Change::Put(ch) if ch.id == 0 => {
                        // The legacy API adds at most two channels; the
                        // limit applies as for any other.
                        c.create_channel(&ch, MAX_CHANNELS_PER_USER)?;
                    }
                    Change::Put(ch) => {
                        c.update_channel(&ch)?;
                    }
                }
            }
            Ok(())
        })
        .await?;
    let channels = state.catalog(move |c| c.channels_of(user_id)).await?;
    Ok(Json(view(&state, &channels)))
}

#[utoipa::path(
    post,
    path = "/api/recipient/test",
    operation_id = "testRecipient",
    tag = "alerts",
    summary = "Send a test message to each configured channel",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::RecipientTestResult), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 429, description = "Too many test messages; see Retry-After", body = storage::model::ErrorBody))
)]
async fn test(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<RecipientTestResult>> {
    let user_id = user.user_id;
    state.quota.check_send_test(user_id)?;
    let channels = state.catalog(move |c| c.channels_of(user_id)).await?;
    let caller = Caller::of(is_admin(&state, user_id).await?);
    let (tg, wh) = legacy(&channels);
    let mut results = Vec::new();
    for (kind, channel, missing) in [
        (Channel::Telegram, tg, "no Telegram chat id set"),
        (Channel::Webhook, wh, "no webhook URL set"),
    ] {
        let r = match channel {
            Some(c) => state.alerting.notifier().send_test(c, caller).await,
            None => DeliveryRecord {
                channel: kind,
                status: DeliveryStatus::Skipped,
                attempts: 0,
                error: Some(missing.into()),
            },
        };
        results.push(Delivery::from(r));
    }
    Ok(Json(RecipientTestResult { results }))
}
