//! Server settings for the admin: `GET/PUT /api/admin/settings`.

use axum::extract::State;
use storage::catalog::ServerSettingsRecord;
use storage::model::AdminSettings;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AdminUser;
use crate::error::{ApiResult, Json};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings))
}

#[utoipa::path(
    get,
    path = "/api/admin/settings",
    operation_id = "getServerSettings",
    tag = "admin",
    summary = "Server settings (admin)",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::AdminSettings), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody))
)]
async fn get_settings(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<AdminSettings>> {
    let (s, policy) = state
        .catalog(|c| Ok((c.server_settings()?, c.account_policy())))
        .await?;
    Ok(Json(AdminSettings {
        open_registration: s.open_registration,
        require_two_factor: policy.require_two_factor,
    }))
}

#[utoipa::path(
    put,
    path = "/api/admin/settings",
    operation_id = "updateServerSettings",
    tag = "admin",
    summary = "Change server settings (admin)",
    request_body = storage::model::AdminSettings,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::AdminSettings), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 409, description = "Requiring two-factor log-in without having it", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn put_settings(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(req): Json<AdminSettings>,
) -> ApiResult<Json<AdminSettings>> {
    if req.require_two_factor && !state.catalog.has_two_factor(admin.user_id) {
        return Err(crate::error::ApiError::Conflict(
            "turn on two-factor log-in for your own account first (Account page), \
             then require it for everyone"
                .into(),
        ));
    }
    let record = ServerSettingsRecord {
        open_registration: req.open_registration,
    };
    let policy = storage::catalog::AccountPolicyRecord {
        require_two_factor: req.require_two_factor,
    };
    state
        .catalog(move |c| {
            c.set_server_settings(&record)?;
            c.set_account_policy(policy)
        })
        .await?;
    tracing::info!(
        user_id = admin.user_id,
        open_registration = req.open_registration,
        require_two_factor = req.require_two_factor,
        "server settings changed"
    );
    Ok(Json(req))
}
