//! Accounts and sessions: `/api/auth/*`.
//!
//! - `GET  /auth/registration`: is the sign-up form open?
//! - `POST /auth/register`: create an account (201 with the user).
//! - `POST /auth/token`: log in; tokens in the body and as cookies.
//! - `POST /auth/refresh`: rotate the refresh token (cookie or body).
//! - `POST /auth/logout`: end this session; `POST /auth/logout-all`: every one.
//! - `GET  /auth/sessions`, `DELETE /auth/sessions/{id}`: the Account page.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use storage::catalog::{RefreshOutcome, UserRecord};
use storage::model::{
    LoginRequest, RefreshRequest, RegisterRequest, RegistrationStatus, SessionInfo, TokenResponse,
    UserInfo,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::cookies::{self, REFRESH_COOKIE, clear_session, is_tls, set_session};
use crate::auth::extract::check_same_origin;
use crate::auth::password::check_password_rules;
use crate::auth::tokens::{REFRESH_TOKEN_PREFIX, hash_token, new_token, random_bytes};
use crate::auth::{ACCESS_TTL_S, AuthUser, ClientIp, REFRESH_TTL_MS, SecurityEvent};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::security::check_first_account_host;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(registration))
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(sessions))
        .routes(routes!(revoke_session))
}

const USERNAME_MIN: usize = 3;
const USERNAME_MAX: usize = 32;
/// `User-Agent` is kept this short in the session list.
pub(crate) const USER_AGENT_MAX: usize = 200;

/// Lower-cases `name` and checks it: 3-32 characters of `a-z 0-9 _ . -`.
pub fn normalize_username(name: &str) -> Result<String, ApiError> {
    let name = name.trim().to_lowercase();
    let len = name.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len)
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
    {
        return Err(ApiError::Invalid(format!(
            "username must have {USERNAME_MIN} to {USERNAME_MAX} characters, each a letter, a digit, `_`, `.` or `-`"
        )));
    }
    Ok(name)
}

/// The API view of `user`; `catalog` knows its two-factor state (memory only).
pub fn user_info(user: &UserRecord, catalog: &storage::catalog::Catalog) -> UserInfo {
    UserInfo {
        id: user.id,
        username: user.username.clone(),
        is_admin: user.is_admin,
        created_ms: user.created_ms,
        must_change_password: user.must_change_password,
        two_factor: catalog.has_two_factor(user.id),
        must_enrol_two_factor: catalog.restriction(user.id)
            == Some(storage::catalog::Restriction::EnrolTwoFactor),
    }
}

/// Whether an account could be created now, and whether it would be the first.
async fn registration_status(state: &AppState) -> ApiResult<RegistrationStatus> {
    let by_config = state.config.open_registration;
    let (count, settings) = state
        .catalog(|c| Ok((c.user_count()?, c.server_settings()?)))
        .await?;
    Ok(RegistrationStatus {
        open: count == 0 || by_config || settings.open_registration,
        first_account: count == 0,
        trusted_header_login: state.config.trusted_auth.is_some(),
    })
}

#[utoipa::path(
    get,
    path = "/api/auth/registration",
    operation_id = "getRegistrationStatus",
    tag = "auth",
    summary = "Whether an account can be created now",
    responses((status = 200, body = storage::model::RegistrationStatus))
)]
async fn registration(State(state): State<AppState>) -> ApiResult<Json<RegistrationStatus>> {
    Ok(Json(registration_status(&state).await?))
}

#[utoipa::path(
    post,
    path = "/api/auth/register",
    operation_id = "registerAccount",
    tag = "auth",
    summary = "Create an account (the first is the admin)",
    request_body = storage::model::RegisterRequest,
    responses((status = 201, body = storage::model::UserInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 409, description = "Conflict", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody), (status = 429, description = "Too many attempts; see Retry-After", body = storage::model::ErrorBody))
)]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<UserInfo>)> {
    let username = normalize_username(&req.username)?;
    state.limits.check_register(&username, ip)?;
    check_password_rules(&req.password, "password")?;
    // Refuse before spending a hash; `create_user` checks again atomically.
    let status = registration_status(&state).await?;
    if !status.open {
        return Err(crate::auth::catalog_error(
            storage::catalog::CatalogError::RegistrationClosed,
        ));
    }
    if status.first_account {
        check_first_account_host(&headers, &state.config)?;
    }
    let hash = state.passwords.hash(req.password).await?;
    let now = state.clock.now_ms();
    let by_config = state.config.open_registration;
    let user = state
        .catalog(move |c| c.create_user(&username, &hash, by_config, now))
        .await?;
    tracing::info!(user_id = user.id, admin = user.is_admin, "account created");
    Ok((StatusCode::CREATED, Json(user_info(&user, &state.catalog))))
}

