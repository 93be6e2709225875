//! Notification channels and routing of the caller:
//! `/api/channels` (list, create), `/api/channels/{id}` (read, edit,
//! delete), `/api/channels/{id}/test`, `/api/notify/settings` (quiet hours,
//! mute), `/api/rules/{id}/notify` (a rule's channels and urgency), and the
//! admin's `/api/admin/telegram` (the server's bot token).
//!
//! Secrets (tokens, passwords, Discord/Slack webhook URLs) are write-only:
//! answers say only `{"set": true}`. Every URL passes the [outbound
//! guard](crate::outbound) when it is saved (and again at every delivery),
//! an SMTP host too. Invalid values answer 422 naming the field
//! (`config.topic: …`); nothing is saved then. Someone else's channel or
//! rule answers 404 like a missing one.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::State;
use axum::http::StatusCode;
use storage::catalog::{ChannelRecord, NotifyPrefsRecord, RuleNotifyRecord};
use storage::model::{
    CHANNEL_KINDS, CHANNEL_NAME_MAX, Channel, ChannelHealth, ChannelRequest, ChannelTestResult,
    DeliveryStatus, FIELD_MAX, MAX_CHANNELS_PER_USER, NotifyChannel, NotifySettings, QuietHours,
    RuleNotify, SecretState, TelegramSettings, fields_of,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::alerting::notify::{email, quiet};
use crate::api::quota::is_admin;
use crate::auth::AuthUser;
use crate::auth::extract::AdminUser;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::outbound::{Caller, UrlError};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, update, remove))
        .routes(routes!(test))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(get_rule_notify, put_rule_notify))
        .routes(routes!(get_telegram, put_telegram))
}

/// Most channels one rule may name.
const MAX_RULE_CHANNELS: usize = 20;

fn channel_not_found() -> ApiError {
    ApiError::NotFound("no such channel".into())
}

fn invalid(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::Invalid(format!("{field}: {why}"))
}

/// The view of `c`: secrets only as "set".
pub fn view(c: ChannelRecord, health: ChannelHealth) -> NotifyChannel {
    let mut config = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    for f in fields_of(c.kind) {
        let value = c.field(f.name);
        if f.secret {
            secrets.insert(
                f.name.to_string(),
                SecretState {
                    set: value.is_some(),
                },
            );
        } else if let Some(v) = value {
            config.insert(f.name.to_string(), v.to_string());
        }
    }
    NotifyChannel {
        id: c.id,
        name: c.name,
        kind: c.kind,
        default: c.default,
        config,
        secrets,
        health,
    }
}

fn health_view(h: storage::catalog::ChannelHealthRecord) -> ChannelHealth {
    ChannelHealth {
        failing: h.failing(),
        last_ok_ms: h.last_ok_ms,
        last_error_ms: h.last_error_ms,
        last_error: h.last_error,
        consecutive_failures: h.consecutive_failures,
    }
}

async fn channel_view(state: &AppState, c: ChannelRecord) -> ApiResult<NotifyChannel> {
    let id = c.id;
    let h = state.catalog(move |cat| cat.channel_health(id)).await?;
    Ok(view(c, health_view(h)))
}

