//! Background maintenance: seal closed raw windows from the head into
//! blocks, roll raw data into 1 m and 1 m into 1 h aggregates, recompute the
//! hours late data made dirty, then apply retention. Never runs on the write
//! path; [`Engine::run_maintenance`] is one pass.
//!
//! Progress is persisted in `meta` in the same batch as the blocks it
//! describes: per agent and aggregate tier a watermark (every hour before it
//! is aggregated) and the dirty hours (written by `write` in the batch of the
//! late row), so a restart resumes where the last pass stopped.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;

use super::chunk::encoder::{POW10, as_decimals};
use super::chunk::{Block, BlockKind, BlockReader, SeriesColumns, encode_block};
use super::head;
use super::query::{Point, SeriesMap, bucket};
use super::series::{block_key, dirty_key, head_window_key, ts_bytes, watermark_key};
use super::tier::{HOUR, Tier, floor_to};
use super::{Agent, Engine, MaintenanceReport};

/// Build an aggregate block from per-series points.
fn agg_block(points: &SeriesMap) -> Block {
    let ts: Vec<i64> = points
        .values()
        .flat_map(|p| p.iter().map(|p| p.ts_ms))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let series = points
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(sid, pts)| {
            let rows = pts
                .iter()
                .map(|p| ts.binary_search(&p.ts_ms).unwrap_or(0) as u32)
                .collect();
            let mins: Vec<f64> = pts.iter().map(|p| p.min).collect();
            let maxs: Vec<f64> = pts.iter().map(|p| p.max).collect();
            let sums = exact_sums(&mins, &maxs, pts.iter().map(|p| p.sum));
            let cols = vec![
                mins,
                maxs,
                sums,
                pts.iter().map(|p| p.count as f64).collect(),
                pts.iter().map(|p| p.last).collect(),
            ];
            SeriesColumns {
                sid: *sid,
                rows,
                cols,
            }
        })
        .collect();
    Block {
        kind: BlockKind::Agg,
        ts,
        series,
    }
}

/// Sums of values that are all decimals of `scale` digits are decimals of
/// that scale too, but adding them in f64 leaves rounding noise in the last
/// bits (0.1 + 0.2 = 0.30000000000000004), which makes the column a full
/// float (Gorilla, ~7 bytes a point) instead of a scaled integer (~1-2).
/// When min and max are decimals of one scale, each sum is rounded to it if
/// that moves it by no more than the noise (a few ulps): the rounded sum is
/// the exact one.
fn exact_sums(mins: &[f64], maxs: &[f64], sums: impl Iterator<Item = f64>) -> Vec<f64> {
    let both: Vec<f64> = mins.iter().chain(maxs).copied().collect();
    let Some((scale, _)) = as_decimals(&both) else {
        return sums.collect();
    };
    let p = POW10[scale as usize];
    sums.map(|s| {
        let r = (s * p).round() / p;
        if r.is_finite() && (r - s).abs() <= s.abs().max(1.0) * 1e-12 {
            r
        } else {
            s
        }
    })
    .collect()
}

/// The samples of one raw window, per series in time order. Sealing adds
/// them in time order (the old block's rows, then the head's in key order),
/// so nearly every sample is a push: a late sample older than what the
/// series already has is put in its place, and a sample at a time the series
/// already has replaces it (the later write wins).
#[derive(Default)]
struct RawSamples {
    series: BTreeMap<u32, Vec<(i64, f64)>>,
}

impl RawSamples {
    fn insert(&mut self, sid: u32, ts: i64, v: f64) {
        let s = self.series.entry(sid).or_default();
        match s.last_mut() {
            Some(last) if last.0 == ts => last.1 = v,
            Some(last) if last.0 > ts => match s.binary_search_by_key(&ts, |p| p.0) {
                Ok(i) => s[i].1 = v,
                Err(i) => s.insert(i, (ts, v)),
            },
            _ => s.push((ts, v)),
        }
    }

