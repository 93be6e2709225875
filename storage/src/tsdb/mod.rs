//! The time-series engine on fjall: 5 s raw samples, 1 m and 1 h aggregates,
//! background sealing, downsampling and TTL eviction, and the per-agent ring
//! buffer. The on-disk format is drawn in `docs/storage-format.md`.
//!
//! Layout of `DATA_DIR/tsdb`:
//! - `FORMAT`: the format version, checked on open;
//! - `db/`: one fjall database with the keyspaces `meta` (series
//!   dictionary, compactor watermarks and dirty hours, deleted agents, the
//!   head's open windows),
//!   `head` (raw rows of windows not yet sealed) and one keyspace per tier
//!   and time partition (`raw.<ms>`, `m1.<ms>`, `h1.<ms>`) holding blocks.
//!
//! Concurrency: each agent has its own mutex (series ids, watermarks, dirty
//! hours); writes of different agents share only fjall's journal. One
//! maintenance pass runs at a time.
//!
//! Files: `open` rebuilds the state at start, `write` stages rows into one
//! batch, `partitions` finds or makes a tier's time partition, `format`
//! checks the `FORMAT` file, `background` runs maintenance; the passes
//! themselves are in `compactor`, `retention` and `query`.

mod background;
pub mod backup;
pub mod chunk;
pub mod clock;
mod compactor;
mod crashpoint;
mod evict;
mod format;
mod group;
pub mod head;
mod open;
mod partitions;
mod query;
mod retention;
pub mod ring;
pub mod series;
mod shapes;
pub mod tier;
mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, mpsc};
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

pub use crate::error::Error;
pub use crate::model::SeriesKey;
pub use clock::{Clock, ManualClock, SystemClock};
pub use query::{
    MAX_QUERY_MS, MIN_QUERY_MS, Point, QueryBudget, QueryRequest, QueryResult, SeriesPoints,
};
pub use ring::{Live, Ring};
pub use tier::Tier;

pub use background::BackgroundHandle;
pub use crashpoint::CRASH_AT_ENV;
use format::check_format;
pub use format::{FORMAT_FILE, FORMAT_VERSION};
pub use write::Row;

use tier::{DAY, HOUR, MINUTE, floor_to};

/// How durable an acknowledged write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Written to the OS: survives a crash of the process (kill -9), not of the machine.
    #[default]
    Buffer,
    /// `fdatasync` per write: also survives power loss.
    SyncData,
}

/// Engine settings. `Default` keeps 24 h of raw data, 7 d of 1 m and 365 d of 1 h.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub raw_retention_ms: i64,
    pub m1_retention_ms: i64,
    pub h1_retention_ms: i64,
    pub durability: Durability,
    /// A window is sealed / aggregated this long after it closes (late rows
    /// after that still land, through a re-seal and dirty marks).
    pub seal_grace_ms: i64,
    /// Pause between background maintenance passes.
    pub maintenance_interval: Duration,
    /// zstd level over each aggregate block's body (kept only when
    /// smaller); `None` = off, the default: the prefix-coded columns leave
    /// it nothing to find on the benchmark's workload, and a one-series
    /// query must then decompress every series of the block.
    pub block_zstd_level: Option<i32>,
    /// zstd level over each raw block's body (kept only when smaller);
    /// level 3 by default: 1.9 % off the raw tier on the benchmark's
    /// workload (the bit-packed columns' widths and the series that move
    /// together), for about a microsecond more on a one-series hour's
    /// read (docs/BENCHMARKS.md, "The whole data directory").
    pub raw_zstd_level: Option<i32>,
    /// fjall block cache.
    pub cache_bytes: u64,
    /// Memtable size of the head keyspace; partition keyspaces (written
    /// once per window) get a quarter of it. fjall's default, 64 MiB per
    /// keyspace, made a 100-host benchmark peak near 0.5 GiB of RSS.
    pub memtable_bytes: u64,
    /// Budget of fjall's journal (the active journal plus sealed ones not
    /// yet flushed): past half of it the active journal is sealed at the
    /// next flush, and a flush is asked for. Every byte of it is replayed
    /// when the engine opens after a crash.
    pub max_journal_bytes: u64,
    /// After this long without a write (measured by the background thread),
    /// memtables are flushed and the journal emptied, so a directory left
    /// idle (or copied) holds no data only in the journal. `None`: never.
    pub idle_flush_after: Option<Duration>,
    /// Span of one partition keyspace per tier (`Tier::ALL` order); each a
    /// multiple of the tier's block window. Defaults 6 h / 1 d / 28 d. A
    /// partition's span is part of its name, so changing this later affects
    /// only partitions created afterwards.
    pub partition_ms: [i64; 3],
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            raw_retention_ms: DAY,
            m1_retention_ms: 7 * DAY,
            h1_retention_ms: 365 * DAY,
            durability: Durability::Buffer,
            seal_grace_ms: 2 * MINUTE,
            maintenance_interval: Duration::from_secs(10),
            block_zstd_level: None,
            raw_zstd_level: Some(3),
            cache_bytes: 32 << 20,
            memtable_bytes: 16 << 20,
            max_journal_bytes: 32 << 20,
            idle_flush_after: Some(Duration::from_secs(120)),
            partition_ms: Tier::ALL.map(Tier::default_partition_ms),
        }
    }
}