fn check_name(text: &str) -> ApiResult<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid("name", "required"));
    }
    if text.chars().count() > CHANNEL_NAME_MAX {
        return Err(invalid(
            "name",
            format!("at most {CHANNEL_NAME_MAX} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid("name", "control characters are not allowed"));
    }
    if let Some(problem) = crate::text::hidden_problem(text) {
        return Err(invalid("name", problem));
    }
    Ok(text.to_string())
}

/// The normalised URL, or 422 naming `field`.
async fn check_url(state: &AppState, field: &str, text: &str, caller: Caller) -> ApiResult<String> {
    match state.outbound.check_url(text, caller).await {
        Ok(url) => Ok(url.into()),
        Err(e @ UrlError::Invalid) => Err(invalid(field, e)),
        Err(e @ UrlError::Refused(_)) => Err(invalid(
            field,
            format!("{e}; only the admin may send notifications there"),
        )),
    }
}

fn check_int(field: &str, text: &str, min: i64, max: i64) -> ApiResult<()> {
    match text.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(invalid(
            field,
            format!("a whole number from {min} to {max}"),
        )),
    }
}

/// A numeric chat id (negative for groups) or an `@channel` name.
pub fn check_chat_id(field: &str, text: &str) -> ApiResult<()> {
    let numeric = text
        .strip_prefix('-')
        .unwrap_or(text)
        .chars()
        .all(|c| c.is_ascii_digit());
    let channel = text
        .strip_prefix('@')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if text.len() > 64 || !(numeric || channel) || text == "-" {
        return Err(invalid(
            field,
            "a number (e.g. 123456789, or -100… for a group) or @channelname",
        ));
    }
    Ok(())
}

/// An SMTP host the caller may connect to: a name or an address, checked
/// by the guard like a URL's host.
async fn check_smtp_host(state: &AppState, host: &str, port: u16, caller: Caller) -> ApiResult<()> {
    const FIELD: &str = "config.host";
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return state
            .outbound
            .check_addr(SocketAddr::new(ip, port), caller)
            .map_err(|r| invalid(FIELD, r));
    }
    let valid = bare.len() <= 253
        && !bare.is_empty()
        && bare.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid {
        return Err(invalid(FIELD, "a host name or an IP address"));
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    if caller == Caller::User && (name == "localhost" || name.ends_with(".localhost")) {
        return Err(invalid(
            FIELD,
            crate::outbound::Refusal::Loopback.to_string(),
        ));
    }
    state
        .outbound
        .check_resolved(&name, port, caller)
        .await
        .map_err(|r| invalid(FIELD, r))
}

/// Merges `changes` into `fields` (empty clears) and checks every field of
/// `kind`; the fields to store, or 422 naming the first bad one.
async fn settle_fields(
    state: &AppState,
    kind: Channel,
    mut fields: BTreeMap<String, String>,
    changes: BTreeMap<String, String>,
    caller: Caller,
) -> ApiResult<BTreeMap<String, String>> {
    let specs = fields_of(kind);
    for (key, value) in changes {
        let field = format!("config.{key}");
        if !specs.iter().any(|f| f.name == key) {
            let known: Vec<&str> = specs.iter().map(|f| f.name).collect();
            return Err(invalid(
                &field,
                format!(
                    "not a setting of {}; its settings are {}",
                    kind.as_str(),
                    known.join(", ")
                ),
            ));
        }
        if value.len() > FIELD_MAX {
            return Err(invalid(&field, format!("at most {FIELD_MAX} bytes")));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid(&field, "control characters are not allowed"));
        }
        let value = value.trim().to_string();
        if value.is_empty() {
            fields.remove(&key);
        } else {
            fields.insert(key, value);
        }
    }
    for spec in specs {
        let field = format!("config.{}", spec.name);
        let Some(value) = fields.get(spec.name).cloned() else {
            if spec.required {
                return Err(invalid(&field, "required"));
            }
            continue;
        };
        let normalised = match (kind, spec.name) {
            (_, "server_url" | "homeserver" | "webhook_url" | "url") => {
                Some(check_url(state, &field, &value, caller).await?)
            }
            (Channel::Telegram, "chat_id") => {
                check_chat_id(&field, &value)?;
                None
            }
            (Channel::Ntfy, "topic") => {
                let ok = value.len() <= 64
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !ok {
                    return Err(invalid(&field, spec.hint));
                }
                None
            }
            (Channel::Ntfy, "priority") => {
                check_int(&field, &value, 1, 5)?;
                None
            }
            (Channel::Ntfy, "tags") => {
                let tags: Vec<&str> = value.split(',').map(str::trim).collect();
                let ok = tags.len() <= 10
                    && tags.iter().all(|t| {
                        t.len() <= 32
                            && t.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    });
                if !ok {
                    return Err(invalid(
                        &field,
                        "at most 10 comma-separated tags of letters, digits, - and _",
                    ));
                }
                None
            }
            (Channel::Gotify, "priority") => {
                check_int(&field, &value, 0, 10)?;
                None
            }
            (Channel::Pushover, "priority") => {
                check_int(&field, &value, -2, 1)?;
                None
            }
            (Channel::Pushover, "user_key" | "app_token") => {
                if value.len() != 30 || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(invalid(&field, "30 letters and digits"));
                }
                None
            }
            (Channel::Matrix, "room_id") => {
                let ok = value.starts_with('!') && value.contains(':') && value.len() <= 255;
                if !ok {
                    return Err(invalid(&field, "a room id like !abc123:example.org"));
                }
                None
            }
            (Channel::Email, "port") => {
                check_int(&field, &value, 1, 65535)?;
                None
            }
            (Channel::Email, "security") => {
                if email::Security::parse(&value).is_none() {
                    return Err(invalid(&field, "starttls, tls or none"));
                }
                None
            }
            (Channel::Email, "from") => {
                if value.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(invalid(&field, "an email address"));
                }
                None
            }
            (Channel::Email, "to") => {
                match email::parse_addresses(&value) {
                    Ok(list) if !list.is_empty() && list.len() <= email::MAX_RECIPIENTS => {}
                    Ok(_) => {
                        return Err(invalid(
                            &field,
                            format!("1 to {} addresses", email::MAX_RECIPIENTS),
                        ));
                    }
                    Err(bad) => {
                        let bad: String = bad.chars().take(64).collect();
                        return Err(invalid(&field, format!("{bad:?} is not an email address")));
                    }
                }
                None
            }
            _ => None,
        };
        if let Some(n) = normalised {
            fields.insert(spec.name.to_string(), n);
        }
    }
    if kind == Channel::Email {
        let security = email::Security::parse(fields.get("security").map_or("", String::as_str))
            .unwrap_or(email::Security::StartTls);
        let port = fields
            .get("port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(security.default_port());
        let host = fields.get("host").cloned().unwrap_or_default();
        check_smtp_host(state, &host, port, caller).await?;
    }
    Ok(fields)
}