#[utoipa::path(
    post,
    path = "/api/auth/token",
    operation_id = "logIn",
    tag = "auth",
    summary = "Log in: access and refresh tokens, also as cookies",
    request_body = storage::model::LoginRequest,
    responses((status = 200, body = storage::model::TokenResponse), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody), (status = 429, description = "Too many attempts; see Retry-After", body = storage::model::ErrorBody))
)]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let username = req.username.trim().to_lowercase();
    state.limits.check_login(&username, ip)?;
    let name = username.clone();
    let user = state.catalog(move |c| c.user_by_name(&name)).await?;
    let ok = state
        .passwords
        .verify(req.password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let user = match user {
        Some(user) if ok => user,
        // One message for both, so names cannot be probed.
        _ => {
            return Err(ApiError::Unauthorized("wrong username or password".into()));
        }
    };
    if user.disabled {
        return Err(ApiError::Forbidden(
            "this account is disabled; ask the administrator".into(),
        ));
    }
    if state.catalog.has_two_factor(user.id) {
        crate::accounts::totp::verify(
            &state,
            user.id,
            &user.username,
            req.two_factor_code.as_deref(),
            ip,
        )
        .await?;
    }
    let refresh = new_token(REFRESH_TOKEN_PREFIX);
    let hash = hash_token(&refresh);
    let user_agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(USER_AGENT_MAX)
        .collect();
    let now = state.clock.now_ms();
    let user_id = user.id;
    let key = new_session_key();
    let session = state
        .catalog(move |c| c.create_session(user_id, &hash, key, &user_agent, now, REFRESH_TTL_MS))
        .await?;
    state.catalog(move |c| c.record_login(user_id, now)).await?;
    tracing::info!(user_id, session_id = session.id, "logged in");
    token_response(&state, &headers, &user, session.id, key, refresh)
}

/// A session family's secret key: 128 bits from the OS-seeded CSPRNG.
pub(crate) fn new_session_key() -> u128 {
    u128::from_le_bytes(random_bytes::<16>())
}

/// 200 with [`TokenResponse`] and both cookies.
pub(crate) fn token_response(
    state: &AppState,
    headers: &HeaderMap,
    user: &UserRecord,
    session_id: u64,
    session_key: u128,
    refresh: String,
) -> ApiResult<Response> {
    let access = state
        .jwt
        .issue(user.id, session_id, session_key, state.clock.now_ms())?;
    let cookies = set_session(&access, &refresh, is_tls(headers));
    let body = TokenResponse {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TTL_S,
        user: user_info(user, &state.catalog),
    };
    let mut response = Json(body).into_response();
    let h = response.headers_mut();
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `err` with `Set-Cookie` headers that delete the session cookies.
fn clearing_cookies(headers: &HeaderMap, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    for c in clear_session(is_tls(headers)) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// The refresh token of the request: a JSON body `{ refresh_token }` (API
/// clients), else the `sm_refresh` cookie, which must come from our origin.
fn presented_refresh_token(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Option<String>> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        let req: RefreshRequest = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                ApiError::Invalid(e.to_string())
            } else {
                ApiError::BadRequest(format!("malformed JSON: {e}"))
            }
        })?;
        return Ok(Some(req.refresh_token));
    }
    match cookies::get(headers, REFRESH_COOKIE) {
        Some(token) => {
            check_same_origin(headers, state)?;
            Ok(Some(token))
        }
        None => Ok(None),
    }
}