    /// The raw block of these samples.
    fn block(self) -> Block {
        let mut ts: Vec<i64> = self
            .series
            .values()
            .flat_map(|s| s.iter().map(|p| p.0))
            .collect();
        ts.sort_unstable();
        ts.dedup();
        let series = self
            .series
            .into_iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(sid, s)| {
                // Both in time order: one walk finds every row.
                let mut row = 0usize;
                let rows = s
                    .iter()
                    .map(|(t, _)| {
                        while ts.get(row).is_some_and(|x| x < t) {
                            row += 1;
                        }
                        row as u32
                    })
                    .collect();
                SeriesColumns {
                    sid,
                    rows,
                    cols: vec![s.into_iter().map(|p| p.1).collect()],
                }
            })
            .collect();
        Block {
            kind: BlockKind::Raw,
            ts,
            series,
        }
    }
}

impl Engine {
    /// One pass of sealing, downsampling, recomputation and retention.
    pub fn run_maintenance(&self) -> Result<MaintenanceReport, Error> {
        let _one_at_a_time = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now_ms();
        let mut report = MaintenanceReport::default();
        for agent in self.all_agents() {
            if agent.lock().deleted.is_some() {
                continue;
            }
            // One agent's damaged data must not stop the others' maintenance.
            let pass = (|| {
                self.seal_agent(&agent, now, &mut report)?;
                for tier in [Tier::Min1, Tier::Hour1] {
                    self.recompute_dirty(&agent, tier, &mut report)?;
                    self.advance(&agent, tier, now, &mut report)?;
                }
                Ok::<(), Error>(())
            })();
            if let Err(e) = pass {
                tracing::error!(agent = agent.id, error = %e, "tsdb maintenance of this agent failed; the others go on");
            }
        }
        self.apply_retention(now, &mut report)?;
        self.compact_superseded(&mut report)?;
        Ok(report)
    }

    /// Rewrite what this pass made obsolete, so it costs no lasting space:
    /// the head once windows were sealed or agents purged (its rows are gone
    /// but their tombstones stay in fjall's tables until a compaction reaches
    /// the last level), and each aggregate partition a block was rewritten
    /// in (the previous version of the block stays until then too). A major
    /// compaction after a memtable flush leaves one table of live entries.
    /// The head holds the open windows (about an hour of rows), an aggregate
    /// partition a day of 1 m or four weeks of 1 h blocks.
    fn compact_superseded(&self, report: &mut MaintenanceReport) -> Result<(), Error> {
        let mut targets: BTreeMap<u64, fjall::Keyspace> = BTreeMap::new();
        if report.sealed_windows > 0 || report.purged_agents > 0 {
            targets.insert(self.head.id(), self.head.clone());
        }
        let rewritten =
            std::mem::take(&mut *self.rewritten.lock().unwrap_or_else(|p| p.into_inner()));
        for (tier, window) in rewritten {
            if let Some(ks) = self.part(tier, window) {
                targets.insert(ks.id(), ks);
            }
        }
        // A raw partition is compacted once a tenth of it is replaced
        // blocks: it is the largest kind (hours of every agent), so not
        // after every late row, and the waste stays bounded.
        {
            let mut superseded = self
                .raw_superseded
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            superseded.retain(
                |id, (window, bytes)| match self.part(Tier::Raw5s, *window) {
                    Some(ks) if ks.id() == *id && *bytes * 10 >= ks.disk_space() => {
                        targets.insert(ks.id(), ks);
                        false
                    }
                    Some(ks) => ks.id() == *id,
                    // Dropped by retention meanwhile.
                    None => false,
                },
            );
        }
        for ks in targets.into_values() {
            ks.rotate_memtable_and_wait()
                .map_err(Error::fjall("flush before compaction"))?;
            super::crashpoint::reached("compact");
            ks.major_compact()
                .map_err(Error::fjall("compact superseded entries"))?;
            report.compacted_keyspaces += 1;
        }
        Ok(())
    }

    fn note_raw_superseded(&self, window: i64, bytes: u64) {
        let Some(ks) = self.part(Tier::Raw5s, window) else {
            return;
        };
        self.raw_superseded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(ks.id())
            .or_insert((window, 0))
            .1 += bytes;
    }

    fn note_rewritten(&self, tier: Tier, window: i64) {
        self.rewritten
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((tier, window));
    }

