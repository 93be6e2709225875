//! Operations on the data directory: format versions and upgrades
//! ([`format`]), online backup and restore ([`backup`], reachable through the
//! control socket [`control`] and `POST /api/admin/backup` [`api`]), and the
//! integrity check ([`check`]). The commands `backup`, `restore` and `check`
//! of the binary are here too. See `docs/OPERATIONS.md`.

pub mod api;
pub mod backup;
pub mod check;
pub mod control;
pub mod format;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::datadir::{DataDir, InUse};

/// `statusmonitor backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// File to write the backup to (a .tar.zst); it must not exist.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// The data directory: of a running server (asked through its control
    /// socket) or of a stopped one (read directly).
    #[arg(long, env = "STATUSMONITOR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server's TOML file: its `data_dir` is used when --data-dir (or
    /// STATUSMONITOR_DATA_DIR) is not given [default data directory: ./data].
    #[arg(long, env = "STATUSMONITOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `statusmonitor restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The backup (.tar.zst) to restore.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Directory to restore into: absent or empty, unless --force.
    #[arg(long, env = "STATUSMONITOR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server's TOML file: its `data_dir` is used when --data-dir (or
    /// STATUSMONITOR_DATA_DIR) is not given [default data directory: ./data].
    #[arg(long, env = "STATUSMONITOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Replace everything in a non-empty directory (no server may be using it).
    #[arg(long)]
    pub force: bool,
}

/// `statusmonitor check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The data directory of a stopped server.
    #[arg(long, env = "STATUSMONITOR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server's TOML file: its `data_dir` is used when --data-dir (or
    /// STATUSMONITOR_DATA_DIR) is not given [default data directory: ./data].
    #[arg(long, env = "STATUSMONITOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl BackupArgs {
    /// See [`crate::config::data_dir_of`].
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        crate::config::data_dir_of(self.data_dir.clone(), self.config.as_deref())
    }
}

impl RestoreArgs {
    /// See [`crate::config::data_dir_of`].
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        crate::config::data_dir_of(self.data_dir.clone(), self.config.as_deref())
    }
}

impl CheckArgs {
    /// See [`crate::config::data_dir_of`].
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        crate::config::data_dir_of(self.data_dir.clone(), self.config.as_deref())
    }
}

/// Writes to `to.partial`, then renames: a failed backup never looks finished.
fn write_file_atomically(
    to: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> anyhow::Result<backup::Manifest>,
) -> anyhow::Result<backup::Manifest> {
    if to.exists() {
        bail!("{} exists; choose a new file name", to.display());
    }
    let mut partial = to.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // 0600 whatever the umask: the archive holds the JWT secret and every
    // password hash (see docs/security.md, "Files and permissions"). A
    // leftover of a broken run goes first, so the mode is ours.
    let _ = std::fs::remove_file(&partial);
    let file = crate::datadir::private_file_options()
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let result = f(&mut out).and_then(|m| {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        // A download that broke off mid-way fails here, not at restore time.
        let read_back = backup::verify_archive(&partial)?;
        if read_back != m {
            bail!("the archive's manifest differs from the one announced");
        }
        std::fs::rename(&partial, to)?;
        Ok(m)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// A directory to back up or check must exist: a typo must not create one.
fn existing(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("data directory {} does not exist", dir.display());
    }
    Ok(())
}

/// `statusmonitor backup --to FILE [--data-dir DIR]`.
pub fn run_backup(args: &BackupArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir()?;
    existing(&data_dir)?;
    let manifest = write_file_atomically(&args.to, |out| {
        match DataDir::lock(&data_dir) {
            Ok(dir) => {
                // A stopped server: open the stores ourselves (this upgrades an older format).
                format::upgrade_or_refuse(dir.path())?;
                let state = offline_stores(dir.path())?;
                let now = storage::clock::Clock::now_ms(&storage::clock::SystemClock);
                backup::backup(&state.0, &state.1, dir.path(), now, out)
            }
            Err(e) if e.downcast_ref::<InUse>().is_some() => {
                control::request_backup(&data_dir, out)
            }
            Err(e) => Err(e),
        }
    })?;
    println!(
        "backup of {} written to {} ({} catalog records, {} time-series entries)",
        data_dir.display(),
        args.to.display(),
        manifest.catalog_records,
        manifest.tsdb_entries
    );
    Ok(())
}

/// The catalog and the engine of a stopped server, without background work.
fn offline_stores(
    dir: &Path,
) -> anyhow::Result<(storage::catalog::Catalog, storage::tsdb::Engine)> {
    let catalog = storage::catalog::Catalog::open_in(dir)?;
    let engine = storage::tsdb::Engine::open(
        &dir.join("tsdb"),
        storage::tsdb::EngineConfig::default(),
        std::sync::Arc::new(storage::clock::SystemClock),
    )
    .context("cannot open the time-series store")?;
    Ok((catalog, engine))
}

/// `statusmonitor restore --from FILE --data-dir DIR [--force]`.
pub fn run_restore(args: &RestoreArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir()?;
    let m = backup::restore(&args.from, &data_dir, args.force)?;
    println!(
        "restored {} (taken at {} ms, by {}) into {}",
        args.from.display(),
        m.created_ms,
        m.created_by,
        data_dir.display()
    );
    let dir = DataDir::lock(&data_dir)?;
    let report = check::check_dir(dir.path());
    print!("{}", report.render());
    if !report.is_clean() {
        bail!("the restored data has damage (listed above)");
    }
    Ok(())
}

/// `statusmonitor check --data-dir DIR`.
pub fn run_check(args: &CheckArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir()?;
    existing(&data_dir)?;
    let dir = DataDir::lock(&data_dir).map_err(|e| {
        if e.downcast_ref::<InUse>().is_some() {
            e.context(
                "check reads files a running server is writing: stop the server first \
                 (or check a restored backup)",
            )
        } else {
            e
        }
    })?;
    let report = check::check_dir(dir.path());
    print!("{}", report.render());
    if !report.is_clean() {
        bail!("damage found in {} (listed above)", dir.path().display());
    }
    Ok(())
}
