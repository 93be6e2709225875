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

pub mod backup;
pub mod chunk;
pub mod clock;
mod compactor;
mod group;
pub mod head;
mod query;
mod retention;
pub mod ring;
pub mod series;
mod shapes;
pub mod tier;

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

use series::meta;
use tier::{DAY, HOUR, MINUTE, floor_to};

/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the version file in the tsdb directory.
pub const FORMAT_FILE: &str = "FORMAT";
const FORMAT_MAGIC: &str = "statusmonitor-tsdb";

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
    /// zstd level over each block body (kept only when smaller); `None` =
    /// off, the default: on the benchmark data it saved <1 % on raw blocks
    /// (fjall already LZ4s its data blocks) and ~15 % on aggregates, but a
    /// one-series query must then decompress every series of the block.
    pub block_zstd_level: Option<i32>,
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

/// All samples of one report: they share its timestamp. `values[i]` is the
/// sample of series `keys[i]`.
///
/// Rows whose reports have the same shape share one key array (see
/// [`Engine::report_row`]); the engine remembers each agent's last array
/// with its series ids, so a row with that same array (`Arc::ptr_eq`) needs
/// no dictionary lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ts_ms: i64,
    pub keys: Arc<[SeriesKey]>,
    pub values: Vec<f64>,
}

impl Row {
    /// A row from (key, value) pairs, with a key array of its own.
    pub fn new(ts_ms: i64, samples: Vec<(SeriesKey, f64)>) -> Row {
        let (keys, values): (Vec<SeriesKey>, Vec<f64>) = samples.into_iter().unzip();
        Row {
            ts_ms,
            keys: keys.into(),
            values,
        }
    }

    /// The row's (key, value) pairs.
    pub fn samples(&self) -> impl Iterator<Item = (&SeriesKey, f64)> {
        self.keys.iter().zip(self.values.iter().copied())
    }
}

/// One insert of a write, into the meta or the head keyspace.
pub(crate) enum Op {
    Meta(Vec<u8>, Vec<u8>),
    Head(Vec<u8>, Vec<u8>),
}

/// What a staged write changes in memory once its batch is durable.
pub(crate) struct Staged {
    new_keys: Vec<SeriesKey>,
    /// The last key array staged, with its series ids.
    shape: Option<Shape>,
    windows: BTreeSet<i64>,
    dirty: BTreeMap<(u8, i64), u64>,
    next_gen: u64,
    init_wm: Option<i64>,
}

