//! Server settings for the admin: `GET/PUT /api/admin/settings`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use storage::catalog::ServerSettingsRecord;
use storage::model::AdminSettings;

use crate::auth::AdminUser;
use crate::error::{ApiResult, Json};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/settings", get(get_settings).put(put_settings))
}

async fn get_settings(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> ApiResult<Json<AdminSettings>> {
    let s = state.catalog(|c| c.server_settings()).await?;
    Ok(Json(AdminSettings {
        open_registration: s.open_registration,
    }))
}

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