    /// Seals every window with head rows, the open ones too, one agent
    /// after another until `deadline`: a graceful stop calls it, so a
    /// stopped server's directory holds the last hour as blocks (about a byte
    /// a sample) instead of head rows (about ten). A window that gets more
    /// rows after the restart is sealed again when it closes, its block
    /// merged with them as a late row's is. Returns what it did; agents not
    /// reached by the deadline keep their head rows, which are as durable.
    pub fn seal_open_windows(
        &self,
        deadline: std::time::Instant,
    ) -> Result<MaintenanceReport, Error> {
        let _one_at_a_time = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = MaintenanceReport::default();
        for agent in self.all_agents() {
            if std::time::Instant::now() >= deadline {
                break;
            }
            if agent.lock().deleted.is_some() {
                continue;
            }
            if let Err(e) = self.seal_windows(&agent, i64::MAX, &mut report) {
                tracing::error!(agent = agent.id, error = %e, "sealing the open windows of this agent failed; its rows stay in the head");
            }
        }
        self.compact_superseded(&mut report)?;
        Ok(report)
    }

    /// Seal every closed raw window of `agent` that has head rows.
    fn seal_agent(
        &self,
        agent: &Agent,
        now: i64,
        report: &mut MaintenanceReport,
    ) -> Result<(), Error> {
        self.seal_windows(agent, now - self.config.seal_grace_ms - HOUR, report)
    }

    /// Seal the windows of `agent` with head rows that start at or before `limit`.
    fn seal_windows(
        &self,
        agent: &Agent,
        limit: i64,
        report: &mut MaintenanceReport,
    ) -> Result<(), Error> {
        let windows: Vec<i64> = agent
            .lock()
            .head_windows
            .iter()
            .copied()
            .filter(|w| *w <= limit)
            .collect();
        for w in windows {
            // Held through the commit, so no row of this window slips in
            // between reading the head and removing what was read.
            let mut st = agent.lock();
            let mut rows = Vec::new();
            for item in self
                .head
                .range(head::head_bound(agent.id, w)..head::head_bound(agent.id, w + HOUR))
            {
                let (k, v) = item.into_inner().map_err(Error::fjall("read head"))?;
                rows.push((k, v));
            }
            if rows.is_empty() {
                self.meta
                    .remove(head_window_key(agent.id, w))
                    .map_err(Error::fjall("remove head window"))?;
                st.head_windows.remove(&w);
                continue;
            }
            let ks = self.part_or_create(Tier::Raw5s, w)?;
            let key = block_key(agent.id, w);
            let mut samples = RawSamples::default();
            if let Some(old) = ks.get(key).map_err(Error::fjall("read raw block"))? {
                self.note_raw_superseded(w, old.len() as u64);
                let block = BlockReader::parse(&old)
                    .and_then(|r| r.to_block())
                    .map_err(|e| Self::corrupt_block(Tier::Raw5s, agent.id, w, e))?;
                for s in block.series {
                    for (row, v) in s.rows.iter().zip(&s.cols[0]) {
                        if let Some(t) = block.ts.get(*row as usize) {
                            samples.insert(s.sid, *t, *v);
                        }
                    }
                }
            }
            let mut batch = self.db.batch().durability(Some(self.persist_mode()));
            for (k, v) in &rows {
                let (_, ts, _) = head::parse_head_key(k)?;
                for (sid, val) in head::decode_row(v)? {
                    samples.insert(sid, ts, val);
                }
                batch.remove(&self.head, k.clone());
            }
            let bytes = encode_block(&samples.block(), self.config.raw_zstd_level);
            batch.insert(&ks, key, bytes);
            batch.remove(&self.meta, head_window_key(agent.id, w));
            batch
                .commit()
                .map_err(Error::fjall("commit sealed window"))?;
            super::crashpoint::reached("seal");
            st.head_windows.remove(&w);
            report.sealed_windows += 1;
        }
        Ok(())
    }

