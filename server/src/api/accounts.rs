//! Managing accounts (admin): `/api/admin/users*`, `/api/admin/invitations`;
//! and accepting an invitation (anyone with the link): `/api/auth/invitation`.
//!
//! - `GET    /admin/users`: every account with its agent count.
//! - `POST   /admin/users`: a new account with a one-time password, or an
//!   invitation link (24 h, single use).
//! - `PATCH  /admin/users/{id}`: disable / enable (disabling ends every
//!   session at once; the agents keep reporting), grant / remove admin.
//! - `POST   /admin/users/{id}/reset-password`: a one-time password; every
//!   session ends; the user must choose a new one at the next log-in.
//! - `DELETE /admin/users/{id}`: with the name typed again; the account's
//!   agents and all their data go too.
//! - `GET    /admin/invitations`: the pending invitations;
//!   `DELETE /admin/invitations/{username}` revokes one (its link stops
//!   working, the name is free again).
//!
//! The last enabled admin can be neither demoted, disabled nor deleted (409).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use storage::catalog::InvitationRecord;
use storage::model::{
    AcceptInvitationRequest, CreateUserRequest, CreatedUser, DeleteUserRequest, Invitation,
    InvitationInfo, ManagedUser, NewUserAccess, OneTimePassword, PendingInvitation,
    UpdateUserRequest, UserInfo,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::{managed_user, managed_users, one_time_password};
use crate::api::auth::{normalize_username, user_info};
use crate::auth::password::check_password_rules;
use crate::auth::tokens::{hash_token, new_token};
use crate::auth::{AdminUser, ClientIp, SecurityEvent};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user, delete_user))
        .routes(routes!(reset_password))
        .routes(routes!(list_invitations))
        .routes(routes!(revoke_invitation))
        .routes(routes!(invitation, accept_invitation))
}

/// Invitation links carry this prefix.
const INVITATION_PREFIX: &str = "smi_";
/// How long an invitation link works.
pub const INVITATION_TTL_MS: i64 = 24 * 3_600_000;

fn user_not_found() -> ApiError {
    ApiError::NotFound("no such user".into())
}

/// Ends `sessions` of `user_id` for open WebSockets too.
fn announce_ended(state: &AppState, user_id: u64, sessions: Vec<u64>) {
    for session_id in sessions {
        state.announce(SecurityEvent::SessionRevoked {
            user_id,
            session_id,
        });
    }
}

#[utoipa::path(
    get,
    path = "/api/admin/users",
    operation_id = "listUsers",
    tag = "admin",
    summary = "Every account (admin)",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::ManagedUser>), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody))
)]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<Vec<ManagedUser>>> {
    Ok(Json(state.catalog(managed_users).await?))
}