#[utoipa::path(
    get,
    path = "/api/channels",
    operation_id = "listChannels",
    tag = "alerts",
    summary = "Your notification channels",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::NotifyChannel>), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody))
)]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<NotifyChannel>>> {
    let user_id = user.user_id;
    let all = state
        .catalog(move |c| {
            c.channels_of(user_id)?
                .into_iter()
                .map(|ch| {
                    let h = c.channel_health(ch.id)?;
                    Ok((ch, h))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(Json(
        all.into_iter()
            .map(|(c, h)| view(c, health_view(h)))
            .collect(),
    ))
}

#[utoipa::path(
    post,
    path = "/api/channels",
    operation_id = "createChannel",
    tag = "alerts",
    summary = "Add a notification channel",
    request_body = storage::model::ChannelRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = storage::model::NotifyChannel), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<ChannelRequest>,
) -> ApiResult<(StatusCode, Json<NotifyChannel>)> {
    let kind_text = req.kind.as_deref().unwrap_or("");
    let Some(kind) = Channel::parse(kind_text) else {
        let kinds: Vec<&str> = CHANNEL_KINDS.iter().map(|k| k.as_str()).collect();
        return Err(invalid("kind", format!("one of {}", kinds.join(", "))));
    };
    let name = check_name(req.name.as_deref().unwrap_or(""))?;
    let caller = Caller::of(is_admin(&state, user.user_id).await?);
    let fields = settle_fields(
        &state,
        kind,
        BTreeMap::new(),
        req.config.unwrap_or_default(),
        caller,
    )
    .await?;
    let now = state.clock.now_ms();
    let record = ChannelRecord {
        id: 0,
        owner_id: user.user_id,
        name,
        kind,
        default: req.default.unwrap_or(true),
        fields,
        created_ms: now,
        updated_ms: now,
    };
    let created = state
        .catalog(move |c| c.create_channel(&record, MAX_CHANNELS_PER_USER))
        .await?
        .ok_or_else(|| {
            invalid(
                "channels",
                format!("an account has at most {MAX_CHANNELS_PER_USER} channels"),
            )
        })?;
    Ok((
        StatusCode::CREATED,
        Json(view(created, ChannelHealth::default())),
    ))
}

async fn owned(state: &AppState, user_id: u64, id: &str) -> ApiResult<ChannelRecord> {
    let id = id.parse::<u64>().map_err(|_| channel_not_found())?;
    state
        .catalog(move |c| c.channel(user_id, id))
        .await?
        .ok_or_else(channel_not_found)
}

#[utoipa::path(
    get,
    path = "/api/channels/{id}",
    operation_id = "getChannel",
    tag = "alerts",
    summary = "One notification channel",
    params(("id" = u64, Path, description = "Channel id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::NotifyChannel), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn one(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<NotifyChannel>> {
    let c = owned(&state, user.user_id, &id).await?;
    Ok(Json(channel_view(&state, c).await?))
}

#[utoipa::path(
    patch,
    path = "/api/channels/{id}",
    operation_id = "updateChannel",
    tag = "alerts",
    summary = "Change a notification channel",
    params(("id" = u64, Path, description = "Channel id")),
    request_body = storage::model::ChannelRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::NotifyChannel), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<ChannelRequest>,
) -> ApiResult<Json<NotifyChannel>> {
    let mut c = owned(&state, user.user_id, &id).await?;
    if let Some(kind) = &req.kind
        && kind != c.kind.as_str()
    {
        return Err(invalid(
            "kind",
            "fixed once created; add a new channel instead",
        ));
    }
    if let Some(name) = &req.name {
        c.name = check_name(name)?;
    }
    if let Some(d) = req.default {
        c.default = d;
    }
    let caller = Caller::of(is_admin(&state, user.user_id).await?);
    c.fields = settle_fields(
        &state,
        c.kind,
        c.fields.clone(),
        req.config.unwrap_or_default(),
        caller,
    )
    .await?;
    c.updated_ms = state.clock.now_ms();
    let stored = c.clone();
    if !state
        .catalog(move |cat| cat.update_channel(&stored))
        .await?
    {
        return Err(channel_not_found());
    }
    Ok(Json(channel_view(&state, c).await?))
}

#[utoipa::path(
    delete,
    path = "/api/channels/{id}",
    operation_id = "deleteChannel",
    tag = "alerts",
    summary = "Delete a notification channel",
    params(("id" = u64, Path, description = "Channel id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let c = owned(&state, user.user_id, &id).await?;
    let user_id = user.user_id;
    if state
        .catalog(move |cat| cat.delete_channel(user_id, c.id))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(channel_not_found())
    }
}

#[utoipa::path(
    post,
    path = "/api/channels/{id}/test",
    operation_id = "testChannel",
    tag = "alerts",
    summary = "Send a test message to a channel",
    params(("id" = u64, Path, description = "Channel id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::ChannelTestResult), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 429, description = "Too many test messages; see Retry-After", body = storage::model::ErrorBody))
)]
async fn test(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ChannelTestResult>> {
    let c = owned(&state, user.user_id, &id).await?;
    state.quota.check_send_test(user.user_id)?;
    let caller = Caller::of(is_admin(&state, user.user_id).await?);
    let r = state.alerting.notifier().send_test(&c, caller).await;
    Ok(Json(ChannelTestResult {
        sent: r.status == DeliveryStatus::Sent,
        error: r.error,
        attempts: r.attempts,
    }))
}

fn settings_view(p: &NotifyPrefsRecord) -> NotifySettings {
    NotifySettings {
        quiet_hours: p.quiet.as_ref().map(|(s, e, tz)| QuietHours {
            start: quiet::format_hhmm(*s),
            end: quiet::format_hhmm(*e),
            time_zone: tz.clone(),
        }),
        mute_until_ms: p.mute_until_ms,
    }
}

#[utoipa::path(
    get,
    path = "/api/notify/settings",
    operation_id = "getNotifySettings",
    tag = "alerts",
    summary = "Your quiet hours and mute",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::NotifySettings), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody))
)]
async fn get_settings(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<NotifySettings>> {
    let user_id = user.user_id;
    let p = state.catalog(move |c| c.notify_prefs(user_id)).await?;
    Ok(Json(settings_view(&p)))
}

#[utoipa::path(
    put,
    path = "/api/notify/settings",
    operation_id = "updateNotifySettings",
    tag = "alerts",
    summary = "Set your quiet hours and mute",
    request_body = storage::model::NotifySettings,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::NotifySettings), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn put_settings(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<NotifySettings>,
) -> ApiResult<Json<NotifySettings>> {
    let quiet = match &req.quiet_hours {
        None => None,
        Some(q) => {
            let start = quiet::parse_hhmm(&q.start)
                .ok_or_else(|| invalid("quiet_hours.start", "a time like 23:00"))?;
            let end = quiet::parse_hhmm(&q.end)
                .ok_or_else(|| invalid("quiet_hours.end", "a time like 07:00"))?;
            if start == end {
                return Err(invalid("quiet_hours.end", "differs from the start"));
            }
            if q.time_zone.len() > 64 || quiet::time_zone(&q.time_zone).is_none() {
                return Err(invalid(
                    "quiet_hours.time_zone",
                    "an IANA time zone such as Europe/Berlin or UTC",
                ));
            }
            Some((start, end, q.time_zone.clone()))
        }
    };
    let now = state.clock.now_ms();
    let mute_until_ms = match req.mute_until_ms {
        Some(t) if !(0..=now.saturating_add(366 * 86_400_000)).contains(&t) => {
            return Err(invalid(
                "mute_until_ms",
                "a time (Unix ms) within the next year",
            ));
        }
        other => other,
    };
    let user_id = user.user_id;
    let p = state
        .catalog(move |c| {
            let mut p = c.notify_prefs(user_id)?;
            p.quiet = quiet;
            p.mute_until_ms = mute_until_ms;
            c.set_notify_prefs(user_id, &p)?;
            Ok(p)
        })
        .await?;
    Ok(Json(settings_view(&p)))
}

