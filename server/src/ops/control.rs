//! The control socket: `DATA_DIR/control.sock`, mode 0600, through which
//! `statusmonitor backup` and `statusmonitor user` reach a running server. Whoever may open the
//! socket may read the data directory anyway: the file's permission is the
//! authority, no token needed.
//!
//! Protocol: the client sends one line, `backup`. The server answers one
//! line, `OK <manifest JSON>` followed by the archive until it closes the
//! connection, or `ERR <message>`. Or the line is `user list` or
//! `user reset-password NAME`, answered by one line, `OK <JSON>` or
//! `ERR <message>` (see `crate::accounts::cli`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::backup::{self, Manifest, Staging};
use crate::state::AppState;

/// File name of the socket in the data directory.
pub const SOCKET: &str = "control.sock";

/// Binds the socket (replacing a stale one: the caller holds the data
/// directory's lock) and answers clients until the process ends.
#[cfg(unix)]
pub fn spawn(state: AppState) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = state.data_dir.path().join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .with_context(|| format!("cannot create the control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let state = state.clone();
                    let stream = match stream.into_std() {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(error = %e, "control socket: cannot take the connection");
                            continue;
                        }
                    };
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = serve_one(&state, stream) {
                            tracing::warn!(error = %format!("{e:#}"), "control socket request failed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(path)
}

#[cfg(unix)]
fn serve_one(state: &AppState, stream: std::os::unix::net::UnixStream) -> anyhow::Result<()> {
    stream.set_nonblocking(false)?;
    let mut line = String::new();
    BufReader::new((&stream).take_line_limit()).read_line(&mut line)?;
    let mut out = std::io::BufWriter::new(&stream);
    if let Some(request) = line.trim().strip_prefix("user ") {
        // `statusmonitor user ...`: one line back, `OK <json>` or `ERR ...`.
        match crate::accounts::cli::serve_control(state, request) {
            Ok(json) => writeln!(out, "OK {json}")?,
            Err(e) => writeln!(out, "ERR {}", format!("{e:#}").replace('\n', " "))?,
        }
        out.flush()?;
        return Ok(());
    }
    if line.trim() != "backup" {
        writeln!(
            out,
            "ERR unknown request {:?}; known: `backup`, `user list`, `user reset-password NAME`",
            line.trim()
        )?;
        return Ok(());
    }
    let staged = Staging::new(state.data_dir.path(), "backup").and_then(|stage| {
        let m = backup::snapshot_to(
            &state.catalog,
            &state.engine(),
            state.clock.now_ms(),
            stage.path(),
        )?;
        Ok((stage, m))
    });
    match staged {
        Err(e) => {
            writeln!(out, "ERR {}", format!("{e:#}").replace('\n', " "))?;
            Err(e)
        }
        Ok((stage, manifest)) => {
            writeln!(out, "OK {}", serde_json::to_string(&manifest)?)?;
            backup::write_archive(stage.path(), &manifest, &mut out)?;
            out.flush()?;
            tracing::info!(
                created_ms = manifest.created_ms,
                "backup sent over the control socket"
            );
            Ok(())
        }
    }
}

#[cfg(unix)]
trait TakeLine: std::io::Read + Sized {
    /// At most one short line.
    fn take_line_limit(self) -> std::io::Take<Self> {
        self.take(256)
    }
}
#[cfg(unix)]
impl<R: std::io::Read> TakeLine for R {}

/// Asks the server holding `data_dir` for a backup, written to `out`.
#[cfg(unix)]
pub fn request_backup(data_dir: &Path, out: &mut impl Write) -> anyhow::Result<Manifest> {
    let path = data_dir.join(SOCKET);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).with_context(|| {
        format!(
            "a server holds {} but its control socket {} does not answer (is it an older \
             version? stop it and run backup again, or use POST /api/admin/backup)",
            data_dir.display(),
            path.display()
        )
    })?;
    stream.write_all(b"backup\n")?;
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head)?;
    if let Some(msg) = head.strip_prefix("ERR ") {
        bail!("the server could not take the backup: {}", msg.trim());
    }
    let Some(json) = head.strip_prefix("OK ") else {
        bail!(
            "unexpected answer from the control socket: {:?}",
            head.trim()
        );
    };
    let manifest: Manifest = serde_json::from_str(json.trim())?;
    std::io::copy(&mut reader, out)?;
    Ok(manifest)
}

#[cfg(not(unix))]
pub fn request_backup(data_dir: &Path, _out: &mut impl Write) -> anyhow::Result<Manifest> {
    bail!(
        "{} is in use by a running server; on this system use POST /api/admin/backup",
        data_dir.display()
    )
}
