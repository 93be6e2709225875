//! The background maintenance thread, and when it empties the journal.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use super::{Engine, MaintenanceReport};

impl Engine {
    /// Start the background maintenance thread.
    pub fn start_background(self: &Arc<Self>) -> BackgroundHandle {
        let (tx, rx) = mpsc::channel::<()>();
        let engine = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("tsdb-maintenance".into())
            .spawn(move || {
                let mut idle = IdleFlush::new(engine.writes.load(Ordering::Relaxed));
                loop {
                    let wrote = match engine.run_maintenance() {
                        Ok(report) => report != MaintenanceReport::default(),
                        Err(e) => {
                            tracing::error!(error = %e, "tsdb maintenance pass failed");
                            false
                        }
                    };
                    let writes = engine.writes.load(Ordering::Relaxed);
                    if idle.due(writes, wrote, engine.config.idle_flush_after) {
                        match engine.flush() {
                            Ok(()) => idle.flushed(),
                            Err(e) => tracing::error!(error = %e, "tsdb idle flush failed"),
                        }
                    }
                    match rx.recv_timeout(engine.config.maintenance_interval) {
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        _ => break,
                    }
                }
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start tsdb maintenance thread"))
            .ok();
        BackgroundHandle {
            stop: Some(tx),
            thread,
        }
    }
}

/// When the background thread empties the journal: once ingest has been
/// quiet for the configured time, and again after each maintenance pass that
/// wrote something while it stays quiet.
struct IdleFlush {
    writes: u64,
    since: std::time::Instant,
    clean: bool,
}

impl IdleFlush {
    fn new(writes: u64) -> IdleFlush {
        IdleFlush {
            writes,
            since: std::time::Instant::now(),
            clean: false,
        }
    }

    fn due(&mut self, writes: u64, maintenance_wrote: bool, after: Option<Duration>) -> bool {
        if writes != self.writes {
            self.writes = writes;
            self.since = std::time::Instant::now();
            self.clean = false;
            return false;
        }
        if maintenance_wrote {
            self.clean = false;
        }
        after.is_some_and(|after| !self.clean && self.since.elapsed() >= after)
    }

    fn flushed(&mut self) {
        self.clean = true;
    }
}

/// The background maintenance thread; `shutdown` (or drop) stops and joins it.
pub struct BackgroundHandle {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for BackgroundHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundHandle").finish()
    }
}

impl BackgroundHandle {
    /// Stop the thread after its current pass and wait for it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("tsdb maintenance thread panicked");
        }
    }
}

impl Drop for BackgroundHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