async fn owned_rule_id(state: &AppState, user_id: u64, id: &str) -> ApiResult<u64> {
    let not_found = || ApiError::NotFound("no such rule".into());
    let id = id.parse::<u64>().map_err(|_| not_found())?;
    match state.catalog(move |c| c.rule(id)).await? {
        Some(rule) if rule.owner_id == user_id => Ok(id),
        _ => Err(not_found()),
    }
}

async fn rule_notify_view(state: &AppState, user_id: u64, rule_id: u64) -> ApiResult<RuleNotify> {
    let (r, channels) = state
        .catalog(move |c| Ok((c.rule_notify(rule_id)?, c.channels_of(user_id)?)))
        .await?;
    let missing: Vec<u64> = r
        .channels
        .iter()
        .copied()
        .filter(|id| !channels.iter().any(|c| c.id == *id))
        .collect();
    Ok(RuleNotify {
        uses_defaults: missing.len() == r.channels.len(),
        channels: r.channels,
        urgent: r.urgent,
        missing,
    })
}

#[utoipa::path(
    get,
    path = "/api/rules/{id}/notify",
    operation_id = "getRuleNotify",
    tag = "rules",
    summary = "Where a rule's alerts go",
    params(("id" = u64, Path, description = "Rule id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::RuleNotify), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn get_rule_notify(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<RuleNotify>> {
    let rule_id = owned_rule_id(&state, user.user_id, &id).await?;
    Ok(Json(rule_notify_view(&state, user.user_id, rule_id).await?))
}

#[utoipa::path(
    put,
    path = "/api/rules/{id}/notify",
    operation_id = "updateRuleNotify",
    tag = "rules",
    summary = "Set where a rule's alerts go",
    params(("id" = u64, Path, description = "Rule id")),
    request_body = storage::model::RuleNotify,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::RuleNotify), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn put_rule_notify(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<RuleNotify>,
) -> ApiResult<Json<RuleNotify>> {
    let rule_id = owned_rule_id(&state, user.user_id, &id).await?;
    if req.channels.len() > MAX_RULE_CHANNELS {
        return Err(invalid(
            "channels",
            format!("at most {MAX_RULE_CHANNELS} channels"),
        ));
    }
    let user_id = user.user_id;
    let mut ids = req.channels.clone();
    ids.sort_unstable();
    ids.dedup();
    let owned = state.catalog(move |c| c.channels_of(user_id)).await?;
    if let Some(bad) = ids.iter().find(|id| !owned.iter().any(|c| c.id == **id)) {
        return Err(invalid("channels", format!("no channel {bad} of yours")));
    }
    let record = RuleNotifyRecord {
        channels: ids,
        urgent: req.urgent,
    };
    state
        .catalog(move |c| c.set_rule_notify(rule_id, &record))
        .await?;
    Ok(Json(rule_notify_view(&state, user_id, rule_id).await?))
}

