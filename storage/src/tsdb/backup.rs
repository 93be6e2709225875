//! Consistent copies of the time-series store and its integrity check.
//!
//! A copy reads every keyspace through one fjall snapshot (one sequence
//! number across all keyspaces: every write batch is in it entirely or not
//! at all) while maintenance is held off (so no partition is created or
//! dropped under it), and bulk-loads the entries, in key order, into a fresh
//! database: compact, no journal, nothing half-written.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use super::chunk::decoder::BlockReader;
use super::series::{self, meta};
use super::*;

/// Maintenance held off for a backup; take the snapshot with [`BackupGuard::snapshot`].
pub struct BackupGuard<'a> {
    engine: &'a Engine,
    _maintenance: MutexGuard<'a, ()>,
}

impl fmt::Debug for BackupGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupGuard").finish()
    }
}

/// Every keyspace of the engine as of one instant.
pub struct TsdbSnapshot {
    snapshot: fjall::Snapshot,
    keyspaces: Vec<(String, Keyspace)>,
}

impl fmt::Debug for TsdbSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsdbSnapshot")
            .field("keyspaces", &self.keyspaces.len())
            .finish()
    }
}

impl Engine {
    /// Waits for a running maintenance pass to end and holds off the next
    /// until the guard is dropped; writes go on.
    pub fn begin_backup(&self) -> BackupGuard<'_> {
        BackupGuard {
            engine: self,
            _maintenance: self.maintenance.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }
}

impl BackupGuard<'_> {
    /// A snapshot of every keyspace, now. Cheap (no I/O).
    pub fn snapshot(&self) -> TsdbSnapshot {
        let e = self.engine;
        let mut keyspaces = vec![
            ("meta".to_string(), e.meta.clone()),
            ("head".to_string(), e.head.clone()),
        ];
        keyspaces.extend(
            e.parts_read()
                .iter()
                .map(|((tier, start), (end, ks))| (tier.partition_name(*start, *end), ks.clone())),
        );
        TsdbSnapshot {
            snapshot: e.db.snapshot(),
            keyspaces,
        }
    }
}

impl TsdbSnapshot {
    /// Writes the snapshot as a fresh store in `dir` (absent or empty): the
    /// format file and a new fjall database, synced. Returns the entries copied.
    pub fn write_to(&self, dir: &Path) -> Result<u64, Error> {
        check_format(dir)?;
        let db_dir = dir.join("db");
        let db = Database::builder(&db_dir)
            .open()
            .map_err(Error::fjall("create backup database"))?;
        let mut n = 0u64;
        for (name, src) in &self.keyspaces {
            let dst = db
                .keyspace(name, KeyspaceCreateOptions::default)
                .map_err(Error::fjall("create backup keyspace"))?;
            let mut ingest = dst
                .start_ingestion()
                .map_err(Error::fjall("start backup ingestion"))?;
            for item in self.snapshot.iter(src) {
                let (k, v) = item.into_inner().map_err(Error::fjall("read for backup"))?;
                ingest
                    .write(k, v)
                    .map_err(Error::fjall("write backup entry"))?;
                n += 1;
            }
            ingest
                .finish()
                .map_err(Error::fjall("finish backup keyspace"))?;
        }
        db.persist(PersistMode::SyncAll)
            .map_err(Error::fjall("sync backup database"))?;
        Ok(n)
    }
}

/// One damaged place found by [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The keyspace (`meta`, `head`, or a partition such as `raw.<start>.<end>`).
    pub keyspace: String,
    /// Its directory on disk.
    pub path: PathBuf,
    /// The tier, agent and block window (ms) when the damage is in one block.
    pub tier: Option<Tier>,
    pub agent: Option<u64>,
    pub window_ms: Option<i64>,
    pub error: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.keyspace, self.path.display())?;
        if let (Some(tier), Some(agent), Some(w)) = (self.tier, self.agent, self.window_ms) {
            let span = tier.block_window_ms();
            write!(
                f,
                ": agent {agent}, tier {tier}, window {w}..{} ms",
                w + span
            )?;
        }
        write!(f, ": {}", self.error)
    }
}

/// What [`check`] read and found.
#[derive(Debug, Clone, Default)]
pub struct TsdbCheck {
    pub keyspaces: usize,
    pub series: u64,
    pub head_rows: u64,
    pub blocks: u64,
    pub damage: Vec<Damage>,
}

