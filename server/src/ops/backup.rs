//! Online backup into a `.tar.zst`, and restore.
//!
//! A backup is taken while the server runs: maintenance is held off, then,
//! with every catalog writer held off for the moment it takes, a snapshot of
//! the time series (fjall, all keyspaces at one sequence number) and one of
//! the catalog (a redb read transaction) are taken; writers go on at once.
//! Both snapshots are then copied logically into fresh stores in a staging
//! directory inside the data directory, which is packed as a tar and
//! compressed with zstd. The archive starts with `MANIFEST.json`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use storage::catalog::{CATALOG_FILE, Catalog};
use storage::tsdb::Engine;

use super::format::{DATA_FORMAT_VERSION, read_version, write_version};
use crate::datadir::{DataDir, LOCK_FILE};

/// Name of the manifest, the archive's first entry.
pub const MANIFEST: &str = "MANIFEST.json";
/// What `kind` says in every manifest.
pub const KIND: &str = "statusmonitor-backup";
/// The archive layout this build writes and reads.
pub const BACKUP_VERSION: u32 = 1;
/// zstd level of the archive: fast, and the stores are dense already.
const ZSTD_LEVEL: i32 = 3;

/// The backup's description, first in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub kind: String,
    pub backup_version: u32,
    /// Format of the data directory inside (see [`super::format`]).
    pub data_format: u32,
    /// `tsdb/FORMAT` and the catalog's record version inside.
    pub tsdb_format: u32,
    pub catalog_record_version: u8,
    /// When the snapshots were taken (ms since the Unix epoch, server clock).
    pub created_ms: i64,
    /// `statusmonitor --version` of the writer.
    pub created_by: String,
    pub catalog_records: u64,
    pub tsdb_entries: u64,
}

/// A directory that is removed when dropped.
#[derive(Debug)]
pub struct Staging(PathBuf);