    /// Compute `tier`'s points for the hours `[a, b)` from its finer tier.
    fn compute(&self, agent: u64, tier: Tier, a: i64, b: i64) -> Result<SeriesMap, Error> {
        let Some(view) = self.view(agent) else {
            return Ok(SeriesMap::new());
        };
        let finer = tier.finer().ok_or_else(|| {
            Error::InvalidRequest("the raw tier is not computed from another".into())
        })?;
        let sids: Vec<u32> = (0..view.keys.len() as u32).collect();
        let pts = self.tier_points(agent, finer, &sids, a, b, &view, tier.interval_ms())?;
        // Merge the halves of buckets cut at hour boundaries.
        Ok(pts
            .into_iter()
            .map(|(sid, p)| (sid, bucket(&p, tier.interval_ms())))
            .collect())
    }

    /// The block of `tier` at `window` with the points in `ranges` replaced by `new`.
    fn merged_block(
        &self,
        agent: u64,
        tier: Tier,
        window: i64,
        ranges: &[(i64, i64)],
        new: SeriesMap,
    ) -> Result<Vec<u8>, Error> {
        let mut points = SeriesMap::new();
        if let Some(old) = self.read_agg_block(agent, tier, window)? {
            let block = BlockReader::parse(&old)
                .and_then(|r| r.to_block())
                .map_err(|e| Self::corrupt_block(tier, agent, window, e))?;
            for s in block.series {
                let dst = points.entry(s.sid).or_default();
                for (j, row) in s.rows.iter().enumerate() {
                    let Some(ts) = block.ts.get(*row as usize).copied() else {
                        continue;
                    };
                    if ranges.iter().any(|(a, b)| (*a..*b).contains(&ts)) {
                        continue;
                    }
                    dst.push(Point {
                        ts_ms: ts,
                        min: s.cols[0][j],
                        max: s.cols[1][j],
                        sum: s.cols[2][j],
                        count: s.cols[3][j] as u64,
                        last: s.cols[4][j],
                    });
                }
            }
        }
        for (sid, mut pts) in new {
            let dst = points.entry(sid).or_default();
            dst.append(&mut pts);
            dst.sort_by_key(|p| p.ts_ms);
        }
        Ok(encode_block(
            &agg_block(&points),
            self.config.block_zstd_level,
        ))
    }

    /// Recompute the dirty hours of `tier`, one block window at a time.
    fn recompute_dirty(
        &self,
        agent: &Agent,
        tier: Tier,
        report: &mut MaintenanceReport,
    ) -> Result<(), Error> {
        let t = tier.code();
        let dirty: Vec<(i64, u64)> = agent
            .lock()
            .dirty
            .range((t, i64::MIN)..=(t, i64::MAX))
            .map(|((_, h), g)| (*h, *g))
            .collect();
        let mut by_window: BTreeMap<i64, Vec<(i64, u64)>> = BTreeMap::new();
        for (h, g) in dirty {
            by_window
                .entry(floor_to(h, tier.block_window_ms()))
                .or_default()
                .push((h, g));
        }
        for (window, hours) in by_window {
            let mut new = SeriesMap::new();
            let ranges: Vec<(i64, i64)> = hours.iter().map(|(h, _)| (*h, h + HOUR)).collect();
            for (a, b) in &ranges {
                for (sid, mut pts) in self.compute(agent.id, tier, *a, *b)? {
                    new.entry(sid).or_default().append(&mut pts);
                }
            }
            let bytes = self.merged_block(agent.id, tier, window, &ranges, new)?;
            let ks = self.part_or_create(tier, window)?;

            let mut st = agent.lock();
            let mut batch = self.db.batch().durability(Some(self.persist_mode()));
            batch.insert(&ks, block_key(agent.id, window), bytes);
            let mut done = Vec::new();
            let mut coarser_dirty = Vec::new();
            for (h, g) in &hours {
                // A newer late row re-marked the hour while we computed: keep it dirty.
                if st.dirty.get(&(t, *h)) == Some(g) {
                    batch.remove(&self.meta, dirty_key(agent.id, t, *h));
                    done.push(*h);
                }
                if let Some(c) = tier.coarser() {
                    let c = c.code();
                    if st.wm[c as usize].is_some() && *h < st.claimed[c as usize] {
                        let g = st.next_gen + coarser_dirty.len() as u64;
                        batch.insert(&self.meta, dirty_key(agent.id, c, *h), g.to_be_bytes());
                        coarser_dirty.push((*h, g));
                    }
                }
            }
            batch
                .commit()
                .map_err(Error::fjall("commit recomputed hours"))?;
            self.note_rewritten(tier, window);
            for h in done {
                st.dirty.remove(&(t, h));
            }
            if let Some(c) = tier.coarser() {
                st.next_gen += coarser_dirty.len() as u64;
                for (h, g) in coarser_dirty {
                    st.dirty.insert((c.code(), h), g);
                }
            }
            report.recomputed_hours += hours.len();
        }
        Ok(())
    }

