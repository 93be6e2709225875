//! `GET /api/health`: liveness, version and storage status.

use axum::{Router, extract::State, routing::get};
use storage::model::{Health, StorageHealth};

use crate::config::VERSION;
use crate::error::Json;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    let data_dir = state.data_dir.path();
    let storage_status = if data_dir.is_dir() {
        "ok".to_string()
    } else {
        format!("data directory {} is gone", data_dir.display())
    };
    Json(Health {
        status: if storage_status == "ok" {
            "ok".into()
        } else {
            "degraded".into()
        },
        version: env!("CARGO_PKG_VERSION").to_string(),
        revision: VERSION
            .split_once('(')
            .map(|(_, r)| r.trim_end_matches(')').to_string()),
        uptime_s: state.started.elapsed().as_secs(),
        storage: StorageHealth {
            status: storage_status,
            data_dir: data_dir.display().to_string(),
        },
    })
}