impl EngineConfig {
    fn validate(&self) -> Result<(), Error> {
        for tier in Tier::ALL {
            let p = self.partition_ms[tier.code() as usize];
            if p <= 0 || p % tier.block_window_ms() != 0 {
                return Err(Error::InvalidRequest(format!(
                    "partition span of tier {tier} ({p} ms) must be a positive multiple of {} ms",
                    tier.block_window_ms()
                )));
            }
            if self.retention_ms(tier) <= 0 {
                return Err(Error::InvalidRequest(format!(
                    "retention of tier {tier} must be positive"
                )));
            }
        }
        Ok(())
    }

    fn partition_options(&self) -> KeyspaceCreateOptions {
        KeyspaceCreateOptions::default().max_memtable_size((self.memtable_bytes / 4).max(1 << 20))
    }

    pub fn retention_ms(&self, tier: Tier) -> i64 {
        match tier {
            Tier::Raw5s => self.raw_retention_ms,
            Tier::Min1 => self.m1_retention_ms,
            Tier::Hour1 => self.h1_retention_ms,
        }
    }
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Raw windows sealed (or re-sealed after late rows) into blocks.
    pub sealed_windows: usize,
    /// Block windows of 1 m / 1 h aggregates written while advancing.
    pub aggregated_windows: usize,
    /// Dirty hours recomputed.
    pub recomputed_hours: usize,
    /// Partition keyspaces dropped by retention.
    pub dropped_partitions: usize,
    /// Deleted agents whose head rows and dictionary were purged.
    pub purged_agents: usize,
    /// Keyspaces rewritten whole (major compaction) to drop what the pass
    /// superseded: the head's sealed rows, older versions of aggregate blocks.
    pub compacted_keyspaces: usize,
    /// Series evicted from memory (no sample for longer than raw retention).
    pub evicted_series: usize,
}

/// Sizes and progress, for `/api/health` and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Bytes on disk of the sealed tables of each tier (`Tier::ALL` order).
    pub tier_bytes: [u64; 3],
    /// Bytes of the head keyspace (unsealed rows) and of the meta keyspace.
    pub head_bytes: u64,
    pub meta_bytes: u64,
    /// Bytes of fjall's journal.
    pub journal_bytes: u64,
    pub partitions: usize,
    pub agents: usize,
    pub series: usize,
    /// Of `series`, those evicted from memory after no sample for longer
    /// than raw retention (their history stays on disk).
    pub evicted_series: usize,
    /// How far the 1 m compactor trails the newest closed hour, worst agent (ms).
    pub compactor_lag_ms: i64,
    /// Hours waiting to be recomputed after late data.
    pub dirty_hours: usize,
    /// Samples refused because they were older than raw retention.
    pub dropped_samples: u64,
}

/// A map hashed with foldhash instead of SipHash: its keys come from our
/// own agents' reports (series keys), hashed on every write.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A row key array and the series id of each of its keys, for one agent.
#[derive(Clone)]
pub(crate) struct Shape {
    keys: Arc<[SeriesKey]>,
    sids: Arc<[u32]>,
}

