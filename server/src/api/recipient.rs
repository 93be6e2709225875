//! The caller's notification settings: `GET/POST /api/recipient` and
//! `POST /api/recipient/test`. The webhook secret is write-only. A webhook
//! URL passes the [outbound guard](crate::outbound) when it is saved (and
//! again at every delivery); "Send test" is rate-limited per account.

use axum::extract::State;
use storage::catalog::RecipientRecord;
use storage::model::{Delivery, Recipient, RecipientTestResult, UpdateRecipientRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

const CHAT_ID_MAX: usize = 64;
const URL_MAX: usize = 2048;
const SECRET_MAX: usize = 256;

fn view(state: &AppState, r: RecipientRecord) -> Recipient {
    Recipient {
        telegram_chat_id: r.telegram_chat_id,
        webhook_url: r.webhook_url,
        webhook_secret_set: r.webhook_secret.is_some(),
        telegram_configured: state.alerting.telegram_configured(),
    }
}

/// A numeric chat id (negative for groups) or an `@channel` name.
fn check_chat_id(text: &str) -> ApiResult<()> {
    let numeric = text
        .strip_prefix('-')
        .unwrap_or(text)
        .chars()
        .all(|c| c.is_ascii_digit());
    let channel = text
        .strip_prefix('@')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if text.len() > CHAT_ID_MAX || !(numeric || channel) || text == "-" {
        return Err(ApiError::Invalid(
            "telegram_chat_id: a number (e.g. 123456789, or -100… for a group) or @channelname"
                .into(),
        ));
    }
    Ok(())
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
    let r = state.catalog(move |c| c.recipient(user_id)).await?;
    Ok(Json(view(&state, r)))
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
    let mut r = state.catalog(move |c| c.recipient(user_id)).await?;
    if let Some(chat) = req.telegram_chat_id {
        let chat = chat.trim();
        if chat.is_empty() {
            r.telegram_chat_id = None;
        } else {
            check_chat_id(chat)?;
            r.telegram_chat_id = Some(chat.to_string());
        }
    }
    if let Some(url) = req.webhook_url {
        let url = url.trim();
        if url.is_empty() {
            r.webhook_url = None;
        } else {
            let caller = Caller::of(is_admin(&state, user_id).await?);
            r.webhook_url = Some(check_url(&state, url, caller).await?);
        }
    }
    if let Some(secret) = req.webhook_secret {
        if secret.is_empty() {
            r.webhook_secret = None;
        } else if secret.len() > SECRET_MAX {
            return Err(ApiError::Invalid(format!(
                "webhook_secret: at most {SECRET_MAX} bytes"
            )));
        } else {
            r.webhook_secret = Some(secret);
        }
    }
    let stored = r.clone();
    state
        .catalog(move |c| c.set_recipient(user_id, &stored))
        .await?;
    Ok(Json(view(&state, r)))
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
    let r = state.catalog(move |c| c.recipient(user_id)).await?;
    let caller = Caller::of(is_admin(&state, user_id).await?);
    let results = state.alerting.notifier().send_test(&r, caller).await;
    Ok(Json(RecipientTestResult {
        results: results.into_iter().map(Delivery::from).collect(),
    }))
}
