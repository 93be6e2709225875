//! `POST /api/admin/backup`: the admin downloads a backup (`.tar.zst`).

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::backup::{self, Staging};
use crate::auth::extract::AdminUser;
use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(download_backup))
}

/// Sends what is written to it as body chunks; fails once the client is gone.
struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[utoipa::path(
    post,
    path = "/api/admin/backup",
    operation_id = "downloadBackup",
    tag = "admin",
    summary = "Download a consistent online backup of the data directory (admin)",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The backup, a .tar.zst archive", content_type = "application/zstd"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody))
)]
async fn download_backup(
    AdminUser(admin): AdminUser,
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Response, ApiError> {
    // The snapshot first, so a failure is a proper error status.
    let s = state.clone();
    let (stage, manifest) = tokio::task::spawn_blocking(move || {
        let stage = Staging::new(s.data_dir.path(), "backup")?;
        let m = backup::snapshot_to(&s.catalog, &s.engine(), s.clock.now_ms(), stage.path())?;
        Ok::<_, anyhow::Error>((stage, m))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    tracing::info!(
        user_id = admin.user_id,
        created_ms = manifest.created_ms,
        "backup downloaded"
    );
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let filename = format!("statusmonitor-backup-{}.tar.zst", manifest.created_ms);
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(256 << 10, ChannelWriter(tx.clone()));
        let result = backup::write_archive(stage.path(), &manifest, &mut out);
        drop(out);
        if let Err(e) = result {
            tracing::warn!(error = %format!("{e:#}"), "backup download broken off");
            // Ends the body with an error: the client sees a broken transfer.
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
        drop::<Staging>(stage);
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
            // Already compressed: keeps the compression layer off it.
            (header::CONTENT_ENCODING, "identity".to_string()),
        ],
        body,
    )
        .into_response())
}
