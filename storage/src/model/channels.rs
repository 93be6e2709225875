//! Notification channels as the API and the dashboard see them: one named
//! destination of one kind (Telegram, ntfy, Discord, Slack, Gotify,
//! Pushover, Matrix, email, webhook), the fields each kind takes, the
//! caller's quiet hours and mute, and the channels of a rule.
//!
//! A channel's settings are a flat map of field name → text, described per
//! kind by [`fields_of`]: the server validates against it and the dashboard
//! draws its form from it, so both agree on every field. Secret fields are
//! write-only: an answer says only whether each is set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::alerts::Channel;

/// Most channels one account may have.
pub const MAX_CHANNELS_PER_USER: usize = 50;
/// Longest channel name.
pub const CHANNEL_NAME_MAX: usize = 64;
/// Longest value of one field (URLs, tokens, address lists).
pub const FIELD_MAX: usize = 2048;

/// One field of a channel kind's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub label: &'static str,
    /// Write-only: never returned once set.
    pub secret: bool,
    pub required: bool,
    /// What a valid value looks like, shown under the field.
    pub hint: &'static str,
}

const fn field(
    name: &'static str,
    label: &'static str,
    secret: bool,
    required: bool,
    hint: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        label,
        secret,
        required,
        hint,
    }
}

/// Every kind, in the order the dashboard offers them.
pub const CHANNEL_KINDS: [Channel; 9] = [
    Channel::Ntfy,
    Channel::Telegram,
    Channel::Discord,
    Channel::Slack,
    Channel::Email,
    Channel::Gotify,
    Channel::Pushover,
    Channel::Matrix,
    Channel::Webhook,
];

/// The fields of `kind`.
pub fn fields_of(kind: Channel) -> &'static [FieldSpec] {
    match kind {
        Channel::Telegram => {
            const F: &[FieldSpec] = &[
                field(
                    "chat_id",
                    "Chat id",
                    false,
                    true,
                    "a number (-100… for a group) or @channelname",
                ),
                field(
                    "bot_token",
                    "Bot token",
                    true,
                    false,
                    "empty: the server's bot",
                ),
            ];
            F
        }
        Channel::Ntfy => {
            const F: &[FieldSpec] = &[
                field(
                    "server_url",
                    "Server URL",
                    false,
                    true,
                    "e.g. https://ntfy.sh",
                ),
                field(
                    "topic",
                    "Topic",
                    false,
                    true,
                    "letters, digits, - and _ (at most 64)",
                ),
                field(
                    "token",
                    "Access token",
                    true,
                    false,
                    "for a protected topic",
                ),
                field(
                    "priority",
                    "Priority when firing",
                    false,
                    false,
                    "1 (min) to 5 (max), default 4",
                ),
                field(
                    "tags",
                    "Tags",
                    false,
                    false,
                    "comma-separated, e.g. warning,server",
                ),
            ];
            F
        }
        Channel::Discord => {
            const F: &[FieldSpec] = &[field(
                "webhook_url",
                "Webhook URL",
                true,
                true,
                "https://discord.com/api/webhooks/…",
            )];
            F
        }
        Channel::Slack => {
            const F: &[FieldSpec] = &[field(
                "webhook_url",
                "Webhook URL",
                true,
                true,
                "https://hooks.slack.com/services/…",
            )];
            F
        }
        Channel::Gotify => {
            const F: &[FieldSpec] = &[
                field(
                    "server_url",
                    "Server URL",
                    false,
                    true,
                    "e.g. https://gotify.example.com",
                ),
                field("app_token", "App token", true, true, ""),
                field(
                    "priority",
                    "Priority when firing",
                    false,
                    false,
                    "0 to 10, default 8",
                ),
            ];
            F
        }
        Channel::Pushover => {
            const F: &[FieldSpec] = &[
                field("user_key", "User key", true, true, "30 characters"),
                field("app_token", "App token", true, true, "30 characters"),
                field(
                    "priority",
                    "Priority when firing",
                    false,
                    false,
                    "-2 to 1, default 1",
                ),
            ];
            F
        }
        Channel::Matrix => {
            const F: &[FieldSpec] = &[
                field(
                    "homeserver",
                    "Homeserver URL",
                    false,
                    true,
                    "e.g. https://matrix.org",
                ),
                field("access_token", "Access token", true, true, ""),
                field("room_id", "Room id", false, true, "!abc123:example.org"),
            ];
            F
        }
        Channel::Email => {
            const F: &[FieldSpec] = &[
                field(
                    "host",
                    "SMTP host",
                    false,
                    true,
                    "name or address of the mail server",
                ),
                field("port", "Port", false, false, "1 to 65535, default 587"),
                field(
                    "security",
                    "Security",
                    false,
                    false,
                    "starttls (default), tls or none",
                ),
                field("username", "User", false, false, ""),
                field("password", "Password", true, false, ""),
                field("from", "From", false, true, "alerts@example.com"),
                field(
                    "to",
                    "To",
                    false,
                    true,
                    "comma-separated addresses (at most 10)",
                ),
            ];
            F
        }
        Channel::Webhook => {
            const F: &[FieldSpec] = &[
                field(
                    "url",
                    "URL",
                    false,
                    true,
                    "http:// or https:// URL that takes a JSON POST",
                ),
                field(
                    "secret",
                    "Signing secret",
                    true,
                    false,
                    "key of the X-StatusMonitor-Signature HMAC",
                ),
            ];
            F
        }
    }
}