/// Checks the store in `dir` (not open elsewhere): the format file, every
/// entry of every keyspace read through fjall (whose blocks carry
/// checksums), every key parsed, every head row and block decoded, every
/// series of every block decoded. A block whose read fails is retried by
/// point reads of each agent's windows, to name the damaged range.
pub fn check(dir: &Path) -> Result<TsdbCheck, Error> {
    check_format(dir)?;
    let db = Database::builder(dir.join("db"))
        .open()
        .map_err(Error::fjall("open database"))?;
    let mut out = TsdbCheck::default();
    let mut agents = BTreeSet::new();
    let mut names: Vec<String> = db
        .list_keyspace_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    // meta first: it names the agents whose blocks are probed below.
    names.sort_by_key(|n| (n != "meta", n != "head", n.clone()));
    for name in names {
        let ks = db
            .keyspace(&name, KeyspaceCreateOptions::default)
            .map_err(Error::fjall("open keyspace"))?;
        out.keyspaces += 1;
        let place = |tier, agent, window_ms, error: String| Damage {
            keyspace: name.clone(),
            path: ks.path().to_path_buf(),
            tier,
            agent,
            window_ms,
            error,
        };
        let partition = Tier::parse_partition(&name);
        let mut read_failed = false;
        for item in ks.iter() {
            let (k, v) = match item.into_inner() {
                Ok(kv) => kv,
                Err(e) => {
                    read_failed = true;
                    out.damage.push(place(None, None, None, e.to_string()));
                    break;
                }
            };
            let problem = match (name.as_str(), partition) {
                ("meta", _) => {
                    let agent = k.get(1..9).and_then(series::u64_from);
                    if let Some(a) = agent {
                        agents.insert(a);
                    }
                    match (k.first(), agent) {
                        (Some(&meta::SERIES), Some(_)) => {
                            out.series += 1;
                            series::decode_series_key(&v).err().map(|e| e.to_string())
                        }
                        (
                            Some(
                                &(meta::WATERMARK
                                | meta::DIRTY
                                | meta::DELETED
                                | meta::HEAD_WINDOW),
                            ),
                            Some(_),
                        ) => None,
                        (Some(&meta::HEAD_INDEXED), None) if k.len() == 1 => None,
                        _ => Some("unknown meta key".to_string()),
                    }
                    .map(|e| place(None, agent, None, e))
                }
                ("head", _) => {
                    out.head_rows += 1;
                    match head::parse_head_key(&k) {
                        Err(e) => Some(place(Some(Tier::Raw5s), None, None, e.to_string())),
                        Ok((agent, ts, _)) => head::decode_row(&v).err().map(|e| {
                            place(
                                Some(Tier::Raw5s),
                                Some(agent),
                                Some(floor_to(ts, HOUR)),
                                e.to_string(),
                            )
                        }),
                    }
                }
                (_, Some((tier, _, _))) => {
                    out.blocks += 1;
                    let agent = k.get(..8).and_then(series::u64_from);
                    let window = k.get(8..16).and_then(series::ts_from);
                    match decode_all(&v, tier) {
                        Ok(()) if k.len() == 16 => None,
                        Ok(()) => Some("block key of the wrong length".to_string()),
                        Err(e) => Some(e),
                    }
                    .map(|e| place(Some(tier), agent, window, e))
                }
                _ => Some(place(None, None, None, format!("unknown keyspace {name}"))),
            };
            out.damage.extend(problem);
        }
        // Name the damaged windows: a failed table block hides which keys it held.
        if let (true, Some((tier, start, end))) = (read_failed, partition) {
            let bw = tier.block_window_ms();
            for &agent in &agents {
                let mut w = floor_to(start, bw);
                while w < end {
                    match ks.get(series::block_key(agent, w)) {
                        Err(e) => {
                            out.damage
                                .push(place(Some(tier), Some(agent), Some(w), e.to_string()))
                        }
                        Ok(Some(v)) => {
                            if let Err(e) = decode_all(&v, tier) {
                                out.damage.push(place(Some(tier), Some(agent), Some(w), e));
                            }
                        }
                        Ok(None) => {}
                    }
                    w += bw;
                }
            }
        }
    }
    Ok(out)
}

/// Every keyspace of the (closed) store in `dir` with its directory: which
/// files hold which partition.
pub fn keyspace_paths(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let db = Database::builder(dir.join("db"))
        .open()
        .map_err(Error::fjall("open database"))?;
    let mut out = Vec::new();
    for name in db.list_keyspace_names() {
        let ks = db
            .keyspace(&name, KeyspaceCreateOptions::default)
            .map_err(Error::fjall("open keyspace"))?;
        out.push((name.to_string(), ks.path().to_path_buf()));
    }
    out.sort();
    Ok(out)
}

/// Decodes a block and every series in it.
fn decode_all(bytes: &[u8], tier: Tier) -> Result<(), String> {
    let r = BlockReader::parse(bytes).map_err(|e| e.to_string())?;
    let want = if tier == Tier::Raw5s {
        chunk::BlockKind::Raw
    } else {
        chunk::BlockKind::Agg
    };
    if r.kind() != want {
        return Err(format!("a {:?} block in a {tier} partition", r.kind()));
    }
    for i in 0..r.sids().count() {
        r.series(i).map_err(|e| e.to_string())?;
    }
    Ok(())
}