/// Per-agent state, guarded by the agent's own mutex.
#[derive(Default)]
pub(crate) struct AgentState {
    /// Series id by key; the keys are shared with `keys` (one copy each).
    /// Series with no sample for longer than raw retention are left out
    /// (evicted, see [`evict`]): their slot in `keys` holds the empty
    /// placeholder key, and their key is read again from `meta` when a
    /// write brings it back or a query reaches back to their time.
    series: FastMap<Arc<SeriesKey>, u32>,
    keys: Vec<Arc<SeriesKey>>,
    /// Per series id: the hour (ms / [`HOUR`]) of its newest sample written
    /// since the engine opened, or the hour it opened. Kept per report
    /// shape and hour, not per sample (see [`write::Staged`]).
    seen: Vec<u32>,
    /// The ids and hour last marked in `seen`.
    marked: Option<(Arc<[u32]>, u32)>,
    /// Series ids evicted from memory.
    evicted: usize,
    /// The key array of the agent's last row, with its series ids.
    shape: Option<Shape>,
    /// Per tier code: aggregates of that tier are complete before this (Min1, Hour1).
    wm: [Option<i64>; 3],
    /// Per tier code: the end of the range a compactor is computing right
    /// now (≥ `wm`); writers mark rows before it dirty.
    claimed: [i64; 3],
    /// (tier code, hour) → generation of its latest dirty mark.
    dirty: BTreeMap<(u8, i64), u64>,
    next_gen: u64,
    /// Raw windows with rows in the head.
    head_windows: BTreeSet<i64>,
    deleted: Option<i64>,
}

pub(crate) struct Agent {
    id: u64,
    state: Mutex<AgentState>,
}

impl Agent {
    fn lock(&self) -> MutexGuard<'_, AgentState> {
        // A panic while holding it can only come from a bug in this module;
        // the state is still consistent with disk (it is updated after commits).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The time-series engine. Cheap to share behind an `Arc`.
pub struct Engine {
    dir: PathBuf,
    db: Database,
    meta: Keyspace,
    head: Keyspace,
    /// (tier, start) → (end, keyspace); partitions of a tier never overlap.
    parts: RwLock<BTreeMap<(Tier, i64), (i64, Keyspace)>>,
    agents: RwLock<HashMap<u64, Arc<Agent>>>,
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    seq: AtomicU64,
    maintenance: Mutex<()>,
    dropped_samples: AtomicU64,
    /// Write batches committed (`write`, group commits): the background
    /// thread flushes once this stops moving for `idle_flush_after`.
    writes: AtomicU64,
    /// (tier, window) of aggregate blocks rewritten by the current
    /// maintenance pass: their partitions are compacted at its end.
    rewritten: Mutex<BTreeSet<(Tier, i64)>>,
    /// Bytes of raw blocks replaced by a later seal of their window (late
    /// rows, a window sealed open at a stop), per raw partition: a partition
    /// is compacted once they pass a tenth of it (compactor.rs).
    /// Keyed by the partition's keyspace id: (a window in it, bytes).
    raw_superseded: Mutex<BTreeMap<u64, (i64, u64)>>,
    /// The group-commit writer thread of [`Engine::write_grouped`], started
    /// on first use; it ends when the engine (this sender) is dropped.
    writer: OnceLock<mpsc::Sender<group::Job>>,
    /// Key arrays shared by rows of the same report shape.
    shapes: shapes::Shapes,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("dir", &self.dir).finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

impl Engine {
    /// The agent's state, created on first sight.
    fn agent(&self, id: u64) -> Arc<Agent> {
        if let Some(a) = self
            .agents
            .read()
            .expect("agents map lock is never held across a panic")
            .get(&id)
        {
            return a.clone();
        }
        self.agents
            .write()
            .expect("agents map lock is never held across a panic")
            .entry(id)
            .or_insert_with(|| {
                Arc::new(Agent {
                    id,
                    state: Mutex::new(AgentState::default()),
                })
            })
            .clone()
    }

    fn existing_agent(&self, id: u64) -> Option<Arc<Agent>> {
        self.agents
            .read()
            .expect("agents map lock is never held across a panic")
            .get(&id)
            .cloned()
    }