impl Channel {
    /// Parses the API's name of a kind (`ntfy`, `email`, …).
    pub fn parse(text: &str) -> Option<Channel> {
        CHANNEL_KINDS.into_iter().find(|k| k.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Telegram => "telegram",
            Channel::Webhook => "webhook",
            Channel::Ntfy => "ntfy",
            Channel::Discord => "discord",
            Channel::Slack => "slack",
            Channel::Gotify => "gotify",
            Channel::Pushover => "pushover",
            Channel::Matrix => "matrix",
            Channel::Email => "email",
        }
    }

    /// The name people know the service by.
    pub fn title(self) -> &'static str {
        match self {
            Channel::Telegram => "Telegram",
            Channel::Webhook => "Webhook",
            Channel::Ntfy => "ntfy",
            Channel::Discord => "Discord",
            Channel::Slack => "Slack",
            Channel::Gotify => "Gotify",
            Channel::Pushover => "Pushover",
            Channel::Matrix => "Matrix",
            Channel::Email => "Email",
        }
    }
}

/// Whether a secret field holds a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretState {
    pub set: bool,
}

/// How a channel's deliveries have gone lately.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelHealth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ok_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_ms: Option<i64>,
    /// A fixed phrase (`HTTP 403`, `timeout`, …), never the remote body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Deliveries failed in a row since the last success.
    pub consecutive_failures: u32,
    /// [`FAILING_AFTER`] or more failures in a row.
    pub failing: bool,
}

/// Failures in a row after which a channel is shown as failing.
pub const FAILING_AFTER: u32 = 3;

/// `GET /api/channels`: one channel. Secret fields appear only in `secrets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotifyChannel {
    pub id: u64,
    pub name: String,
    pub kind: Channel,
    /// Notified by rules that name no channels.
    pub default: bool,
    /// The non-secret fields of the kind.
    pub config: BTreeMap<String, String>,
    /// Each secret field of the kind: whether it is set.
    pub secrets: BTreeMap<String, SecretState>,
    pub health: ChannelHealth,
}

/// `POST /api/channels` (name, kind and the required fields needed) and
/// `PATCH /api/channels/{id}` (absent fields unchanged; in `config`, an
/// absent field is unchanged and an empty string clears it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChannelRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `telegram`, `ntfy`, `discord`, `slack`, `gotify`, `pushover`,
    /// `matrix`, `email` or `webhook`; fixed once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
}

/// `POST /api/channels/{id}/test`: the outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelTestResult {
    pub sent: bool,
    /// A fixed phrase when not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: u32,
}

/// Quiet hours: between `start` and `end` (local `HH:MM` in `time_zone`;
/// `start` after `end` spans midnight) only urgent rules notify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
    /// An IANA time zone such as `Europe/Berlin`.
    pub time_zone: String,
}

/// `GET/PUT /api/notify/settings`: the caller's quiet hours and mute.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// `null`: no quiet hours.
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// No notification at all before this time (Unix ms); `null`: not muted.
    #[serde(default)]
    pub mute_until_ms: Option<i64>,
}

/// `GET/PUT /api/rules/{id}/notify`: where a rule's alerts go.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleNotify {
    /// The channels to notify; empty: the caller's default channels.
    #[serde(default)]
    pub channels: Vec<u64>,
    /// Notifies during quiet hours too.
    #[serde(default)]
    pub urgent: bool,
    /// Named channels that no longer exist (answers only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<u64>,
    /// None of the named channels exists: the defaults are used (answers only).
    #[serde(default)]
    pub uses_defaults: bool,
}

/// `GET/PUT /api/admin/telegram`: the server-wide Telegram bot token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TelegramSettings {
    /// A token is set in the dashboard (answers only).
    #[serde(default)]
    pub token_set: bool,
    /// The server was started with `--telegram-bot-token` (answers only;
    /// a token set in the dashboard takes precedence).
    #[serde(default)]
    pub config_token_set: bool,
    /// The new token (requests only): empty clears the dashboard's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<String>,
}
