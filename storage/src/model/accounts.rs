//! Bodies of account management (`/api/admin/users*`, invitations) and of
//! agent sharing.

use serde::{Deserialize, Serialize};

/// One account as the admin sees it (`GET /api/admin/users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ManagedUser {
    pub id: u64,
    pub username: String,
    pub is_admin: bool,
    /// Cannot log in; the agents keep reporting.
    pub disabled: bool,
    /// Logged in with a one-time password and has not chosen one yet.
    pub must_change_password: bool,
    pub created_ms: i64,
    pub last_login_ms: Option<i64>,
    pub agent_count: u64,
    /// Two-factor log-in is on.
    #[serde(default)]
    pub two_factor: bool,
}

/// How `POST /api/admin/users` gives the new person access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NewUserAccess {
    /// The account is created now with a one-time password (in the answer,
    /// once), which must be changed at the first log-in.
    OneTimePassword,
    /// An invitation link valid for 24 hours and one use: whoever opens it
    /// chooses the password and the account is created then.
    Invitation,
}

/// `POST /api/admin/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 3-32 characters of `a-z 0-9 _ . -`; compared case-insensitively.
    pub username: String,
    pub access: NewUserAccess,
}

/// An invitation link (shown once: only its hash is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invitation {
    pub username: String,
    /// The secret of the link.
    pub token: String,
    /// The dashboard path that accepts it: `/invite?token=...`.
    pub path: String,
    pub expires_ms: i64,
}

/// The answer of `POST /api/admin/users` (201): the account and its
/// one-time password, or the invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedUser {
    pub user: Option<ManagedUser>,
    pub one_time_password: Option<String>,
    pub invitation: Option<Invitation>,
}

/// A pending invitation in `GET /api/admin/invitations` (the link itself is
/// not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingInvitation {
    pub username: String,
    pub created_ms: i64,
    pub expires_ms: i64,
}

/// `PATCH /api/admin/users/{id}`: each field present is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// Disabling ends every session of the user at once.
    pub disabled: Option<bool>,
    /// The last enabled admin keeps the power.
    pub is_admin: Option<bool>,
}

/// `DELETE /api/admin/users/{id}`: the account's name typed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeleteUserRequest {
    pub confirm_username: String,
}

/// A one-time password (`POST /api/admin/users/{id}/reset-password`),
/// shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OneTimePassword {
    pub username: String,
    pub one_time_password: String,
}

/// `GET /api/auth/invitation?token=`: who the link is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitationInfo {
    pub username: String,
    pub expires_ms: i64,
}

/// `POST /api/auth/invitation`: accept an invitation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    pub token: String,
    /// 10 to 1024 characters.
    pub password: String,
}

/// `GET /api/users/me/two-factor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoFactorStatus {
    /// Log-in asks for a code.
    pub enabled: bool,
    /// An enrolment waits for its first code.
    pub pending: bool,
    pub recovery_codes_left: u32,
    /// The admin requires two-factor log-in for every account.
    pub required: bool,
}

/// `POST /api/users/me/two-factor`: the secret to put in an authenticator
/// app, as text and as a QR code (an SVG image at `qr_svg_path`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TwoFactorEnrolment {
    /// Base32, for typing into the app by hand.
    pub secret: String,
    /// `otpauth://totp/StatusMonitor:NAME?secret=…&issuer=StatusMonitor`.
    pub otpauth_url: String,
    pub qr_svg_path: String,
}

/// A two-factor code: `POST /api/users/me/two-factor/confirm`,
/// `DELETE /api/users/me/two-factor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TwoFactorCode {
    /// Six digits from the authenticator app (or, to turn it off, a
    /// recovery code).
    pub code: String,
}

/// The recovery codes, shown once when two-factor log-in is turned on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// What a user may do with an agent shared with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShareAccess {
    /// Sees the agent, its live data, history and alert history.
    Viewer,
    /// A viewer who also manages the agent's alert rules.
    Editor,
}

/// How an agent someone else owns was shared with the caller
/// (`AgentInfo::shared`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SharedWithMe {
    pub owner: String,
    pub access: ShareAccess,
}

/// One share of an agent (`GET /api/agents/{id}/shares`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentShare {
    pub user_id: u64,
    pub username: String,
    pub access: ShareAccess,
}

/// `PUT /api/agents/{id}/shares`: share (or change the access of a share).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ShareAgentRequest {
    /// Another account's name.
    pub username: String,
    pub access: ShareAccess,
}