impl Staged {
    fn apply(self, st: &mut AgentState) {
        for key in self.new_keys {
            let sid = st.keys.len() as u32;
            let key = Arc::new(key);
            st.series.insert(key.clone(), sid);
            st.keys.push(key);
        }
        if self.shape.is_some() {
            st.shape = self.shape;
        }
        st.head_windows.extend(self.windows);
        st.dirty.extend(self.dirty);
        st.next_gen = self.next_gen;
        if let Some(h) = self.init_wm {
            for tier in [Tier::Min1, Tier::Hour1] {
                st.wm[tier.code() as usize] = Some(h);
                st.claimed[tier.code() as usize] = h;
            }
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
    series: FastMap<Arc<SeriesKey>, u32>,
    keys: Vec<Arc<SeriesKey>>,
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

/// Check (or, in an empty directory, write) the format file.
fn check_format(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(FORMAT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let found = text.trim().to_owned();
            let version = found
                .strip_prefix(FORMAT_MAGIC)
                .map(str::trim)
                .and_then(|v| v.parse::<u32>().ok());
            if version == Some(FORMAT_VERSION) {
                Ok(())
            } else {
                Err(Error::UnsupportedFormat {
                    path,
                    found: found.chars().take(64).collect(),
                    supported: FORMAT_VERSION,
                })
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
            if entries.next().is_some() {
                return Err(Error::UnsupportedFormat {
                    path,
                    found: "no FORMAT file in a non-empty directory".into(),
                    supported: FORMAT_VERSION,
                });
            }
            let tmp = dir.join("FORMAT.tmp");
            std::fs::write(&tmp, format!("{FORMAT_MAGIC} {FORMAT_VERSION}\n"))
                .map_err(io_err(&tmp))?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

impl Engine {
    /// Open (or create) the engine in `dir` (`DATA_DIR/tsdb`).
    pub fn open(dir: &Path, config: EngineConfig, clock: Arc<dyn Clock>) -> Result<Engine, Error> {
        config.validate()?;
        check_format(dir)?;
        let db = Database::builder(dir.join("db"))
            .cache_size(config.cache_bytes)
            .max_journaling_size(config.max_journal_bytes.max(2 << 20))
            .open()
            .map_err(Error::fjall("open database"))?;
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .map_err(Error::fjall("open meta keyspace"))?;
        let head_memtable = config.memtable_bytes.max(1 << 20);
        let head = db
            .keyspace("head", || {
                KeyspaceCreateOptions::default().max_memtable_size(head_memtable)
            })
            .map_err(Error::fjall("open head keyspace"))?;
        let mut parts = BTreeMap::new();
        for name in db.list_keyspace_names() {
            if let Some((tier, start, end)) = Tier::parse_partition(&name) {
                let ks = db
                    .keyspace(&name, || config.partition_options())
                    .map_err(Error::fjall("open partition"))?;
                parts.insert((tier, start), (end, ks));
            }
        }
        let engine = Engine {
            dir: dir.to_owned(),
            db,
            meta,
            head,
            parts: RwLock::new(parts),
            agents: RwLock::new(HashMap::new()),
            config,
            clock,
            seq: AtomicU64::new(0),
            maintenance: Mutex::new(()),
            dropped_samples: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            rewritten: Mutex::new(BTreeSet::new()),
            writer: OnceLock::new(),
            shapes: shapes::Shapes::default(),
        };
        engine.load()?;
        Ok(engine)
    }

    /// Rebuild the in-memory state from `meta` and the keys of the head's
    /// open windows (a directory without `H` keys: from every head key, once).
    fn load(&self) -> Result<(), Error> {
        let bad = |d: &str| Error::corrupt("meta keyspace", d.to_owned());
        let mut indexed = false;
        for item in self.meta.iter() {
            let (k, v) = item.into_inner().map_err(Error::fjall("scan meta"))?;
            if k.as_ref() == [meta::HEAD_INDEXED] {
                indexed = true;
                continue;
            }
            let (Some(kind), Some(agent)) = (k.first(), k.get(1..9).and_then(series::u64_from))
            else {
                return Err(bad("short key"));
            };
            let a = self.agent(agent);
            let mut st = a.lock();
            match *kind {
                meta::SERIES => {
                    let sid = k
                        .get(9..13)
                        .and_then(|b| b.try_into().ok())
                        .map(u32::from_be_bytes)
                        .ok_or_else(|| bad("series key"))?;
                    let key = series::decode_series_key(&v)?;
                    if st.keys.len() <= sid as usize {
                        st.keys
                            .resize(sid as usize + 1, Arc::new(SeriesKey::new("")));
                    }
                    let key = Arc::new(key);
                    st.keys[sid as usize] = key.clone();
                    st.series.insert(key, sid);
                }
                meta::WATERMARK => {
                    let t = *k.get(9).ok_or_else(|| bad("watermark key"))? as usize;
                    let wm = series::ts_from(&v).ok_or_else(|| bad("watermark value"))?;
                    if t < 3 {
                        st.wm[t] = Some(wm);
                        st.claimed[t] = wm;
                    }
                }
                meta::DIRTY => {
                    let t = *k.get(9).ok_or_else(|| bad("dirty key"))?;
                    let hour = k
                        .get(10..18)
                        .and_then(series::ts_from)
                        .ok_or_else(|| bad("dirty key"))?;
                    let generation = series::u64_from(&v).ok_or_else(|| bad("dirty value"))?;
                    st.next_gen = st.next_gen.max(generation + 1);
                    st.dirty.insert((t, hour), generation);
                }
                meta::DELETED => {
                    st.deleted = Some(series::ts_from(&v).ok_or_else(|| bad("deleted value"))?);
                }
                meta::HEAD_WINDOW => {
                    let hour = k
                        .get(9..17)
                        .and_then(series::ts_from)
                        .ok_or_else(|| bad("head window key"))?;
                    st.head_windows.insert(hour);
                }
                _ => return Err(bad("unknown key prefix")),
            }
        }
        let mut max_seq = 0u64;
        if indexed {
            // A write's seq only has to exceed those of the unsealed rows it
            // may share a timestamp with: the rows of the open windows.
            for a in self.all_agents() {
                let windows: Vec<i64> = a.lock().head_windows.iter().copied().collect();
                for w in windows {
                    let range = head::head_bound(a.id, w)..head::head_bound(a.id, w + HOUR);
                    for item in self.head.range(range) {
                        let k = item.key().map_err(Error::fjall("scan head"))?;
                        let (_, _, seq) = head::parse_head_key(&k)?;
                        max_seq = max_seq.max(seq + 1);
                    }
                }
            }
        } else {
            // Made before `H` keys: find the windows in the whole head, then
            // record them (one batch, with the marker) so later opens need not.
            for item in self.head.iter() {
                let k = item.key().map_err(Error::fjall("scan head"))?;
                let (agent, ts, seq) = head::parse_head_key(&k)?;
                max_seq = max_seq.max(seq + 1);
                self.agent(agent)
                    .lock()
                    .head_windows
                    .insert(floor_to(ts, HOUR));
            }
            let mut batch = self.db.batch().durability(Some(self.persist_mode()));
            for a in self.all_agents() {
                for w in &a.lock().head_windows {
                    batch.insert(&self.meta, series::head_window_key(a.id, *w), []);
                }
            }
            batch.insert(&self.meta, [meta::HEAD_INDEXED], []);
            batch
                .commit()
                .map_err(Error::fjall("record head windows"))?;
        }
        self.seq.store(max_seq, Ordering::SeqCst);
        Ok(())
    }

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

    /// The row of one wire report: its samples (see [`crate::model::report_samples`]),
    /// with a key array shared by every report of the same shape, which
    /// makes the row cheap to build and to stage.
    pub fn report_row(&self, r: &crate::model::Report) -> Row {
        self.shapes.row(r)
    }

    /// Store rows of one agent. Returns once they are in fjall's journal
    /// (written to the OS, or fsynced with [`Durability::SyncData`]).
    ///
    /// Rows may come in any order, repeat timestamps (the later write wins
    /// per series) or be late; rows older than raw retention are dropped
    /// (counted in [`EngineStats::dropped_samples`]). Blocking: call it from
    /// `spawn_blocking` in async code, or use [`Engine::write_grouped`].
    pub fn write(&self, agent: u64, rows: &[Row]) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let oldest = self.oldest_writable();
        let a = self.agent(agent);
        let mut st = a.lock();
        let mut ops = Vec::new();
        let staged = self.stage(agent, &st, rows, oldest, &mut ops)?;
        let mut batch = self.db.batch().durability(Some(self.persist_mode()));
        self.fill_batch(&mut batch, ops);
        batch.commit().map_err(Error::fjall("commit write batch"))?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        // Durable: now make it visible in memory.
        staged.apply(&mut st);
        Ok(())
    }

    fn oldest_writable(&self) -> i64 {
        self.clock
            .now_ms()
            .saturating_sub(self.config.raw_retention_ms)
    }

    fn fill_batch(&self, batch: &mut fjall::OwnedWriteBatch, ops: Vec<Op>) {
        for op in ops {
            match op {
                Op::Meta(k, v) => batch.insert(&self.meta, k, v),
                Op::Head(k, v) => batch.insert(&self.head, k, v),
            }
        }
    }

    /// The inserts that store `rows` of `agent` (appended to `ops`) and the
    /// in-memory changes to make once they are durable. Changes nothing
    /// itself, so a refused agent leaves no trace in a shared batch.
    fn stage<'r>(
        &self,
        agent: u64,
        st: &AgentState,
        rows: impl IntoIterator<Item = &'r Row>,
        oldest: i64,
        ops: &mut Vec<Op>,
    ) -> Result<Staged, Error> {
        if st.deleted.is_some() {
            return Err(Error::AgentDeleted { agent });
        }
        let mark = ops.len();
        let mut new_keys: Vec<SeriesKey> = Vec::new();
        let mut new_ids: FastMap<&SeriesKey, u32> = FastMap::default();
        let mut windows = BTreeSet::new();
        let mut dirty: BTreeMap<(u8, i64), u64> = BTreeMap::new();
        let mut next_gen = st.next_gen;
        let mut dropped = 0u64;
        let mut samples = Vec::with_capacity(64);
        let mut first_hour: Option<i64> = None;
        let mut shape: Option<Shape> = None;

        for row in rows {
            if row.keys.len() != row.values.len() {
                ops.truncate(mark);
                return Err(Error::InvalidRequest(format!(
                    "a row of agent {agent} has {} keys and {} values",
                    row.keys.len(),
                    row.values.len()
                )));
            }
            if row.ts_ms < oldest {
                dropped += row.values.len() as u64;
                continue;
            }
            let known = [shape.as_ref(), st.shape.as_ref()]
                .into_iter()
                .flatten()
                .find(|s| Arc::ptr_eq(&s.keys, &row.keys));
            let sids = match known {
                Some(s) => s.sids.clone(),
                None => {
                    let mut sids = Vec::with_capacity(row.keys.len());
                    for key in row.keys.iter() {
                        let sid = match st.series.get(key).or_else(|| new_ids.get(key)) {
                            Some(sid) => *sid,
                            None => {
                                let Ok(sid) = u32::try_from(st.keys.len() + new_keys.len()) else {
                                    ops.truncate(mark);
                                    return Err(Error::InvalidRequest(format!(
                                        "agent {agent} has too many series"
                                    )));
                                };
                                ops.push(Op::Meta(
                                    series::series_meta_key(agent, sid),
                                    series::encode_series_key(key),
                                ));
                                new_ids.insert(key, sid);
                                new_keys.push(key.clone());
                                sid
                            }
                        };
                        sids.push(sid);
                    }
                    let sids: Arc<[u32]> = sids.into();
                    shape = Some(Shape {
                        keys: row.keys.clone(),
                        sids: sids.clone(),
                    });
                    sids
                }
            };
            samples.clear();
            samples.extend(sids.iter().copied().zip(row.values.iter().copied()));
            let seq = self.seq.fetch_add(1, Ordering::Relaxed);
            ops.push(Op::Head(
                head::head_key(agent, row.ts_ms, seq).to_vec(),
                head::encode_row(&samples),
            ));
            let hour = floor_to(row.ts_ms, HOUR);
            windows.insert(hour);
            first_hour = Some(first_hour.map_or(hour, |f: i64| f.min(hour)));
            for tier in [Tier::Min1, Tier::Hour1] {
                let t = tier.code();
                if st.wm[t as usize].is_some()
                    && hour < st.claimed[t as usize]
                    && !dirty.contains_key(&(t, hour))
                {
                    dirty.insert((t, hour), next_gen);
                    ops.push(Op::Meta(
                        series::dirty_key(agent, t, hour),
                        next_gen.to_be_bytes().to_vec(),
                    ));
                    next_gen += 1;
                }
            }
        }
        // A window's first head row records the window in `meta`, in the same
        // batch, so opening the engine need not scan the head for them.
        for w in &windows {
            if !st.head_windows.contains(w) {
                ops.push(Op::Meta(series::head_window_key(agent, *w), Vec::new()));
            }
        }
        // The first rows of an agent start its compactors' watermarks.
        let init_wm = match first_hour {
            Some(h) if st.wm[Tier::Min1.code() as usize].is_none() => {
                for tier in [Tier::Min1, Tier::Hour1] {
                    ops.push(Op::Meta(
                        series::watermark_key(agent, tier.code()),
                        series::ts_bytes(h).to_vec(),
                    ));
                }
                Some(h)
            }
            _ => None,
        };
        if dropped > 0 {
            self.dropped_samples.fetch_add(dropped, Ordering::Relaxed);
        }
        Ok(Staged {
            new_keys,
            shape,
            windows,
            dirty,
            next_gen,
            init_wm,
        })
    }

    /// Store rows of one agent like [`Engine::write`], without blocking the
    /// caller: the rows go to the engine's writer thread, which commits
    /// every write waiting at that moment in one fjall batch (group commit:
    /// one journal write, or one fsync with [`Durability::SyncData`], for
    /// the lot). The future resolves once the batch holding these rows is
    /// durable, with the same guarantee as [`Engine::write`]; a refused
    /// agent (deleted) fails alone, a failed commit fails the whole group.
    pub async fn write_grouped(self: &Arc<Self>, agent: u64, rows: Vec<Row>) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let (done, wait) = tokio::sync::oneshot::channel();
        let job = group::Job { agent, rows, done };
        self.writer
            .get_or_init(|| group::start(Arc::downgrade(self)))
            .send(job)
            .map_err(|_| group::stopped(&self.dir))?;
        wait.await.map_err(|_| group::stopped(&self.dir))?
    }

    /// Make an agent's data unqueryable at once and refuse its writes; its
    /// head rows and dictionary are purged by maintenance, its blocks leave
    /// with their partitions.
    pub fn delete_agent(&self, agent: u64) -> Result<(), Error> {
        let a = self.agent(agent);
        let mut st = a.lock();
        let now = self.clock.now_ms();
        self.meta
            .insert(series::deleted_key(agent), series::ts_bytes(now))
            .map_err(Error::fjall("mark agent deleted"))?;
        st.deleted = Some(now);
        Ok(())
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
        }
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
            s.dirty_hours += st.dirty.len();
            if let Some(wm) = st.wm[Tier::Min1.code() as usize] {
                s.compactor_lag_ms = s.compactor_lag_ms.max(closed - wm);
            }
        }
        s
    }

    fn parts_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<(Tier, i64), (i64, Keyspace)>> {
        self.parts
            .read()
            .expect("partition map lock is never held across a panic")
    }

    /// The partition of `tier` containing `ts`, if any.
    fn find_part(
        parts: &BTreeMap<(Tier, i64), (i64, Keyspace)>,
        tier: Tier,
        ts: i64,
    ) -> Option<Keyspace> {
        parts
            .range((tier, i64::MIN)..=(tier, ts))
            .next_back()
            .filter(|(_, (end, _))| ts < *end)
            .map(|(_, (_, ks))| ks.clone())
    }

    /// The partition keyspace holding `ts` of `tier`, if it exists.
    fn part(&self, tier: Tier, ts: i64) -> Option<Keyspace> {
        Self::find_part(&self.parts_read(), tier, ts)
    }

    /// The partition keyspace holding `ts` of `tier`, created when missing.
    /// A new partition spans the configured length, trimmed so it never
    /// overlaps partitions made with another span.
    fn part_or_create(&self, tier: Tier, ts: i64) -> Result<Keyspace, Error> {
        if let Some(ks) = self.part(tier, ts) {
            return Ok(ks);
        }
        let mut parts = self
            .parts
            .write()
            .expect("partition map lock is never held across a panic");
        if let Some(ks) = Self::find_part(&parts, tier, ts) {
            return Ok(ks);
        }
        let span = self.config.partition_ms[tier.code() as usize];
        let mut start = floor_to(ts, span);
        let mut end = start + span;
        if let Some((_, (prev_end, _))) = parts.range((tier, i64::MIN)..=(tier, ts)).next_back() {
            start = start.max(*prev_end);
        }
        if let Some(((_, next_start), _)) = parts.range((tier, ts)..=(tier, i64::MAX)).next() {
            end = end.min(*next_start);
        }
        let ks = self
            .db
            .keyspace(
                &tier.partition_name(start, end),
                KeyspaceCreateOptions::default,
            )
            .map_err(Error::fjall("create partition"))?;
        parts.insert((tier, start), (end, ks.clone()));
        Ok(ks)
    }

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

#[cfg(test)]
mod tests {
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