#[utoipa::path(
    post,
    path = "/api/admin/users",
    operation_id = "createUser",
    tag = "admin",
    summary = "Create an account with a one-time password, or invite someone (admin)",
    request_body = storage::model::CreateUserRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = storage::model::CreatedUser), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 409, description = "Conflict", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn create_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(req): Json<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    let username = normalize_username(&req.username)?;
    let now = state.clock.now_ms();
    let created = match req.access {
        NewUserAccess::OneTimePassword => {
            let password = one_time_password();
            let hash = state.passwords.hash(password.clone()).await?;
            let user = state
                .catalog(move |c| c.create_user_as_admin(&username, &hash, true, now))
                .await?;
            tracing::info!(
                user_id = user.id,
                by = admin.user_id,
                "account created by the admin"
            );
            CreatedUser {
                user: Some(managed_user(&user, 0)),
                one_time_password: Some(password),
                invitation: None,
            }
        }
        NewUserAccess::Invitation => {
            let token = new_token(INVITATION_PREFIX);
            let hash = hash_token(&token);
            let record = InvitationRecord {
                username: username.clone(),
                created_by: admin.user_id,
                created_ms: now,
                expires_ms: now.saturating_add(INVITATION_TTL_MS),
            };
            let expires_ms = record.expires_ms;
            state
                .catalog(move |c| c.create_invitation(&hash, &record))
                .await?;
            tracing::info!(by = admin.user_id, "invitation created");
            CreatedUser {
                user: None,
                one_time_password: None,
                invitation: Some(Invitation {
                    path: format!("/invite?token={token}"),
                    username,
                    token,
                    expires_ms,
                }),
            }
        }
    };
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get,
    path = "/api/admin/invitations",
    operation_id = "listInvitations",
    tag = "admin",
    summary = "Invitations not used yet and not expired (admin)",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = Vec<storage::model::PendingInvitation>), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody))
)]
async fn list_invitations(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<Vec<PendingInvitation>>> {
    let now = state.clock.now_ms();
    let list = state.catalog(move |c| c.invitations(now)).await?;
    Ok(Json(
        list.into_iter()
            .map(|i| PendingInvitation {
                username: i.username,
                created_ms: i.created_ms,
                expires_ms: i.expires_ms,
            })
            .collect(),
    ))
}

#[utoipa::path(
    patch,
    path = "/api/admin/users/{id}",
    operation_id = "updateUser",
    tag = "admin",
    summary = "Disable or enable an account, grant or remove admin (admin)",
    params(("id" = u64, Path, description = "User id")),
    request_body = storage::model::UpdateUserRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::ManagedUser), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 404, description = "No such resource", body = storage::model::ErrorBody), (status = 409, description = "The last enabled admin", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn update_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<u64>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<Json<ManagedUser>> {
    if req.disabled.is_none() && req.is_admin.is_none() {
        return Err(ApiError::Invalid(
            "nothing to change: give `disabled` or `is_admin`".into(),
        ));
    }
    // Two steps, but never half-applied: the second (disabling) can only be
    // refused for the last enabled admin, and then the first changed nothing
    // (granting admin to an admin) or could not have happened (removing it
    // from the last admin is refused too).
    let (user, ended) = state
        .catalog(move |c| {
            let Some(mut user) = c.user(id)? else {
                return Ok(None);
            };
            let mut ended = Vec::new();
            if let Some(admin_flag) = req.is_admin
                && admin_flag != user.is_admin
            {
                user = match c.set_user_admin(id, admin_flag)? {
                    Some(u) => u,
                    None => return Ok(None),
                };
            }
            if let Some(disabled) = req.disabled
                && disabled != user.disabled
            {
                match c.set_user_disabled(id, disabled)? {
                    Some((u, e)) => {
                        user = u;
                        ended = e;
                    }
                    None => return Ok(None),
                }
            }
            let count = c.agents_of(id)?.len() as u64;
            let view = ManagedUser {
                two_factor: c.has_two_factor(id),
                ..managed_user(&user, count)
            };
            Ok(Some((view, ended)))
        })
        .await?
        .ok_or_else(user_not_found)?;
    announce_ended(&state, id, ended);
    tracing::info!(
        user_id = id,
        by = admin.user_id,
        disabled = user.disabled,
        admin = user.is_admin,
        "account changed by the admin"
    );
    Ok(Json(user))
}

#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/reset-password",
    operation_id = "resetUserPassword",
    tag = "admin",
    summary = "A one-time password for an account; its sessions end (admin)",
    params(("id" = u64, Path, description = "User id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::OneTimePassword), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 404, description = "No such resource", body = storage::model::ErrorBody))
)]
async fn reset_password(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<u64>,
) -> ApiResult<Json<OneTimePassword>> {
    if state.catalog(move |c| c.user(id)).await?.is_none() {
        return Err(user_not_found());
    }
    let password = one_time_password();
    let hash = state.passwords.hash(password.clone()).await?;
    let (user, ended) = state
        .catalog(move |c| c.reset_password(id, &hash))
        .await?
        .ok_or_else(user_not_found)?;
    announce_ended(&state, id, ended);
    tracing::info!(
        user_id = id,
        by = admin.user_id,
        "password reset by the admin"
    );
    Ok(Json(OneTimePassword {
        username: user.username,
        one_time_password: password,
    }))
}

#[utoipa::path(
    delete,
    path = "/api/admin/invitations/{username}",
    operation_id = "revokeInvitation",
    tag = "admin",
    summary = "Revoke a pending invitation: its link stops working (admin)",
    params(("username" = String, Path, description = "The invited name")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Revoked"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 404, description = "No pending invitation for that name", body = storage::model::ErrorBody))
)]
async fn revoke_invitation(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    let username = username.trim().to_lowercase();
    let now = state.clock.now_ms();
    let name = username.clone();
    if !state
        .catalog(move |c| c.revoke_invitation(&name, now))
        .await?
    {
        return Err(ApiError::NotFound(
            "no pending invitation for that name".into(),
        ));
    }
    tracing::info!(by = admin.user_id, "invitation revoked by the admin");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/admin/users/{id}",
    operation_id = "deleteUser",
    tag = "admin",
    summary = "Delete an account with its agents and all their data (admin)",
    params(("id" = u64, Path, description = "User id")),
    request_body = storage::model::DeleteUserRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Deleted"), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 404, description = "No such resource", body = storage::model::ErrorBody), (status = 409, description = "The last enabled admin", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn delete_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<u64>,
    Json(req): Json<DeleteUserRequest>,
) -> ApiResult<StatusCode> {
    let user = state
        .catalog(move |c| c.user(id))
        .await?
        .ok_or_else(user_not_found)?;
    if req.confirm_username.trim().to_lowercase() != user.username {
        return Err(ApiError::Invalid(
            "confirm_username must be the account's name, typed again".into(),
        ));
    }
    let deleted = state
        .catalog(move |c| c.delete_user(id))
        .await?
        .ok_or_else(user_not_found)?;
    announce_ended(&state, id, deleted.session_ids);
    for agent_id in deleted.agent_ids {
        state.on_agent_deleted(id, agent_id).await?;
    }
    tracing::info!(
        user_id = id,
        by = admin.user_id,
        "account deleted by the admin"
    );
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TokenQuery {
    /// The token of the invitation link.
    token: String,
}

#[utoipa::path(
    get,
    path = "/api/auth/invitation",
    operation_id = "getInvitation",
    tag = "auth",
    summary = "Who an invitation link is for",
    params(TokenQuery),
    responses((status = 200, body = storage::model::InvitationInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 404, description = "Unknown or used link", body = storage::model::ErrorBody), (status = 410, description = "Expired link", body = storage::model::ErrorBody), (status = 429, description = "Too many attempts; see Retry-After", body = storage::model::ErrorBody))
)]
async fn invitation(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> ApiResult<Json<InvitationInfo>> {
    // No rate limit: a lookup by a 256-bit token's hash, nothing to guess.
    let hash = hash_token(&q.token);
    let inv = state
        .catalog(move |c| c.invitation(&hash))
        .await?
        .ok_or_else(|| {
            crate::auth::catalog_error(storage::catalog::CatalogError::InvitationInvalid)
        })?;
    if inv.expires_ms <= state.clock.now_ms() {
        return Err(crate::auth::catalog_error(
            storage::catalog::CatalogError::InvitationExpired,
        ));
    }
    Ok(Json(InvitationInfo {
        username: inv.username,
        expires_ms: inv.expires_ms,
    }))
}

#[utoipa::path(
    post,
    path = "/api/auth/invitation",
    operation_id = "acceptInvitation",
    tag = "auth",
    summary = "Accept an invitation: create the account with your password",
    request_body = storage::model::AcceptInvitationRequest,
    responses((status = 201, body = storage::model::UserInfo), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 404, description = "Unknown or used link", body = storage::model::ErrorBody), (status = 409, description = "Conflict", body = storage::model::ErrorBody), (status = 410, description = "Expired link", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody), (status = 429, description = "Too many attempts; see Retry-After", body = storage::model::ErrorBody))
)]
async fn accept_invitation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<AcceptInvitationRequest>,
) -> ApiResult<(StatusCode, Json<UserInfo>)> {
    check_password_rules(&req.password, "password")?;
    let hash = hash_token(&req.token);
    // Refuse a bad link before spending a hash; the catalog checks again.
    let now = state.clock.now_ms();
    match state.catalog(move |c| c.invitation(&hash)).await? {
        None => {
            return Err(crate::auth::catalog_error(
                storage::catalog::CatalogError::InvitationInvalid,
            ));
        }
        Some(inv) if inv.expires_ms <= now => {
            return Err(crate::auth::catalog_error(
                storage::catalog::CatalogError::InvitationExpired,
            ));
        }
        // Accepting is a registration: the same limits on hashing.
        Some(inv) => state.limits.check_register(&inv.username, ip)?,
    }
    let password_hash = state.passwords.hash(req.password).await?;
    let user = state
        .catalog(move |c| c.accept_invitation(&hash, &password_hash, now))
        .await?;
    tracing::info!(user_id = user.id, "invitation accepted: account created");
    Ok((StatusCode::CREATED, Json(user_info(&user, &state.catalog))))
}
