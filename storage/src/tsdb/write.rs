//! Writing: rows, and the staging of a write into one fjall batch whose
//! in-memory effects apply once it is durable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::tier::{HOUR, floor_to};
use super::{AgentState, Engine, Error, FastMap, SeriesKey, Shape, Tier, group, head, series};

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
    /// The series ids of each run of rows with one key array, with the
    /// newest hour they wrote: marked in `AgentState::seen` (once per
    /// array and hour, not per sample).
    marks: Vec<(Arc<[u32]>, u32)>,
}

impl Staged {
    pub(super) fn apply(self, st: &mut AgentState) {
        for key in self.new_keys {
            let sid = st.keys.len() as u32;
            let key = Arc::new(key);
            st.series.insert(key.clone(), sid);
            st.keys.push(key);
            st.seen.push(0);
        }
        for (sids, hour) in self.marks {
            let top = match &st.marked {
                Some((m, h)) if Arc::ptr_eq(m, &sids) => {
                    if hour <= *h {
                        continue;
                    }
                    hour.max(*h)
                }
                _ => hour,
            };
            for &sid in sids.iter() {
                if let Some(seen) = st.seen.get_mut(sid as usize) {
                    *seen = (*seen).max(hour);
                }
            }
            st.marked = Some((sids, top));
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

impl Engine {
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
        self.revive(agent, &mut st, rows)?;
        let staged = self.stage(agent, &st, rows, oldest, &mut ops)?;
        let mut batch = self.db.batch().durability(Some(self.persist_mode()));
        self.fill_batch(&mut batch, ops);
        batch.commit().map_err(Error::fjall("commit write batch"))?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        // Durable: now make it visible in memory.
        staged.apply(&mut st);
        Ok(())
    }

    pub(super) fn oldest_writable(&self) -> i64 {
        self.clock
            .now_ms()
            .saturating_sub(self.config.raw_retention_ms)
    }

    pub(super) fn fill_batch(&self, batch: &mut fjall::OwnedWriteBatch, ops: Vec<Op>) {
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
    pub(super) fn stage<'r>(
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
        let mut marks: Vec<(Arc<[u32]>, u32)> = Vec::new();

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
            let hour = super::evict::hour_of(row.ts_ms);
            match marks.last_mut() {
                Some((m, h)) if Arc::ptr_eq(m, &sids) => *h = (*h).max(hour),
                _ => marks.push((sids.clone(), hour)),
            }
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
            marks,
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
}
