//! The time-series engine as the server holds it, and how ingest survives a
//! full disk.
//!
//! - **Free space is checked before the disk is full.** Ingest is refused
//!   with `507 Insufficient Storage` while the file system of the data
//!   directory has less than `min_free_bytes` free, so the catalog (sessions,
//!   alerts) can still commit and fjall never meets `ENOSPC` on ingest. The
//!   figure comes from `statvfs`, asked at most once per [`SPACE_CHECK_EVERY`]
//!   (ingest and `/api/health` share the cached answer).
//! - **A failed write is recovered in process.** When a write fails anyway
//!   (another program filled the disk faster than the check, a quota), fjall
//!   *poisons* its database: every later write is refused for the life of the
//!   handle, and there is no way to clear it, because the journal may end in
//!   a torn batch that only recovery at open truncates. So once space is back
//!   the engine is closed and opened again from disk ([`Tsdb::reopen`]):
//!   recovery replays the journal, which holds every acknowledged batch (a
//!   report is acknowledged only after its batch's journal write), and drops
//!   the torn tail of the batch that failed (never acknowledged; the agent
//!   still has it spooled).
//! - **One log line per change of state** (full, failed, back), never one
//!   per request; `/api/health` says `degraded` with the reason meanwhile.
//!   Reads go on throughout: a poisoned fjall still reads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use storage::clock::Clock;
use storage::tsdb::{BackgroundHandle, Engine, EngineConfig};

use crate::error::ApiError;

/// How long a free-space figure is reused.
pub const SPACE_CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a reopen waits for requests in flight to let go of the old
/// engine before it gives up (and tries again later).
const REOPEN_WAIT: Duration = Duration::from_secs(5);
/// Reopen attempts are at least this far apart.
const REOPEN_EVERY: Duration = Duration::from_secs(1);
/// Free space a reopen needs at least, whatever `min_free_bytes` says:
/// opening writes (a new journal file, the recovered tail), and an open that
/// fails leaves the server without a store.
const REOPEN_MIN_FREE: u64 = 16 << 20;

/// Where ingest stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DiskState {
    Ok,
    /// Less than `min_free_bytes` free: ingest refused before writing.
    LowSpace {
        free: u64,
    },
    /// A write failed and fjall refuses writes until the engine is reopened.
    WriteFailed {
        reason: String,
    },
}

/// Why [`Tsdb::reopen`] did not reopen.
#[derive(Debug)]
pub enum Refused {
    /// Less free space than a reopen needs.
    NoSpace,
    /// Not now (tried a moment ago, or requests still hold the engine).
    NotNow(String),
}

#[derive(Debug)]
struct SpaceCheck {
    at: Option<Instant>,
    free: Option<u64>,
}

#[derive(Debug)]
struct Status {
    state: DiskState,
    last_reopen: Option<Instant>,
}

/// The engine (replaceable) with its maintenance thread and disk state.
pub struct Tsdb {
    data_dir: PathBuf,
    tsdb_dir: PathBuf,
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    min_free_bytes: u64,
    /// `None` only inside [`Tsdb::reopen`], which holds the write lock for as
    /// long, and which never returns without putting an engine back.
    engine: RwLock<Option<Arc<Engine>>>,
    background: Mutex<Option<BackgroundHandle>>,
    space: Mutex<SpaceCheck>,
    status: Mutex<Status>,
    /// One reopen at a time.
    reopening: Mutex<()>,
    /// Writers holding a [`Writing`], and the top bit ([`STOPPING`]) once a
    /// graceful stop has begun ([`Tsdb::flush`]), after which none is admitted.
    writers: Arc<AtomicUsize>,
}

/// Longest a graceful stop spends sealing the open windows (the footprint
/// run's 100 agents, most of an hour each: 0.3 s for the whole stop on the
/// 2-core VM; docs/BENCHMARKS.md).
const SEAL_AT_STOP: Duration = Duration::from_secs(10);

/// Set in [`Tsdb::writers`] by a graceful stop.
const STOPPING: usize = 1 << (usize::BITS - 1);

