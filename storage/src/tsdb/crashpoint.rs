//! Crash points for the SIGKILL tests: with
//! `STATUSMONITOR_TSDB_CRASH_AT=<point>:<n>` in its environment, the process
//! aborts (no destructor, no flush: what a `kill -9` leaves) the `n`-th
//! time it reaches `point`, after printing `CRASHPOINT <point>` on stdout.
//! The points sit between the steps of one operation, where a crash leaves
//! the most to recover: `seal` (a sealed window's batch committed, the head
//! not yet compacted), `rollup` (an aggregate block committed), `compact`
//! (a keyspace's memtable flushed for a compaction that has not run),
//! `flush` (one keyspace's memtable flushed of several) and `journal`
//! (every memtable flushed, the journal not yet truncated). Without the
//! variable a point costs one atomic load.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable that arms a crash point.
pub const CRASH_AT_ENV: &str = "STATUSMONITOR_TSDB_CRASH_AT";

static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

/// Abort here if this point is armed and reached for the armed time.
pub(crate) fn reached(point: &str) {
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var(CRASH_AT_ENV).ok()?;
        let (name, n) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
        Some((name.to_owned(), n.parse().unwrap_or(1)))
    });
    if let Some((name, n)) = armed
        && name == point
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "CRASHPOINT {point}");
        let _ = out.flush();
        std::process::abort();
    }
}
