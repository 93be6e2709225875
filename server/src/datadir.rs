//! The data directory: created on first start, locked for the lifetime of the
//! process so two servers never write the same files.

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
        std::fs::create_dir_all(path)
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

    #[test]
    fn a_file_is_not_a_data_directory() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = DataDir::open(file.path()).unwrap_err().to_string();
        assert!(err.contains("is not a directory"), "{err}");
    }
}