#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    operation_id = "refreshSession",
    tag = "auth",
    summary = "New tokens for a refresh token (JSON body, or the sm_refresh cookie with an empty body)",
    request_body = storage::model::RefreshRequest,
    responses((status = 200, body = storage::model::TokenResponse), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody))
)]
async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let Some(old) = presented_refresh_token(&state, &headers, &body)? else {
        return Err(ApiError::Unauthorized("not logged in".into()));
    };
    let new = new_token(REFRESH_TOKEN_PREFIX);
    let (old_hash, new_hash) = (hash_token(&old), hash_token(&new));
    let now = state.clock.now_ms();
    let key_if_none = new_session_key();
    let outcome = state
        .catalog(move |c| c.rotate_refresh(&old_hash, &new_hash, key_if_none, now, REFRESH_TTL_MS))
        .await?;
    match outcome {
        RefreshOutcome::Rotated(session, key) => {
            let user_id = session.user_id;
            let Some(user) = state.catalog(move |c| c.user(user_id)).await? else {
                return Ok(clearing_cookies(
                    &headers,
                    ApiError::Unauthorized("this account no longer exists".into()),
                ));
            };
            token_response(&state, &headers, &user, session.id, key, new)
        }
        RefreshOutcome::Reused {
            session_id,
            user_id,
        } => {
            tracing::warn!(
                user_id,
                session_id,
                "an already-used refresh token was presented: session revoked"
            );
            state.announce(SecurityEvent::SessionRevoked {
                user_id,
                session_id,
            });
            Ok(clearing_cookies(
                &headers,
                ApiError::Unauthorized(
                    "this refresh token was already used, so the session was ended for safety; log in again"
                        .into(),
                ),
            ))
        }
        RefreshOutcome::Invalid => Ok(clearing_cookies(
            &headers,
            ApiError::Unauthorized("the session has ended; log in again".into()),
        )),
    }
}

/// Ends the session of the access token, or else of the refresh token
/// presented; always clears the cookies. 204.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    operation_id = "logOut",
    tag = "auth",
    summary = "End this session and clear the cookies",
    responses((status = 204, description = "Logged out"))
)]
async fn logout(
    State(state): State<AppState>,
    auth: Result<AuthUser, ApiError>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let target = match auth {
        Ok(user) => Some((user.user_id, user.session_id)),
        Err(e @ ApiError::Forbidden(_)) => return Err(e),
        Err(_) => match presented_refresh_token(&state, &headers, &body)? {
            Some(token) => {
                let hash = hash_token(&token);
                state
                    .catalog(move |c| c.session_by_refresh(&hash))
                    .await?
                    .map(|s| (s.user_id, s.id))
            }
            None => None,
        },
    };
    if let Some((user_id, session_id)) = target
        && state
            .catalog(move |c| c.revoke_session(user_id, session_id))
            .await?
    {
        state.announce(SecurityEvent::SessionRevoked {
            user_id,
            session_id,
        });
    }
    Ok(clearing_cookies(&headers, StatusCode::NO_CONTENT))
}

#[utoipa::path(
    post,
    path = "/api/auth/logout-all",
    operation_id = "logOutEverywhere",
    tag = "auth",
    summary = "End every session of the user",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Logged out everywhere"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody))
)]
async fn logout_all(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user_id = user.user_id;
    let revoked = state
        .catalog(move |c| c.revoke_user_sessions(user_id, None))
        .await?;
    for session_id in revoked {
        state.announce(SecurityEvent::SessionRevoked {
            user_id,
            session_id,
        });
    }
    Ok(clearing_cookies(&headers, StatusCode::NO_CONTENT))
}

#[utoipa::path(
    get,
    path = "/api/auth/sessions",
    operation_id = "listSessions",
    tag = "auth",
    summary = "Your open sessions",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::SessionInfo>), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody))
)]
async fn sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    let user_id = user.user_id;
    let list = state.catalog(move |c| c.sessions_of(user_id)).await?;
    let now = state.clock.now_ms();
    Ok(Json(
        list.into_iter()
            .filter(|s| s.expires_ms > now)
            .map(|s| SessionInfo {
                id: s.id,
                created_ms: s.created_ms,
                last_used_ms: s.last_used_ms,
                expires_ms: s.expires_ms,
                user_agent: s.user_agent,
                current: s.id == user.session_id,
            })
            .collect(),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/auth/sessions/{id}",
    operation_id = "revokeSession",
    tag = "auth",
    summary = "End one of your sessions",
    params(("id" = u64, Path, description = "Session id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Ended"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn revoke_session(
    State(state): State<AppState>,
    user: AuthUser,
    Path(session_id): Path<u64>,
) -> ApiResult<StatusCode> {
    let user_id = user.user_id;
    if state
        .catalog(move |c| c.revoke_session(user_id, session_id))
        .await?
    {
        state.announce(SecurityEvent::SessionRevoked {
            user_id,
            session_id,
        });
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no such session".into()))
    }
}
