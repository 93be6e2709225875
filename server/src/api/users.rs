//! The current user: `GET /api/users/me`, `POST /api/users/me/password`.

use axum::extract::State;
use axum::http::StatusCode;
use storage::model::{ChangePasswordRequest, UserInfo};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::user_info;
use crate::auth::password::check_password_rules;
use crate::auth::{AuthUser, SecurityEvent};
use crate::error::{ApiError, ApiResult, Json};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_password))
}

#[utoipa::path(
    get,
    path = "/api/users/me",
    operation_id = "getCurrentUser",
    tag = "users",
    summary = "The logged-in user",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::UserInfo), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody))
)]
async fn me(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<UserInfo>> {
    let id = user.user_id;
    match state.catalog(move |c| c.user(id)).await? {
        Some(record) => Ok(Json(user_info(&record, &state.catalog))),
        None => Err(ApiError::Unauthorized(
            "this account no longer exists".into(),
        )),
    }
}

/// Checks the current password, stores the new one, and ends every other
/// session of the user (this one stays logged in). 204.
#[utoipa::path(
    post,
    path = "/api/users/me/password",
    operation_id = "changePassword",
    tag = "users",
    summary = "Change your password; other sessions end",
    request_body = storage::model::ChangePasswordRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Changed"), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    check_password_rules(&req.new_password, "new_password")?;
    let id = user.user_id;
    let Some(record) = state.catalog(move |c| c.user(id)).await? else {
        return Err(ApiError::Unauthorized(
            "this account no longer exists".into(),
        ));
    };
    state.limits.check_account(&record.username)?;
    if !state
        .passwords
        .verify(req.current_password, Some(record.password_hash))
        .await?
    {
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    let hash = state.passwords.hash(req.new_password).await?;
    let keep = user.session_id;
    let revoked = state
        .catalog(move |c| {
            c.set_password_hash(id, &hash)?;
            c.revoke_user_sessions(id, Some(keep))
        })
        .await?;
    for session_id in revoked {
        state.announce(SecurityEvent::SessionRevoked {
            user_id: id,
            session_id,
        });
    }
    tracing::info!(user_id = id, "password changed; other sessions ended");
    Ok(StatusCode::NO_CONTENT)
}