/// The engine for one write (ingest, a check result): a graceful stop waits
/// for every one held to be dropped before it flushes, and admits none after,
/// so nothing reaches the journal after its last flush.
pub struct Writing {
    engine: Arc<Engine>,
    writers: Arc<AtomicUsize>,
}

impl std::ops::Deref for Writing {
    type Target = Arc<Engine>;

    fn deref(&self) -> &Arc<Engine> {
        &self.engine
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.writers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb").field("dir", &self.tsdb_dir).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update below is a plain assignment: never half-made.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tsdb {
    /// Wraps an open `engine` of `data_dir/tsdb` and starts its maintenance.
    pub fn new(
        engine: Arc<Engine>,
        data_dir: &Path,
        config: EngineConfig,
        clock: Arc<dyn Clock>,
        min_free_bytes: u64,
    ) -> Tsdb {
        let background = engine.start_background();
        Tsdb {
            data_dir: data_dir.to_path_buf(),
            tsdb_dir: data_dir.join("tsdb"),
            config,
            clock,
            min_free_bytes,
            engine: RwLock::new(Some(engine)),
            background: Mutex::new(Some(background)),
            space: Mutex::new(SpaceCheck {
                at: None,
                free: None,
            }),
            status: Mutex::new(Status {
                state: DiskState::Ok,
                last_reopen: None,
            }),
            reopening: Mutex::new(()),
            writers: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The engine. Blocking to use: call it from `spawn_blocking`.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .expect("an engine is in place outside `reopen`, which holds the write lock")
    }

    /// The engine for one write, or `None` once a graceful stop has begun.
    pub fn for_writing(&self) -> Option<Writing> {
        if self.writers.fetch_add(1, Ordering::AcqRel) & STOPPING != 0 {
            self.writers.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Writing {
            engine: self.engine(),
            writers: self.writers.clone(),
        })
    }

    /// Free bytes on the data directory's file system (cached for
    /// [`SPACE_CHECK_EVERY`]); `None` where it cannot be asked.
    pub fn free_bytes(&self) -> Option<u64> {
        let mut space = lock(&self.space);
        if space.at.is_some_and(|at| at.elapsed() < SPACE_CHECK_EVERY) {
            return space.free;
        }
        space.free = free_bytes(&self.data_dir);
        space.at = Some(Instant::now());
        space.free
    }

    /// Compares free space with `min_free_bytes`, logs a change, and returns
    /// the state.
    fn refresh(&self) -> DiskState {
        let free = self.free_bytes();
        let low = free.is_some_and(|f| f < self.min_free_bytes);
        let mut status = lock(&self.status);
        let current = status.state.clone();
        match (current, free) {
            (DiskState::Ok, Some(free)) if low => {
                tracing::warn!(
                    free_bytes = free,
                    min_free_bytes = self.min_free_bytes,
                    dir = %self.data_dir.display(),
                    "the data directory's disk is nearly full: ingest is refused (507) until \
                     space is freed"
                );
                status.state = DiskState::LowSpace { free };
            }
            (DiskState::LowSpace { .. }, Some(free)) if low => {
                status.state = DiskState::LowSpace { free };
            }
            (DiskState::LowSpace { .. }, _) => {
                tracing::info!(
                    free_bytes = free,
                    "the data directory's disk has space again: ingest accepted"
                );
                status.state = DiskState::Ok;
            }
            _ => {}
        }
        status.state.clone()
    }

    fn reopen_needs(&self) -> u64 {
        self.min_free_bytes.max(REOPEN_MIN_FREE)
    }

    /// Why ingest is refused now, for `/api/health`; `None` when it is not.
    pub fn degraded_reason(&self) -> Option<String> {
        match self.refresh() {
            DiskState::Ok => None,
            DiskState::LowSpace { free } => Some(self.low_space_message(free)),
            DiskState::WriteFailed { reason } => Some(reason),
        }
    }

    fn low_space_message(&self, free: u64) -> String {
        format!(
            "the data directory's disk has {} MiB free, less than min_free_bytes ({} MiB): \
             reports are refused until space is freed (agents keep them and send them later)",
            free >> 20,
            self.min_free_bytes >> 20
        )
    }

    /// The engine to write a batch of reports to, or why not now: 507 while
    /// the disk is (nearly) full, 503 while the engine is being reopened. A
    /// failed engine is reopened here once there is space again.
    pub async fn for_ingest(self: &Arc<Self>) -> Result<Writing, ApiError> {
        let stopping =
            || ApiError::Unavailable("the server is stopping; retry in a few seconds".into());
        match self.refresh() {
            DiskState::Ok => self.for_writing().ok_or_else(stopping),
            DiskState::LowSpace { free } => {
                Err(ApiError::InsufficientStorage(self.low_space_message(free)))
            }
            DiskState::WriteFailed { reason } => {
                if self.free_bytes().is_some_and(|f| f < self.reopen_needs()) {
                    return Err(ApiError::InsufficientStorage(reason));
                }
                let tsdb = self.clone();
                tokio::task::spawn_blocking(move || tsdb.reopen())
                    .await
                    .map_err(ApiError::internal)?
                    .map_err(|refused| match refused {
                        Refused::NoSpace => ApiError::InsufficientStorage(reason),
                        Refused::NotNow(why) => ApiError::Unavailable(format!(
                            "{reason}; {why}; retry in a few seconds"
                        )),
                    })?;
                self.for_writing().ok_or_else(stopping)
            }
        }
    }

    /// Maps a failed write: a full disk or a poisoned engine marks the store
    /// failed (logged once) and answers 507; anything else as before.
    pub fn write_failed(&self, e: storage::Error) -> ApiError {
        let disk_full = is_disk_full(&e);
        if !disk_full && !is_poisoned(&e) {
            return crate::state::storage_error(e);
        }
        let reason = if disk_full {
            "the data directory's disk is full: a write of the time-series store failed; \
             reports are refused until space is freed (agents keep them and send them later)"
                .to_string()
        } else {
            "the time-series store stopped accepting writes after a failed write; it is \
             reopened when the next report arrives"
                .to_string()
        };
        let mut status = lock(&self.status);
        if !matches!(status.state, DiskState::WriteFailed { .. }) {
            tracing::error!(error = %e, "time-series write failed: ingest refused until the store is reopened");
            status.state = DiskState::WriteFailed {
                reason: reason.clone(),
            };
        }
        ApiError::InsufficientStorage(reason)
    }

    /// Closes the failed engine and opens it again from disk, if there is
    /// `min_free_bytes` of space. Blocking. `Err` says why not (yet).
    pub fn reopen(&self) -> Result<(), Refused> {
        let _one = lock(&self.reopening);
        {
            let mut status = lock(&self.status);
            if !matches!(status.state, DiskState::WriteFailed { .. }) {
                return Ok(()); // another request did it
            }
            if status
                .last_reopen
                .is_some_and(|at| at.elapsed() < REOPEN_EVERY)
            {
                return Err(Refused::NotNow("the store is not reopened yet".into()));
            }
            status.last_reopen = Some(Instant::now());
        }
        // Fresh figure: space may have come back a moment ago.
        lock(&self.space).at = None;
        if self.free_bytes().is_some_and(|f| f < self.reopen_needs()) {
            return Err(Refused::NoSpace);
        }
        if let Some(background) = lock(&self.background).take() {
            background.shutdown();
        }
        let mut slot = self.engine.write().unwrap_or_else(PoisonError::into_inner);
        let deadline = Instant::now() + REOPEN_WAIT;
        loop {
            let shared = slot.as_ref().map_or(0, Arc::strong_count);
            if shared <= 1 {
                break;
            }
            if Instant::now() >= deadline {
                let engine = slot.clone().expect("not taken yet");
                drop(slot);
                *lock(&self.background) = Some(engine.start_background());
                return Err(Refused::NotNow(
                    "the store is still in use by requests in flight".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // The last handle: dropping it closes fjall (its threads, its lock).
        drop(slot.take());
        let mut attempt = 0;
        let engine = loop {
            match Engine::open(&self.tsdb_dir, self.config.clone(), self.clock.clone()) {
                Ok(engine) => break Arc::new(engine),
                Err(e) if attempt < 3 => {
                    tracing::warn!(error = %e, "cannot reopen the time-series store yet");
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => {
                    // Without a store the server cannot serve; what it
                    // acknowledged is on disk. Let the service manager start
                    // it again rather than answer 500 forever.
                    tracing::error!(error = %e, "cannot reopen the time-series store; exiting");
                    std::process::exit(1);
                }
            }
        };
        *lock(&self.background) = Some(engine.start_background());
        *slot = Some(engine);
        drop(slot);
        lock(&self.status).state = DiskState::Ok;
        tracing::info!("time-series store reopened after a failed write: ingest accepted again");
        Ok(())
    }

    /// Flushes the engine for a graceful stop, so the next start replays
    /// nothing: no write is admitted from here on, the writes in flight end
    /// first (at most [`REOPEN_WAIT`]), and the maintenance thread stops after
    /// its current pass, so nothing reaches the journal after the flush. A
    /// failed engine cannot be flushed, and need not be: every acknowledged
    /// batch is in its journal, replayed at the next start.
    pub fn flush(&self) -> Result<(), storage::Error> {
        self.writers.fetch_or(STOPPING, Ordering::AcqRel);
        let deadline = Instant::now() + REOPEN_WAIT;
        while self.writers.load(Ordering::Acquire) & !STOPPING != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(background) = lock(&self.background).take() {
            background.shutdown();
        }
        if let DiskState::WriteFailed { .. } = lock(&self.status).state {
            tracing::warn!(
                "the time-series store is not flushed: it stopped after a failed write; what \
                 was acknowledged is in its journal and is read back at the next start"
            );
            return Ok(());
        }
        let engine = self.engine();
        // The open windows go into blocks, so the stopped directory holds
        // no head rows; bounded, so a large server still stops promptly
        // (what is not sealed stays in the head, as durable).
        match engine.seal_open_windows(Instant::now() + SEAL_AT_STOP) {
            Ok(report) => tracing::info!(
                sealed_windows = report.sealed_windows,
                "open windows sealed for the stop"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "sealing the open windows for the stop failed; their rows stay in the head")
            }
        }
        engine.flush()
    }
}

/// Whether `e` comes from a full disk or an exceeded quota.
fn is_disk_full(e: &storage::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && (matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) || io.raw_os_error() == Some(28))
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Whether fjall refused the write because an earlier one failed.
fn is_poisoned(e: &storage::Error) -> bool {
    matches!(
        e,
        storage::Error::Fjall {
            source: fjall::Error::Poisoned,
            ..
        }
    )
}

/// Free bytes for an unprivileged user on the file system holding `dir`.
#[cfg(unix)]
// The C types behind these figures differ between platforms.
#[allow(clippy::useless_conversion)]
fn free_bytes(dir: &Path) -> Option<u64> {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => Some(u64::from(s.blocks_available()).saturating_mul(u64::from(s.fragment_size()))),
        Err(e) => {
            tracing::debug!(error = %e, "statvfs of the data directory failed");
            None
        }
    }
}

#[cfg(not(unix))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_and_poison_are_recognised_and_other_errors_are_not() {
        let full = storage::Error::Io {
            path: "x".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        assert!(is_disk_full(&full));
        let deep = storage::Error::Fjall {
            context: "commit",
            source: fjall::Error::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)),
        };
        assert!(is_disk_full(&deep));
        let poisoned = storage::Error::Fjall {
            context: "commit",
            source: fjall::Error::Poisoned,
        };
        assert!(is_poisoned(&poisoned) && !is_disk_full(&poisoned));
        let other = storage::Error::Io {
            path: "x".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(!is_disk_full(&other) && !is_poisoned(&other));
    }

    #[cfg(unix)]
    #[test]
    fn free_space_is_read() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_some_and(|f| f > 0));
    }
}