    fn all_agents(&self) -> Vec<Arc<Agent>> {
        self.agents
            .read()
            .expect("agents map lock is never held across a panic")
            .values()
            .cloned()
            .collect()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn persist_mode(&self) -> PersistMode {
        match self.config.durability {
            Durability::Buffer => PersistMode::Buffer,
            Durability::SyncData => PersistMode::SyncData,
        }
    }

    /// Agents with data (not deleted).
    pub fn agents(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .all_agents()
            .into_iter()
            .filter(|a| {
                let st = a.lock();
                st.deleted.is_none() && !st.keys.is_empty()
            })
            .map(|a| a.id)
            .collect();
        v.sort_unstable();
        v
    }

    /// Flush every memtable to tables and empty the journal: what was
    /// written is then only in tables (synced), and the next open replays
    /// nothing. Called on graceful shutdown and after ingest has been idle.
    /// Waits for a running maintenance pass, and holds the next off.
    pub fn flush(&self) -> Result<(), Error> {
        let _one_at_a_time = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        self.flush_tables()
    }

    fn flush_tables(&self) -> Result<(), Error> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(Error::fjall("persist journal"))?;
        let mut all = vec![self.meta.clone(), self.head.clone()];
        all.extend(self.parts_read().values().map(|(_, ks)| ks.clone()));
        for ks in all {
            ks.rotate_memtable_and_wait()
                .map_err(Error::fjall("flush memtable"))?;
            crashpoint::reached("flush");
        }
        crashpoint::reached("journal");
        // Seal the active journal and delete every journal whose data is
        // now in tables (all of them, unless a write came in meanwhile).
        self.db
            .rotate_journal()
            .map_err(Error::fjall("empty the journal"))
    }

    /// Write batches read back from the journal when this engine opened: 0
    /// after a graceful stop ([`Engine::flush`]), up to the journal budget
    /// after a crash.
    pub fn journal_batches_replayed(&self) -> u64 {
        self.db.journal_batches_replayed()
    }

    pub fn stats(&self) -> EngineStats {
        let now = self.clock.now_ms();
        let mut s = EngineStats {
            head_bytes: self.head.disk_space(),
            meta_bytes: self.meta.disk_space(),
            journal_bytes: self.db.journal_disk_space().unwrap_or(0),
            dropped_samples: self.dropped_samples.load(Ordering::Relaxed),
            ..EngineStats::default()
        };
        {
            let parts = self.parts_read();
            s.partitions = parts.len();
            for ((tier, _), (_, ks)) in parts.iter() {
                s.tier_bytes[tier.code() as usize] += ks.disk_space();
            }
        }
        let closed = floor_to(now - self.config.seal_grace_ms, HOUR);
        for a in self.all_agents() {
            let st = a.lock();
            if st.deleted.is_some() {
                continue;
            }
            s.agents += 1;
            s.series += st.keys.len();
            s.evicted_series += st.evicted;
            s.dirty_hours += st.dirty.len();
            if let Some(wm) = st.wm[Tier::Min1.code() as usize] {
                s.compactor_lag_ms = s.compactor_lag_ms.max(closed - wm);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::series::meta;
    use super::*;

    const T0: i64 = 1_795_564_800_000; // 2026-11-25T00:00:00Z

    fn open(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
        Engine::open(dir, EngineConfig::default(), clock.clone()).unwrap()
    }

    fn row(ts: i64, v: f64) -> Row {
        Row::new(ts, vec![(SeriesKey::new("cpu.total_pct"), v)])
    }

    fn values(e: &Engine, agent: u64) -> Vec<(i64, f64)> {
        let req = QueryRequest {
            agent,
            metrics: Vec::new(),
            label_filter: None,
            start_ms: T0,
            stop_ms: T0 + 3 * HOUR,
            tier: Some(Tier::Raw5s),
            interval_ms: None,
            max_points: 0,
        };
        e.query(&req).unwrap().series[0]
            .points
            .iter()
            .map(|p| (p.ts_ms, p.last))
            .collect()
    }

    /// Every raw (key, ts, value) of an agent, sorted.
    fn all_values(e: &Engine, agent: u64) -> Vec<(String, i64, f64)> {
        let req = QueryRequest {
            agent,
            metrics: Vec::new(),
            label_filter: None,
            start_ms: T0,
            stop_ms: T0 + 3 * HOUR,
            tier: Some(Tier::Raw5s),
            interval_ms: None,
            max_points: 0,
        };
        let mut out: Vec<(String, i64, f64)> = e
            .query(&req)
            .unwrap()
            .series
            .into_iter()
            .flat_map(|s| {
                let key = s.key.to_string();
                s.points
                    .into_iter()
                    .map(move |p| (key.clone(), p.ts_ms, p.last))
            })
            .collect();
        out.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out
    }

    /// One key array shared by two agents maps to each agent's own series
    /// ids (they met the keys in different orders), on the first row of the
    /// array, on later rows (the cached ids), in a group commit and after a
    /// restart; a row whose keys and values differ in number is refused.
    #[test]
    fn shared_key_arrays_map_to_each_agents_own_series() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0 + HOUR));
        let e = Arc::new(open(dir.path(), &clock));
        let (a, b) = (SeriesKey::new("a"), SeriesKey::new("b"));
        let ab: Arc<[SeriesKey]> = vec![a.clone(), b.clone()].into();
        let r = |ts: i64, x: f64, y: f64| Row {
            ts_ms: ts,
            keys: ab.clone(),
            values: vec![x, y],
        };
        e.write(2, &[Row::new(T0, vec![(b.clone(), 9.0)])]).unwrap();
        e.write(1, &[r(T0, 1.0, 2.0), r(T0 + 5_000, 3.0, 4.0)])
            .unwrap();
        e.write(2, &[r(T0 + 5_000, 5.0, 6.0)]).unwrap();
        e.write(1, &[r(T0 + 10_000, 7.0, 8.0)]).unwrap();
        e.write(2, &[r(T0 + 10_000, 10.0, 11.0)]).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let w1 = e.write_grouped(1, vec![r(T0 + 15_000, 12.0, 13.0)]);
            let w2 = e.write_grouped(2, vec![r(T0 + 15_000, 14.0, 15.0)]);
            let (x, y) = tokio::join!(w1, w2);
            x.unwrap();
            y.unwrap();
        });
        let bad = Row {
            ts_ms: T0 + 20_000,
            keys: ab.clone(),
            values: vec![1.0],
        };
        assert!(matches!(e.write(1, &[bad]), Err(Error::InvalidRequest(_))));

