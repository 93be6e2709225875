//! The data directory: created on first start, locked for the lifetime of the
//! process so two servers never write the same files, and private to the
//! user the server runs as: it holds the JWT signing secret and every
//! password hash, so another local user who could read `catalog.redb` could
//! sign himself an admin token. The directory is created 0700 (and an
//! existing one closed to 0700, with a warning), files in it 0600 (the
//! binary sets the umask to 077 at start, see `main.rs`; files found
//! readable by others are fixed with a warning too).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "statusmonitor.lock";

/// The data directory is locked by another process (a running server).
#[derive(Debug, thiserror::Error)]
#[error("data directory {} is in use by another statusmonitor process", path.display())]
pub struct InUse {
    pub path: PathBuf,
}

/// An open, exclusively locked data directory. The lock is released when this
/// is dropped (or the process dies: it is an OS file lock, never stale).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates `path` if needed, takes the exclusive lock and brings the
    /// directory to this build's format (see [`crate::ops::format`]), or
    /// explains why not.
    pub fn open(path: &Path) -> anyhow::Result<DataDir> {
        let dir = DataDir::lock(path)?;
        crate::ops::format::upgrade_or_refuse(dir.path())?;
        Ok(dir)
    }

    /// Creates `path` if needed and takes the exclusive lock, or explains
    /// why not; the format is not looked at (restore replaces it).
    pub fn lock(path: &Path) -> anyhow::Result<DataDir> {
        if path.exists() && !path.is_dir() {
            bail!("data directory {} is not a directory", path.display());
        }
        create_private_dir(path)
            .with_context(|| format!("cannot create data directory {}", path.display()))?;
        let path = path
            .canonicalize()
            .with_context(|| format!("cannot resolve data directory {}", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("data directory {} is not writable", path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(InUse { path }.into()),
            Err(TryLockError::Error(e)) => {
                return Err(e)
                    .with_context(|| format!("cannot lock data directory {}", path.display()));
            }
        }
        // A probe write: a read-only mount lets us open the lock file but not
        // create the stores; say so now rather than halfway through start-up.
        make_private(&path);
        let probe = path.join(".write-probe");
        std::fs::write(&probe, b"ok")
            .with_context(|| format!("data directory {} is not writable", path.display()))?;
        let _ = std::fs::remove_file(&probe);
        Ok(DataDir { path, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Mode bits of the group and of others: none may be set in the data directory.
#[cfg(unix)]
const SHARED_BITS: u32 = 0o077;

/// `OpenOptions` for a new file that only its owner may read (0600 on Unix,
/// whatever the umask): backups and anything else holding secrets.
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// `create_dir_all`, the directories it creates 0700 on Unix.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Takes the group's and others' access away from `dir` and everything in it
/// (symbolic links are not followed), with one warning per kind of finding.
/// Failing to fix a mode is a warning too: the server still starts.
#[cfg(unix)]
fn make_private(dir: &Path) {
    for problem in close_shared_modes(dir) {
        tracing::warn!("{problem}");
    }
}

#[cfg(not(unix))]
fn make_private(_dir: &Path) {}

/// What [`make_private`] found and did, one message per finding.
#[cfg(unix)]
pub fn close_shared_modes(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut problems = Vec::new();
    let close = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !SHARED_BITS))
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.permissions().mode() & SHARED_BITS != 0 => {
            let mode = meta.permissions().mode() & 0o7777;
            problems.push(match close(dir, mode) {
                Ok(()) => format!(
                    "data directory {} was open to other users (mode {mode:04o}); changed it to \
                     {:04o}: it holds the JWT signing secret and the password hashes",
                    dir.display(),
                    mode & !SHARED_BITS
                ),
                Err(e) => format!(
                    "data directory {} is open to other users (mode {mode:04o}) and cannot be \
                     changed ({e}): any local user may read the JWT signing secret; run \
                     `chmod 700 {}`",
                    dir.display(),
                    dir.display()
                ),
            });
        }
        Ok(_) => {}
        Err(e) => problems.push(format!("cannot read the mode of {}: {e}", dir.display())),
    }
    let (mut fixed, mut failed) = (Vec::new(), Vec::new());
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                continue;
            }
            if meta.is_dir() {
                todo.push(path.clone());
            }
            let mode = meta.permissions().mode() & 0o7777;
            if mode & SHARED_BITS != 0 {
                match close(&path, mode) {
                    Ok(()) => fixed.push(path),
                    Err(_) => failed.push(path),
                }
            }
        }
    }
    if let Some(first) = fixed.first() {
        problems.push(format!(
            "entries of the data directory readable by other users: {} (e.g. {}); their \
             group and other permissions were removed",
            fixed.len(),
            first.display()
        ));
    }
    if let Some(first) = failed.first() {
        problems.push(format!(
            "entries of the data directory readable by other users that cannot be \
             changed: {} (e.g. {}); run `chmod -R go= {}`",
            failed.len(),
            first.display(),
            dir.display()
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open(dir.path()).unwrap();
        let err = DataDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another statusmonitor"), "{err}");
        assert!(
            err.contains(&first.path().display().to_string()),
            "names the directory: {err}"
        );
        drop(first);
        DataDir::open(dir.path()).expect("free again after the first is dropped");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_directory_is_private_and_an_open_one_is_closed_with_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let parent = tempfile::tempdir().unwrap();
        let fresh = parent.path().join("a").join("data");
        drop(DataDir::open(&fresh).unwrap());
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&parent.path().join("a")), 0o700);

        let open = parent.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(open.join("tsdb")).unwrap();
        std::fs::set_permissions(open.join("tsdb"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        std::fs::write(open.join("tsdb").join("x"), b"secret").unwrap();
        std::fs::set_permissions(
            open.join("tsdb").join("x"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let problems = close_shared_modes(&open);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("mode 0755") && problems[0].contains("0700"));
        assert!(problems[1].contains("other users: 2 (e.g."), "{problems:?}");
        assert_eq!(mode(&open), 0o700);
        assert_eq!(mode(&open.join("tsdb")), 0o700);
        assert_eq!(mode(&open.join("tsdb").join("x")), 0o600);
        assert!(close_shared_modes(&open).is_empty(), "nothing left to say");
    }

    #[test]
    fn a_file_is_not_a_data_directory() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = DataDir::open(file.path()).unwrap_err().to_string();
        assert!(err.contains("is not a directory"), "{err}");
    }
}