fn telegram_view(state: &AppState, token_set: bool) -> TelegramSettings {
    TelegramSettings {
        token_set,
        config_token_set: state.alerting.notifier().telegram_config_token_set(),
        bot_token: None,
    }
}

#[utoipa::path(
    get,
    path = "/api/admin/telegram",
    operation_id = "getTelegramSettings",
    tag = "admin",
    summary = "Whether the server has a Telegram bot token (admin)",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::TelegramSettings), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody))
)]
async fn get_telegram(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<TelegramSettings>> {
    let set = state.catalog(|c| c.telegram_bot_token()).await?.is_some();
    Ok(Json(telegram_view(&state, set)))
}

#[utoipa::path(
    put,
    path = "/api/admin/telegram",
    operation_id = "updateTelegramSettings",
    tag = "admin",
    summary = "Set or clear the server's Telegram bot token (admin)",
    request_body = storage::model::TelegramSettings,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::TelegramSettings), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn put_telegram(
    State(state): State<AppState>,
    _admin: AdminUser,
    Json(req): Json<TelegramSettings>,
) -> ApiResult<Json<TelegramSettings>> {
    let Some(token) = req.bot_token else {
        return Err(invalid("bot_token", "required (empty clears)"));
    };
    let token = token.trim().to_string();
    // `123456789:AA…`: the bot id, a colon, the secret.
    let valid = token.is_empty()
        || (token.len() <= 100
            && token.split_once(':').is_some_and(|(id, secret)| {
                !id.is_empty()
                    && id.chars().all(|c| c.is_ascii_digit())
                    && !secret.is_empty()
                    && secret
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            }));
    if !valid {
        return Err(invalid(
            "bot_token",
            "a token from @BotFather like 123456789:AAH…",
        ));
    }
    let stored = (!token.is_empty()).then_some(token);
    let to_store = stored.clone();
    state
        .catalog(move |c| c.set_telegram_bot_token(to_store.as_deref()))
        .await?;
    let set = stored.is_some();
    state
        .alerting
        .notifier()
        .set_telegram_dashboard_token(stored);
    Ok(Json(telegram_view(&state, set)))
}

/// Fills in which channel each delivery of `events` went to: its id, and
/// its name now (or the name it had when it was planned, once deleted).
pub async fn name_deliveries(
    state: &AppState,
    user_id: u64,
    events: &mut [storage::model::AlertEvent],
) -> ApiResult<()> {
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    let (targets, channels) = state
        .catalog(move |c| Ok((c.delivery_targets(user_id, &ids)?, c.channels_of(user_id)?)))
        .await?;
    for e in events {
        let Some(t) = targets.get(&e.id) else {
            continue;
        };
        for (d, (id, name)) in e.deliveries.iter_mut().zip(&t.channels) {
            d.channel_id = Some(*id);
            d.channel_name = Some(
                channels
                    .iter()
                    .find(|c| c.id == *id)
                    .map_or_else(|| name.clone(), |c| c.name.clone()),
            );
        }
    }
    Ok(())
}