        let expect1 = vec![
            ("a".to_string(), T0, 1.0),
            ("a".into(), T0 + 5_000, 3.0),
            ("a".into(), T0 + 10_000, 7.0),
            ("a".into(), T0 + 15_000, 12.0),
            ("b".into(), T0, 2.0),
            ("b".into(), T0 + 5_000, 4.0),
            ("b".into(), T0 + 10_000, 8.0),
            ("b".into(), T0 + 15_000, 13.0),
        ];
        let expect2 = vec![
            ("a".to_string(), T0 + 5_000, 5.0),
            ("a".into(), T0 + 10_000, 10.0),
            ("a".into(), T0 + 15_000, 14.0),
            ("b".into(), T0, 9.0),
            ("b".into(), T0 + 5_000, 6.0),
            ("b".into(), T0 + 10_000, 11.0),
            ("b".into(), T0 + 15_000, 15.0),
        ];
        assert_eq!(all_values(&e, 1), expect1);
        assert_eq!(all_values(&e, 2), expect2);
        drop(e);
        let e = open(dir.path(), &clock);
        e.write(2, &[r(T0 + 20_000, 16.0, 17.0)]).unwrap();
        let mut expect2 = expect2;
        expect2.insert(3, ("a".into(), T0 + 20_000, 16.0));
        expect2.push(("b".into(), T0 + 20_000, 17.0));
        assert_eq!(all_values(&e, 2), expect2);
        assert_eq!(all_values(&e, 1), expect1);
    }

    /// fjall's active journal (the newest `.jnl`) and its length.
    fn active_journal(dir: &Path) -> (std::path::PathBuf, u64) {
        let path = std::fs::read_dir(dir.join("db"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jnl"))
            .max_by_key(|p| {
                let stem = p.file_stem().unwrap().to_str().unwrap();
                stem.parse::<u64>().unwrap()
            })
            .unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        (path, len)
    }

    /// A batch torn in half at the end of the journal (a crash mid-write) is
    /// cut off at exactly the end of the last whole batch when the journal is
    /// replayed: every earlier row of every keyspace comes back, and a row
    /// written after the recovery survives the next one. (Covers the patched
    /// replay in vendor/fjall: positions counted, keyspace names cached.)
    #[test]
    fn a_torn_journal_tail_is_cut_and_what_came_before_and_after_survives() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0 + HOUR));
        let e = open(dir.path(), &clock);
        e.write(1, &[row(T0, 1.0)]).unwrap();
        e.write(2, &[row(T0, 10.0)]).unwrap();
        e.write(1, &[row(T0 + 5_000, 2.0)]).unwrap();
        drop(e);

