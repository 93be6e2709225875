//! Opening the engine: check the format, open the keyspaces, and rebuild the
//! in-memory state from `meta` and the head.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use fjall::{Database, KeyspaceCreateOptions};

use super::series::meta;
use super::tier::{HOUR, floor_to};
use super::{Clock, Engine, EngineConfig, Error, Tier, check_format, head, series, shapes};

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
            raw_superseded: Mutex::new(BTreeMap::new()),
            writer: OnceLock::new(),
            shapes: shapes::Shapes::default(),
        };
        engine.load()?;
        Ok(engine)
    }

    /// Rebuild the in-memory state from `meta` and the keys of the head's
    /// open windows (a directory without `H` keys: from every head key, once).
    pub(super) fn load(&self) -> Result<(), Error> {
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
                            .resize(sid as usize + 1, super::evict::PLACEHOLDER.clone());
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
        // No newer sample is known than the open: every series counts as
        // seen now, and is evicted if nothing writes it for raw retention.
        let opened = super::evict::hour_of(self.clock.now_ms());
        for a in self.all_agents() {
            let mut st = a.lock();
            let n = st.keys.len();
            st.seen = vec![opened; n];
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
}
