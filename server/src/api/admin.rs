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
    let s = state.catalog(|c| c.server_settings()).await?;
    Ok(Json(AdminSettings {
        open_registration: s.open_registration,
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
    responses((status = 200, body = storage::model::AdminSettings), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody))
)]
async fn put_settings(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(req): Json<AdminSettings>,
) -> ApiResult<Json<AdminSettings>> {
    let record = ServerSettingsRecord {
        open_registration: req.open_registration,
    };
    state
        .catalog(move |c| c.set_server_settings(&record))
        .await?;
    tracing::info!(
        user_id = admin.user_id,
        open_registration = req.open_registration,
        "server settings changed"
    );
    Ok(Json(req))
}