impl Staging {
    /// A fresh hidden directory `.<what>-<pid>-<nanos>` in `parent`.
    pub fn new(parent: &Path, what: &str) -> anyhow::Result<Staging> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = parent.join(format!(".{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Staging(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Snapshots the catalog and the time series at one instant and writes them
/// as a complete data directory into `stage` (empty). Blocking.
pub fn snapshot_to(
    catalog: &Catalog,
    engine: &Engine,
    now_ms: i64,
    stage: &Path,
) -> anyhow::Result<Manifest> {
    let maintenance_paused = engine.begin_backup();
    let (catalog_snap, tsdb_snap) = catalog
        .frozen_snapshot(|| maintenance_paused.snapshot())
        .context("cannot take the catalog snapshot")?;
    let catalog_records = catalog_snap
        .write_to(&stage.join(CATALOG_FILE))
        .context("cannot copy the catalog")?;
    drop(catalog_snap);
    let tsdb_entries = tsdb_snap
        .write_to(&stage.join("tsdb"))
        .context("cannot copy the time series")?;
    drop(tsdb_snap);
    drop(maintenance_paused);
    write_version(stage, DATA_FORMAT_VERSION)?;
    Ok(Manifest {
        kind: KIND.into(),
        backup_version: BACKUP_VERSION,
        data_format: DATA_FORMAT_VERSION,
        tsdb_format: storage::tsdb::FORMAT_VERSION,
        catalog_record_version: storage::catalog::codec::VERSION_1,
        created_ms: now_ms,
        created_by: crate::config::VERSION.into(),
        catalog_records,
        tsdb_entries,
    })
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let abs = dir.join(&rel);
        for entry in
            std::fs::read_dir(&abs).with_context(|| format!("cannot list {}", abs.display()))?
        {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                todo.push(rel);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Packs `stage` with `manifest` first into a `.tar.zst` written to `out`.
pub fn write_archive(stage: &Path, manifest: &Manifest, out: impl Write) -> anyhow::Result<()> {
    let zst = zstd::Encoder::new(out, ZSTD_LEVEL)?;
    let mut tar = tar::Builder::new(zst);
    // Plain entries only: any tar reads them (zstd shrinks the holes anyway).
    tar.sparse(false);
    let json = serde_json::to_vec_pretty(manifest)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(u64::try_from(manifest.created_ms / 1000).unwrap_or(0));
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, json.as_slice())?;
    for rel in files_under(stage)? {
        let mut file = File::open(stage.join(&rel))?;
        tar.append_file(&rel, &mut file)
            .with_context(|| format!("cannot archive {}", rel.display()))?;
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(())
}

/// A whole backup of the open stores into `out`. Blocking.
pub fn backup(
    catalog: &Catalog,
    engine: &Engine,
    data_dir: &Path,
    now_ms: i64,
    out: impl Write,
) -> anyhow::Result<Manifest> {
    let stage = Staging::new(data_dir, "backup")?;
    let manifest = snapshot_to(catalog, engine, now_ms, stage.path())?;
    write_archive(stage.path(), &manifest, out)?;
    Ok(manifest)
}

/// Refuses a manifest this build cannot restore.
pub fn check_manifest(m: &Manifest) -> anyhow::Result<()> {
    if m.kind != KIND {
        bail!("not a StatusMonitor backup (kind {:?})", m.kind);
    }
    if m.backup_version != BACKUP_VERSION {
        bail!(
            "backup format {} is unknown to this binary ({}), which reads format {BACKUP_VERSION}; \
             restore it with the version that made it ({})",
            m.backup_version,
            crate::config::VERSION,
            m.created_by
        );
    }
    if m.data_format > DATA_FORMAT_VERSION
        || m.tsdb_format != storage::tsdb::FORMAT_VERSION
        || m.catalog_record_version > storage::catalog::codec::VERSION_1
    {
        bail!(
            "the backup holds data format {} (time series {}, catalog records {}), written by {}; \
             this binary ({}) reads data formats up to {DATA_FORMAT_VERSION}: restore it with a \
             newer version",
            m.data_format,
            m.tsdb_format,
            m.catalog_record_version,
            m.created_by,
            crate::config::VERSION
        );
    }
    Ok(())
}

type Entries<'a> = tar::Entries<'a, zstd::Decoder<'static, std::io::BufReader<File>>>;

/// Reads the manifest at the start of an archive.
fn read_manifest(entries: &mut Entries<'_>) -> anyhow::Result<Manifest> {
    let mut first = entries
        .next()
        .context("the archive is empty")?
        .context("cannot read the archive (not a .tar.zst?)")?;
    if first.path()?.as_ref() != Path::new(MANIFEST) {
        bail!("not a StatusMonitor backup: it does not start with {MANIFEST}");
    }
    let mut json = Vec::new();
    (&mut first).take(1 << 20).read_to_end(&mut json)?;
    serde_json::from_slice(&json).context("the backup's manifest is unreadable")
}

/// Opens an archive and reads its manifest.
fn open_archive(
    from: &Path,
) -> anyhow::Result<tar::Archive<zstd::Decoder<'static, std::io::BufReader<File>>>> {
    let file = File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    Ok(tar::Archive::new(
        zstd::Decoder::new(file).context("cannot start decompressing")?,
    ))
}

/// Reads a whole archive (every byte through zstd's checksums and tar's
/// headers) and returns its manifest: a cheap test that a download is
/// complete.
pub fn verify_archive(from: &Path) -> anyhow::Result<Manifest> {
    let mut archive = open_archive(from)?;
    let mut entries = archive.entries()?;
    let manifest = read_manifest(&mut entries)?;
    for entry in entries {
        let mut entry = entry.context("the archive is truncated or damaged")?;
        std::io::copy(&mut entry, &mut std::io::sink())
            .context("the archive is truncated or damaged")?;
    }
    Ok(manifest)
}

/// True when `dir` is absent or holds nothing but a lock file.
fn is_empty_dir(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                if e?.file_name() != LOCK_FILE {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Restores the backup at `from` into `dir`. Refuses a non-empty `dir`
/// unless `force` (then its contents are replaced), a directory a running
/// server holds, and a backup of an unknown format. The archive is unpacked
/// and checked in a staging directory first: a bad archive changes nothing.
pub fn restore(from: &Path, dir: &Path, force: bool) -> anyhow::Result<Manifest> {
    let mut archive = open_archive(from)?;
    let mut entries = archive.entries()?;
    let manifest = read_manifest(&mut entries)
        .with_context(|| format!("cannot restore {}", from.display()))?;
    check_manifest(&manifest).with_context(|| format!("cannot restore {}", from.display()))?;
    if !force && !is_empty_dir(dir)? {
        bail!(
            "{} is not empty; restore into an empty directory, or pass --force to replace \
             everything in it",
            dir.display()
        );
    }
    let lock = DataDir::lock(dir)?;
    let stage = Staging::new(lock.path(), "restore")?;
    for entry in entries {
        let mut entry = entry.context("the archive is truncated or damaged")?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir() || kind.is_gnu_sparse()) {
            bail!(
                "the archive holds an entry of an unexpected kind: {:?}",
                entry.path()?
            );
        }
        if !entry.unpack_in(stage.path())? {
            bail!(
                "the archive holds a path outside the data directory: {:?}",
                entry.path()?
            );
        }
    }
    if read_version(stage.path())? != Some(manifest.data_format)
        || !stage.path().join(CATALOG_FILE).is_file()
        || !stage
            .path()
            .join("tsdb")
            .join(storage::tsdb::FORMAT_FILE)
            .is_file()
    {
        bail!("the archive does not hold a complete data directory");
    }
    // Out with the old, in with the new.
    for e in std::fs::read_dir(lock.path())? {
        let e = e?;
        let p = e.path();
        if e.file_name() == LOCK_FILE || p == stage.path() {
            continue;
        }
        if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        }
        .with_context(|| format!("cannot remove {}", p.display()))?;
    }
    for e in std::fs::read_dir(stage.path())? {
        let e = e?;
        let to = lock.path().join(e.file_name());
        std::fs::rename(e.path(), &to).with_context(|| format!("cannot move {}", to.display()))?;
    }
    if let Ok(d) = File::open(lock.path()) {
        let _ = d.sync_all();
    }
    Ok(manifest)
}