        let e = open(dir.path(), &clock);
        let (journal, before) = active_journal(dir.path());
        e.write(1, &[row(T0 + 10_000, 3.0)]).unwrap();
        drop(e);
        let (same, after) = active_journal(dir.path());
        assert_eq!(same, journal, "the write went to the journal replayed");
        assert!(after > before + 8, "the write is in the journal");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&journal)
            .unwrap();
        file.set_len(before + (after - before) / 2).unwrap();
        drop(file);

        let e = open(dir.path(), &clock);
        assert_eq!(values(&e, 1), vec![(T0, 1.0), (T0 + 5_000, 2.0)]);
        assert_eq!(values(&e, 2), vec![(T0, 10.0)]);
        e.write(1, &[row(T0 + 15_000, 4.0)]).unwrap();
        drop(e);

        let e = open(dir.path(), &clock);
        assert_eq!(
            values(&e, 1),
            vec![(T0, 1.0), (T0 + 5_000, 2.0), (T0 + 15_000, 4.0)]
        );
        assert_eq!(values(&e, 2), vec![(T0, 10.0)]);
    }

    fn head_window_keys(e: &Engine) -> Vec<Vec<u8>> {
        e.meta
            .prefix([meta::HEAD_WINDOW])
            .map(|i| i.key().unwrap().to_vec())
            .collect()
    }

    /// Open windows come back from `meta` (not a head scan), sealing removes
    /// them, and a write after a restart still beats an earlier one of the
    /// same timestamp; a directory made before `H` keys gets them on open.
    #[test]
    fn open_windows_are_kept_in_meta_and_derived_for_older_directories() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0 + 3 * HOUR));
        let e = open(dir.path(), &clock);
        e.write(1, &[row(T0 + HOUR, 1.0), row(T0 + 2 * HOUR + 5_000, 2.0)])
            .unwrap();
        e.write(2, &[row(T0 + 2 * HOUR, 3.0)]).unwrap();
        assert_eq!(head_window_keys(&e).len(), 3);
        drop(e);

        // Reopen from the index: same windows, and seq continues.
        let e = open(dir.path(), &clock);
        assert_eq!(
            e.existing_agent(1).unwrap().lock().head_windows,
            BTreeSet::from([T0 + HOUR, T0 + 2 * HOUR])
        );
        e.write(1, &[row(T0 + 2 * HOUR + 5_000, 4.0)]).unwrap();
        assert_eq!(
            values(&e, 1),
            vec![(T0 + HOUR, 1.0), (T0 + 2 * HOUR + 5_000, 4.0)]
        );

        // Sealing the first hour removes its H key in the same batch.
        e.run_maintenance().unwrap();
        assert_eq!(head_window_keys(&e).len(), 2);

        // An older directory: no H keys, no marker.
        let mut batch = e.db.batch();
        for k in head_window_keys(&e) {
            batch.remove(&e.meta, k);
        }
        batch.remove(&e.meta, [meta::HEAD_INDEXED]);
        batch.commit().unwrap();
        drop(e);
        let e = open(dir.path(), &clock);
        assert_eq!(head_window_keys(&e).len(), 2);
        assert!(e.meta.get([meta::HEAD_INDEXED]).unwrap().is_some());
        e.write(1, &[row(T0 + 2 * HOUR + 5_000, 5.0)]).unwrap();
        assert_eq!(
            values(&e, 1),
            vec![(T0 + HOUR, 1.0), (T0 + 2 * HOUR + 5_000, 5.0)]
        );
        assert_eq!(values(&e, 2), vec![(T0 + 2 * HOUR, 3.0)]);
        drop(e);
        let e = open(dir.path(), &clock);
        assert_eq!(
            e.existing_agent(1).unwrap().lock().head_windows,
            BTreeSet::from([T0 + 2 * HOUR])
        );
    }
}
