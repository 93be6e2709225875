//! `GET /api/health`: liveness, version, storage status (the catalog and the
//! engine are asked, not just the directory looked at; a full disk that
//! stops ingest makes it `degraded` with the reason), compactor lag and the
//! remote-write backlog.

use axum::extract::State;
use storage::model::{Health, StorageBytes, StorageHealth};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::VERSION;
use crate::error::{ApiError, Json};
use crate::state::AppState;

/// Compactor lag above this makes the server "degraded": the 1-minute tier
/// then trails by hours, so charts of the last days miss data.
pub const COMPACTOR_LAG_LIMIT_S: u64 = 3 * 3600;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

#[utoipa::path(
    get,
    path = "/api/health",
    operation_id = "getHealth",
    tag = "health",
    summary = "Liveness, version, storage, compactor lag, remote-write backlog",
    responses((status = 200, body = storage::model::Health))
)]
async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let probe = state.clone();
    let (catalog, engine, stats, free_bytes) = tokio::task::spawn_blocking(move || {
        // One read transaction on the catalog.
        let catalog = match probe.catalog.server_settings() {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("catalog cannot be read: {e}"),
        };
        // The engine's statistics touch every agent's state and keyspace.
        let engine = probe.engine();
        let stats = engine.stats();
        // And one read of stored data (the newest moment of one agent).
        let now_ms = probe.clock.now_ms();
        let read = match engine.agents().first() {
            Some(&agent) => engine.recent_reports(agent, now_ms).map(|_| ()),
            None => Ok(()),
        };
        drop(engine);
        // Reads work while the disk is full; writes do not.
        let ingest = probe.tsdb.degraded_reason();
        let engine = match (read, ingest) {
            (Err(e), _) => format!("time-series store cannot be read: {e}"),
            (Ok(()), Some(reason)) => reason,
            (Ok(()), None) if !probe.data_dir.path().join("tsdb").is_dir() => {
                "time-series directory is gone".to_string()
            }
            (Ok(()), None) => "ok".to_string(),
        };
        (catalog, engine, stats, probe.tsdb.free_bytes())
    })
    .await
    .map_err(ApiError::internal)?;
    let data_dir = state.data_dir.path();
    let compactor_lag_s = u64::try_from(stats.compactor_lag_ms / 1000).unwrap_or(0);
    let storage_status = if !data_dir.is_dir() {
        format!("data directory {} is gone", data_dir.display())
    } else if catalog != "ok" {
        catalog.clone()
    } else if engine != "ok" {
        engine.clone()
    } else if compactor_lag_s > COMPACTOR_LAG_LIMIT_S {
        format!("compactor is {compactor_lag_s} s behind")
    } else {
        "ok".to_string()
    };
    Ok(Json(Health {
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
            catalog,
            engine,
            compactor_lag_s,
            bytes: StorageBytes {
                raw: stats.tier_bytes[0],
                minute: stats.tier_bytes[1],
                hour: stats.tier_bytes[2],
                head: stats.head_bytes,
                journal: stats.journal_bytes,
                meta: stats.meta_bytes,
            },
            series: u64::try_from(stats.series).unwrap_or(u64::MAX),
            free_bytes,
        },
        remote_write: state.remote_write.health(),
    }))
}