    /// Aggregate closed hours past `tier`'s watermark, a block window at a time.
    fn advance(
        &self,
        agent: &Agent,
        tier: Tier,
        now: i64,
        report: &mut MaintenanceReport,
    ) -> Result<(), Error> {
        let t = tier.code() as usize;
        let finer = tier
            .finer()
            .ok_or_else(|| Error::InvalidRequest("the raw tier has no watermark".into()))?;
        loop {
            let (wm, limit) = {
                let st = agent.lock();
                let Some(wm) = st.wm[t] else { return Ok(()) };
                let mut limit = floor_to(now - self.config.seal_grace_ms, HOUR);
                // The 1 h compactor never passes the 1 m one (raw has no watermark).
                if let Some(fwm) = st.wm[finer.code() as usize] {
                    limit = limit.min(fwm);
                }
                (wm, limit)
            };
            if wm >= limit {
                return Ok(());
            }
            // Nothing older than the source's retention is left to aggregate.
            // (A source partition lives until its end passes retention.)
            let oldest_source = floor_to(
                now - self.config.retention_ms(finer)
                    - self.config.partition_ms[finer.code() as usize],
                HOUR,
            );
            let a = wm.max(oldest_source).min(limit);
            let window = floor_to(a, tier.block_window_ms());
            let b = (window + tier.block_window_ms()).min(limit);
            agent.lock().claimed[t] = b;
            let new = if a < b {
                self.compute(agent.id, tier, a, b)?
            } else {
                SeriesMap::new()
            };
            let mut batch = self.db.batch().durability(Some(self.persist_mode()));
            if new.values().any(|p| !p.is_empty()) {
                let bytes = self.merged_block(agent.id, tier, window, &[(a, b)], new)?;
                let ks = self.part_or_create(tier, window)?;
                batch.insert(&ks, block_key(agent.id, window), bytes);
                report.aggregated_windows += 1;
            }
            batch.insert(&self.meta, watermark_key(agent.id, t as u8), ts_bytes(b));
            let mut st = agent.lock();
            batch.commit().map_err(Error::fjall("commit aggregates"))?;
            super::crashpoint::reached("rollup");
            st.wm[t] = Some(b);
            drop(st);
            self.note_rewritten(tier, window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Mostly in time order with late and repeated times mixed in, as
        /// sealing sees them: the block is what a map with the later write
        /// winning gives.
        #[test]
        fn raw_samples_build_the_block_a_map_would(
            writes in proptest::collection::vec((0u32..4, 0i64..40, -5i64..5), 0..200)
        ) {
            let mut samples = RawSamples::default();
            let mut model: BTreeMap<u32, BTreeMap<i64, f64>> = BTreeMap::new();
            for (i, (sid, t, v)) in writes.iter().enumerate() {
                // Drift forward with the write index, so most writes are pushes.
                let ts = (i as i64 / 4 + t - 20).max(0) * 5000;
                let v = *v as f64 + i as f64;
                samples.insert(*sid, ts, v);
                model.entry(*sid).or_default().insert(ts, v);
            }
            let block = samples.block();
            let ts: Vec<i64> = model.values().flat_map(|m| m.keys().copied()).collect::<BTreeSet<_>>().into_iter().collect();
            prop_assert_eq!(&block.ts, &ts);
            prop_assert_eq!(block.series.len(), model.len());
            for (s, (sid, m)) in block.series.iter().zip(&model) {
                prop_assert_eq!(s.sid, *sid);
                let got: Vec<(i64, f64)> = s.rows.iter().map(|r| block.ts[*r as usize]).zip(s.cols[0].iter().copied()).collect();
                let want: Vec<(i64, f64)> = m.iter().map(|(t, v)| (*t, *v)).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
