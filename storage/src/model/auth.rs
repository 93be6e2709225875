//! Bodies of the account and session API (`/api/auth/*`, `/api/users/*`,
//! `/api/admin/settings`). Request bodies reject unknown fields (422), so a
//! misspelt `pasword` is an error rather than silently missing.

use serde::{Deserialize, Serialize};

/// `POST /api/auth/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3-32 characters of `a-z 0-9 _ . -`; compared case-insensitively.
    pub username: String,
    /// 10 to 1024 characters.
    pub password: String,
}

/// `POST /api/auth/token` (log in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// For an account with two-factor log-in: the six-digit code of the
    /// authenticator app, or one of the recovery codes (each works once).
    #[serde(default)]
    pub two_factor_code: Option<String>,
}

/// `POST /api/auth/refresh` and `/api/auth/logout` from API clients; browsers
/// send the `sm_refresh` cookie and no body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// The answer of log-in and refresh. Browsers get the same tokens as
/// HttpOnly cookies and need not read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always "Bearer".
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
    pub user: UserInfo,
}

/// `GET /api/users/me`, and the `user` of several answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    pub id: u64,
    pub username: String,
    pub is_admin: bool,
    pub created_ms: i64,
    /// Logged in with a one-time password: until a new password is set
    /// (`POST /api/users/me/password`), every other request is refused (403).
    #[serde(default)]
    pub must_change_password: bool,
    /// Two-factor log-in is on for this account.
    #[serde(default)]
    pub two_factor: bool,
    /// Two-factor log-in is required and not set up yet: until it is
    /// (`/api/users/me/two-factor`), every other request is refused (403).
    #[serde(default)]
    pub must_enrol_two_factor: bool,
}

/// `GET /api/auth/registration`: whether the sign-up form should be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationStatus {
    pub open: bool,
    /// True while no account exists: the next one becomes the admin.
    pub first_account: bool,
    /// A reverse proxy may log people in (`POST /api/auth/sso`).
    #[serde(default)]
    pub trusted_header_login: bool,
}

/// `POST /api/users/me/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// One entry of `GET /api/auth/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    pub id: u64,
    pub created_ms: i64,
    /// Last log-in or token refresh.
    pub last_used_ms: i64,
    pub expires_ms: i64,
    pub user_agent: String,
    /// The session this request was made with.
    pub current: bool,
}

/// `GET/PUT /api/admin/settings` (admin only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Let anyone create an account. Registration is also open when the
    /// operator started the server with `--open-registration`.
    pub open_registration: bool,
    /// Every account must use two-factor log-in; one without it may only
    /// set it up after logging in.
    #[serde(default)]
    pub require_two_factor: bool,
}
