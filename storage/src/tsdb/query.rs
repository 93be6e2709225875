//! Queries: pick a tier from the range, read blocks and head rows, stitch
//! tiers, and bucket into at most `max_points` points per series.
//!
//! A query's work follows the data that exists, not the span asked for:
//! blocks are looked up only in block windows of existing partitions (and
//! the head's open windows), and runs of finished or unfinished hours are
//! found from the watermark and the dirty marks, not hour by hour. Its range
//! must lie within [`MIN_QUERY_MS`, `MAX_QUERY_MS`) so that no arithmetic on
//! it can overflow, and a [`QueryBudget`] stops it between blocks when it
//! runs out of time or is cancelled.
//!
//! Stitching goes both ways. Towards the present, an aggregate tier answers
//! only the hours its compactor finished (before its watermark and not dirty);
//! the rest is computed from the next finer tier on the fly, down to raw
//! blocks and head rows, so a row is visible as soon as `write` returns.
//! Towards the past, the part of a range older than the chosen tier's
//! retention is read from the next coarser tier.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::model::Report;
use crate::model::{SeriesKey, samples_to_report};

use super::Engine;
use super::chunk::{BlockKind, BlockReader};
use super::head;
use super::series::block_key;
use super::tier::{HOUR, Tier, ceil_to, floor_to};

/// The earliest time a query may name: 0000-01-01T00:00:00Z.
pub const MIN_QUERY_MS: i64 = -62_167_219_200_000;
/// The latest time a query may name (exclusive): 10000-01-01T00:00:00Z.
/// With both bounds, every sum and difference of range times fits an `i64`.
pub const MAX_QUERY_MS: i64 = 253_402_300_800_000;

/// When a query must give up: a time budget and cancel flags, checked
/// between blocks (every few milliseconds of work at most).
#[derive(Debug, Clone, Default)]
pub struct QueryBudget {
    deadline: Option<Instant>,
    budget_ms: u64,
    cancel: Vec<Arc<AtomicBool>>,
}

impl QueryBudget {
    /// No limit (maintenance, tests, tools).
    pub fn unlimited() -> QueryBudget {
        QueryBudget::default()
    }

    /// Stop with [`Error::QueryTimedOut`] once `budget` has passed from now.
    pub fn with_time(mut self, budget: Duration) -> QueryBudget {
        self.deadline = Some(
            Instant::now()
                .checked_add(budget)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 86_400)),
        );
        self.budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Stop with [`Error::QueryCancelled`] once `flag` is set.
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> QueryBudget {
        self.cancel.push(flag);
        self
    }

    /// `Err` once the query must stop.
    pub fn check(&self) -> Result<(), Error> {
        if self.cancel.iter().any(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::QueryCancelled);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Error::QueryTimedOut {
                budget_ms: self.budget_ms,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
thread_local! {
    /// Block windows looked at by queries on this thread (tests check that
    /// a query's work follows the data).
    pub(crate) static WINDOWS_VISITED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn visited() {
    #[cfg(test)]
    WINDOWS_VISITED.with(|v| v.set(v.get() + 1));
}

/// What to read.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub agent: u64,
    /// Exact metric names; empty = all.
    pub metrics: Vec<String>,
    /// Keep only series with this label name and value.
    pub label_filter: Option<(String, String)>,
    pub start_ms: i64,
    /// Exclusive.
    pub stop_ms: i64,
    /// Force a tier (otherwise chosen from the range).
    pub tier: Option<Tier>,
    /// Force a bucket interval (rounded up to a multiple of the tier's, and
    /// raised further if `max_points` requires it; raised intervals are
    /// whole multiples of the coarsest tier interval they span).
    pub interval_ms: Option<i64>,
    /// At most this many points per series; 0 = no limit.
    pub max_points: usize,
}

/// One bucket of one series. `avg = sum / count`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Start of the bucket.
    pub ts_ms: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
    /// The value of the newest sample in the bucket.
    pub last: f64,
}

impl Point {
    pub fn sample(ts_ms: i64, v: f64) -> Point {
        Point {
            ts_ms,
            min: v,
            max: v,
            sum: v,
            count: 1,
            last: v,
        }
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        }
    }

    /// Fold `later` (a newer bucket part) into this one.
    pub fn merge(&mut self, later: &Point) {
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.count += later.count;
        self.last = later.last;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    pub key: SeriesKey,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub tier: Tier,
    pub interval_ms: i64,
    /// The range actually covered: buckets whose start lies in it.
    pub start_ms: i64,
    pub stop_ms: i64,
    pub series: Vec<SeriesPoints>,
}

/// Per series id, points sorted by time.
pub(crate) type SeriesMap = BTreeMap<u32, Vec<Point>>;

/// What a query needs of an agent's state, copied out of its lock.
pub(crate) struct AgentView {
    pub keys: Vec<Arc<SeriesKey>>,
    /// Some slots of `keys` are placeholders of evicted series.
    pub evicted: bool,
    pub wm: [Option<i64>; 3],
    pub dirty: BTreeSet<(u8, i64)>,
    /// Raw windows with rows in the head. Other windows skip the head
    /// entirely: after sealing, the head holds their tombstones, which a
    /// range scan would have to step over.
    pub head_windows: BTreeSet<i64>,
}

impl AgentView {
    /// Whether `tier` holds finished aggregates for the hour starting at `h`
    /// (the definition [`Self::fresh_run`] answers for whole runs of hours).
    #[cfg(test)]
    fn fresh(&self, tier: Tier, h: i64) -> bool {
        self.wm[tier.code() as usize].is_some_and(|wm| h + HOUR <= wm)
            && !self.dirty.contains(&(tier.code(), h))
    }

    /// Whether the hour `h` is [fresh](Self::fresh) in `tier`, and where the
    /// run of hours alike from `h` ends (`> h`; it may pass `e`). Found from
    /// the watermark and the dirty marks, so a run of a year is one step.
    fn fresh_run(&self, tier: Tier, h: i64, e: i64) -> (bool, i64) {
        let code = tier.code();
        let Some(wm) = self.wm[code as usize] else {
            return (false, e.max(h + HOUR));
        };
        // The first hour that ends after the watermark: no later hour is fresh.
        let stale_from = floor_to(wm.saturating_sub(HOUR), HOUR).saturating_add(HOUR);
        if h >= stale_from {
            return (false, e.max(h + HOUR));
        }
        if self.dirty.contains(&(code, h)) {
            let mut end = h + HOUR;
            while end < e && end < stale_from && self.dirty.contains(&(code, end)) {
                end += HOUR;
            }
            return (false, end);
        }
        let next_dirty = self
            .dirty
            .range((code, h)..(code, stale_from))
            .next()
            .map_or(stale_from, |(_, d)| *d);
        (true, next_dirty)
    }
}

/// Merge points into buckets of `interval` (points must be sorted by time),
/// in place and without copying when they already are.
pub(crate) fn rebucket(points: Vec<Point>, interval: i64) -> Vec<Point> {
    let aligned = points.iter().all(|p| p.ts_ms.rem_euclid(interval) == 0)
        && points.windows(2).all(|w| w[0].ts_ms < w[1].ts_ms);
    if aligned {
        points
    } else {
        bucket(&points, interval)
    }
}

/// Merge points into buckets of `interval` (points must be sorted by time).
pub(crate) fn bucket(points: &[Point], interval: i64) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    for p in points {
        let b = floor_to(p.ts_ms, interval);
        match out.last_mut() {
            Some(last) if last.ts_ms == b => last.merge(p),
            _ => out.push(Point { ts_ms: b, ..*p }),
        }
    }
    out
}

fn append(into: &mut SeriesMap, from: SeriesMap) {
    if into.is_empty() {
        *into = from;
        return;
    }
    for (sid, mut pts) in from {
        let dst = into.entry(sid).or_default();
        if dst.is_empty() {
            *dst = pts;
        } else {
            dst.append(&mut pts);
        }
    }
}

/// A block that cannot be read or decoded: its range is left out of the
/// answer (never the whole query), with an error in the log.
/// `statusmonitor check` lists every such block.
fn damaged(tier: Tier, agent: u64, window: i64, e: impl std::fmt::Display) {
    tracing::error!(
        %tier, agent, window_ms = window, error = %e,
        "damaged time-series block left out of the answer; run `statusmonitor check`"
    );
}

impl Engine {
    pub(crate) fn view(&self, agent: u64) -> Option<AgentView> {
        let a = self.existing_agent(agent)?;
        let st = a.lock();
        if st.deleted.is_some() {
            return None;
        }
        Some(AgentView {
            keys: st.keys.clone(),
            evicted: st.evicted > 0,
            wm: st.wm,
            dirty: st.dirty.keys().copied().collect(),
            head_windows: st.head_windows.clone(),
        })
    }

    pub(crate) fn corrupt_block(
        tier: Tier,
        agent: u64,
        window: i64,
        e: impl std::fmt::Display,
    ) -> Error {
        Error::corrupt(
            format!("{tier} block of agent {agent} at {window}"),
            e.to_string(),
        )
    }

    /// The block windows of `tier` overlapping `[s, e)` that may hold data:
    /// those inside an existing partition, and `open` ones (the head's).
    /// Partitions exist only where data was written and until retention
    /// drops them, so this is proportional to the data, not to the span.
    fn data_windows(&self, tier: Tier, s: i64, e: i64, open: Option<&BTreeSet<i64>>) -> Vec<i64> {
        if s >= e {
            return Vec::new();
        }
        let bw = tier.block_window_ms();
        let first = floor_to(s, bw);
        let mut out = Vec::new();
        {
            let parts = self.parts_read();
            // From the partition holding `first` (if any) to the last one starting before `e`.
            let from = parts
                .range((tier, i64::MIN)..=(tier, first))
                .next_back()
                .map_or(first, |((_, start), _)| *start);
            for ((_, start), (end, _)) in parts.range((tier, from)..(tier, e)) {
                let mut w = floor_to((*start).max(first), bw);
                let end = (*end).min(e);
                while w < end {
                    out.push(w);
                    w += bw;
                }
            }
        }
        if let Some(open) = open {
            out.extend(open.range(first..e).copied());
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    /// Every raw sample of `sids` (sorted) in `[s, e)`, sealed blocks overlaid
    /// by head rows (later writes win), handed to `f` in time order per series.
    #[allow(clippy::too_many_arguments)] // all of them are the query's coordinates
    fn scan_raw(
        &self,
        agent: u64,
        head_windows: &BTreeSet<i64>,
        sids: &[u32],
        s: i64,
        e: i64,
        budget: &QueryBudget,
        mut f: impl FnMut(u32, i64, f64),
    ) -> Result<(), Error> {
        let bw = Tier::Raw5s.block_window_ms();
        for w in self.data_windows(Tier::Raw5s, s, e, Some(head_windows)) {
            budget.check()?;
            visited();
            let (lo_t, hi_t) = (s.max(w), e.min(w + bw));
            // Head rows of this window come in key order (ts, then write
            // sequence), so each requested series' (by its index in `sids`)
            // samples arrive in time order; a later write of the same time
            // replaces the earlier one.
            let mut overlay: Vec<Vec<(i64, f64)>> = Vec::new();
            let head_rows = head_windows
                .contains(&w)
                .then(|| {
                    self.head
                        .range(head::head_bound(agent, lo_t)..head::head_bound(agent, hi_t))
                })
                .into_iter()
                .flatten();
            for item in head_rows {
                let (k, v) = item.into_inner().map_err(Error::fjall("read head"))?;
                let (_, ts, _) = head::parse_head_key(&k)?;
                for (sid, val) in head::decode_row(&v)? {
                    let Ok(i) = sids.binary_search(&sid) else {
                        continue;
                    };
                    if overlay.is_empty() {
                        overlay.resize_with(sids.len(), Vec::new);
                    }
                    let pts = &mut overlay[i];
                    match pts.last_mut() {
                        Some(last) if last.0 == ts => last.1 = val,
                        _ => {
                            debug_assert!(pts.last().is_none_or(|l| l.0 < ts));
                            pts.push((ts, val));
                        }
                    }
                }
            }
            let block = match self
                .part(Tier::Raw5s, w)
                .map(|ks| ks.get(block_key(agent, w)))
            {
                Some(Ok(b)) => b,
                Some(Err(e)) => {
                    damaged(Tier::Raw5s, agent, w, e);
                    None
                }
                None => None,
            };
            let reader = block.as_ref().and_then(|bytes| {
                BlockReader::parse(bytes)
                    .map_err(|e| damaged(Tier::Raw5s, agent, w, e))
                    .ok()
            });
            if let Some(r) = reader {
                let ts = r.ts();
                let lo = ts.partition_point(|t| *t < lo_t);
                let hi = ts.partition_point(|t| *t < hi_t);
                for (i, &sid) in sids.iter().enumerate() {
                    let Some(bi) = r.find(sid).filter(|_| lo < hi) else {
                        continue;
                    };
                    let Ok(sc) = r.series(bi).map_err(|e| damaged(Tier::Raw5s, agent, w, e)) else {
                        continue;
                    };
                    let start = sc.rows.partition_point(|row| (*row as usize) < lo);
                    let rows = sc.rows[start..]
                        .iter()
                        .zip(&sc.cols[0][start..])
                        .take_while(|(row, _)| (**row as usize) < hi)
                        .map(|(row, v)| (ts[*row as usize], *v));
                    let newer = overlay.get_mut(i).map(std::mem::take).unwrap_or_default();
                    merge_newer(rows, newer, |t, v| f(sid, t, v));
                }
            }
            for (i, rows) in overlay.into_iter().enumerate() {
                rows.into_iter().for_each(|(t, v)| f(sids[i], t, v));
            }
        }
        Ok(())
    }

    /// Raw samples of `sids` in `[s, e)` folded straight into buckets of `interval`.
    #[allow(clippy::too_many_arguments)] // all of them are the query's coordinates
    fn read_raw_bucketed(
        &self,
        agent: u64,
        head_windows: &BTreeSet<i64>,
        sids: &[u32],
        s: i64,
        e: i64,
        interval: i64,
        budget: &QueryBudget,
    ) -> Result<SeriesMap, Error> {
        // One vector per requested series, found by binary search when the
        // series changes (samples come per window, per series, in time order).
        let mut out: Vec<Vec<Point>> = vec![Vec::new(); sids.len()];
        let mut cur = usize::MAX;
        let mut cur_sid = u32::MAX;
        // End of the last point's bucket: most samples need no division.
        let mut bucket_end = i64::MIN;
        self.scan_raw(agent, head_windows, sids, s, e, budget, |sid, t, v| {
            if sid != cur_sid {
                cur_sid = sid;
                cur = sids.binary_search(&sid).unwrap_or(usize::MAX);
                bucket_end = i64::MIN;
            }
            let Some(pts) = out.get_mut(cur) else { return };
            match pts.last_mut() {
                Some(p) if t < bucket_end && t >= p.ts_ms => {
                    p.min = p.min.min(v);
                    p.max = p.max.max(v);
                    p.sum += v;
                    p.count += 1;
                    p.last = v;
                }
                _ => {
                    let b = floor_to(t, interval);
                    bucket_end = b.saturating_add(interval);
                    pts.push(Point::sample(b, v));
                }
            }
        })?;
        let out: SeriesMap = sids
            .iter()
            .zip(out)
            .filter(|(_, p)| !p.is_empty())
            .map(|(sid, p)| (*sid, p))
            .collect();
        Ok(out)
    }

    /// Stored aggregates of `tier` for `sids` with bucket start in `[s, e)`.
    pub(crate) fn read_agg(
        &self,
        agent: u64,
        tier: Tier,
        sids: &[u32],
        s: i64,
        e: i64,
        budget: &QueryBudget,
    ) -> Result<SeriesMap, Error> {
        let mut out = SeriesMap::new();
        for w in self.data_windows(tier, s, e, None) {
            budget.check()?;
            visited();
            let block = self
                .read_agg_block(agent, tier, w)
                .map_err(|e| damaged(tier, agent, w, e))
                .ok()
                .flatten();
            let reader = block.as_ref().and_then(|b| {
                BlockReader::parse(b)
                    .map_err(|e| damaged(tier, agent, w, e))
                    .ok()
                    .filter(|r| {
                        let agg = r.kind() == BlockKind::Agg;
                        if !agg {
                            damaged(tier, agent, w, "not an aggregate block");
                        }
                        agg
                    })
            });
            if let Some(r) = reader {
                let ts = r.ts();
                let lo = ts.partition_point(|t| *t < s);
                let hi = ts.partition_point(|t| *t < e);
                if lo < hi {
                    for &sid in sids {
                        let Some(i) = r.find(sid) else { continue };
                        let Ok(sc) = r.series(i).map_err(|e| damaged(tier, agent, w, e)) else {
                            continue;
                        };
                        let dst = out.entry(sid).or_default();
                        for (j, row) in sc.rows.iter().enumerate() {
                            let row = *row as usize;
                            if (lo..hi).contains(&row) {
                                dst.push(Point {
                                    ts_ms: ts[row],
                                    min: sc.cols[0][j],
                                    max: sc.cols[1][j],
                                    sum: sc.cols[2][j],
                                    count: sc.cols[3][j] as u64,
                                    last: sc.cols[4][j],
                                });
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn read_agg_block(
        &self,
        agent: u64,
        tier: Tier,
        window: i64,
    ) -> Result<Option<fjall::Slice>, Error> {
        match self.part(tier, window) {
            Some(ks) => ks
                .get(block_key(agent, window))
                .map_err(Error::fjall("read aggregate block")),
            None => Ok(None),
        }
    }

    /// Points of `tier` in `[s, e)` in buckets of `interval` (a multiple of
    /// the tier's interval), computing what the tier does not hold yet from
    /// the finer tiers. A bucket cut by an hour boundary may come as two
    /// consecutive points with the same start; [`bucket`] merges them.
    #[allow(clippy::too_many_arguments)] // all of them are the query's coordinates
    pub(crate) fn tier_points(
        &self,
        agent: u64,
        tier: Tier,
        sids: &[u32],
        s: i64,
        e: i64,
        view: &AgentView,
        interval: i64,
    ) -> Result<SeriesMap, Error> {
        let budget = QueryBudget::unlimited();
        self.tier_points_within(agent, tier, sids, s, e, view, interval, &budget)
    }

    /// [`Self::tier_points`] within a [`QueryBudget`].
    #[allow(clippy::too_many_arguments)] // all of them are the query's coordinates
    fn tier_points_within(
        &self,
        agent: u64,
        tier: Tier,
        sids: &[u32],
        s: i64,
        e: i64,
        view: &AgentView,
        interval: i64,
        budget: &QueryBudget,
    ) -> Result<SeriesMap, Error> {
        if s >= e {
            return Ok(SeriesMap::new());
        }
        let Some(finer) = tier.finer() else {
            return self.read_raw_bucketed(agent, &view.head_windows, sids, s, e, interval, budget);
        };
        let mut out = SeriesMap::new();
        let mut h = floor_to(s, HOUR);
        while h < e {
            budget.check()?;
            let (fresh, end) = view.fresh_run(tier, h, e);
            let (a, b) = (h.max(s), end.min(e));
            let part = if fresh {
                let pts = self.read_agg(agent, tier, sids, a, b, budget)?;
                if interval == tier.interval_ms() {
                    pts
                } else {
                    pts.into_iter()
                        .map(|(sid, p)| (sid, bucket(&p, interval)))
                        .collect()
                }
            } else {
                self.tier_points_within(agent, finer, sids, a, b, view, interval, budget)?
            };
            append(&mut out, part);
            h = end;
        }
        Ok(out)
    }

    /// [`Self::tier_points`], with the part older than `tier`'s retention read
    /// from the coarser tiers.
    #[allow(clippy::too_many_arguments)] // all of them are the query's coordinates
    fn stitched_points(
        &self,
        agent: u64,
        tier: Tier,
        sids: &[u32],
        s: i64,
        e: i64,
        view: &AgentView,
        now: i64,
        interval: i64,
        budget: &QueryBudget,
    ) -> Result<SeriesMap, Error> {
        let mut out = SeriesMap::new();
        let mut s2 = s;
        if let Some(coarser) = tier.coarser() {
            let boundary = ceil_to(now - self.config.retention_ms(tier), coarser.interval_ms());
            if s < boundary {
                // Coarser points keep their own resolution when it exceeds `interval`.
                let iv = interval.max(coarser.interval_ms());
                out = self.stitched_points(
                    agent,
                    coarser,
                    sids,
                    s,
                    boundary.min(e),
                    view,
                    now,
                    iv,
                    budget,
                )?;
                s2 = boundary;
            }
        }
        append(
            &mut out,
            self.tier_points_within(agent, tier, sids, s2, e, view, interval, budget)?,
        );
        Ok(out)
    }

    /// The tier a range of `len` ms is read from when none is forced.
    pub fn tier_for_range(&self, len: i64) -> Tier {
        if len <= self.config.raw_retention_ms {
            Tier::Raw5s
        } else if len <= self.config.m1_retention_ms {
            Tier::Min1
        } else {
            Tier::Hour1
        }
    }

    /// Answer a history query, however long it takes.
    pub fn query(&self, req: &QueryRequest) -> Result<QueryResult, Error> {
        self.query_within(req, &QueryBudget::unlimited())
    }

    /// Answer a history query, or stop with [`Error::QueryTimedOut`] or
    /// [`Error::QueryCancelled`] when `budget` says so.
    pub fn query_within(
        &self,
        req: &QueryRequest,
        budget: &QueryBudget,
    ) -> Result<QueryResult, Error> {
        if req.start_ms < MIN_QUERY_MS || req.stop_ms > MAX_QUERY_MS {
            return Err(Error::InvalidRequest(format!(
                "the range ({} to {}) must lie within years 0000 to 9999",
                req.start_ms, req.stop_ms
            )));
        }
        if req.stop_ms <= req.start_ms {
            return Err(Error::InvalidRequest(format!(
                "stop ({}) must be after start ({})",
                req.stop_ms, req.start_ms
            )));
        }
        budget.check()?;
        let len = req.stop_ms - req.start_ms;
        let tier = req.tier.unwrap_or_else(|| self.tier_for_range(len));
        let tiv = tier.interval_ms();
        // A bucket wider than every time a query can name is one bucket.
        let widest = MAX_QUERY_MS - MIN_QUERY_MS;
        let mut interval = ceil_to(req.interval_ms.unwrap_or(tiv).clamp(tiv, widest), tiv);
        if req.max_points > 0 {
            let buckets = |iv: i64| (ceil_to(req.stop_ms, iv) - floor_to(req.start_ms, iv)) / iv;
            let need = ceil_to(len, req.max_points as i64) / req.max_points as i64;
            let mut unit = tiv;
            if ceil_to(need, tiv) > interval {
                // Buckets wider than asked only because of `max_points` are
                // made whole multiples of the coarsest tier interval they
                // span, so that tier answers them from far fewer values (24 h
                // at 600 points: 3 min buckets from 1 440 minute aggregates
                // per series instead of 2.4 min buckets from 17 280 samples).
                let mut t = tier;
                while let Some(c) = t.coarser().filter(|c| need >= c.interval_ms()) {
                    unit = c.interval_ms();
                    t = c;
                }
                interval = ceil_to(need, unit);
            }
            // A range straddling the epoch always has a bucket boundary at
            // 0: past the widest interval no wider one would help.
            while buckets(interval) > req.max_points as i64 && interval < widest {
                interval += unit;
            }
        }
        let start = floor_to(req.start_ms, interval);
        let stop = req.stop_ms;
        let mut result = QueryResult {
            tier,
            interval_ms: interval,
            start_ms: start,
            stop_ms: stop,
            series: Vec::new(),
        };
        let Some(mut view) = self.view(req.agent) else {
            return Ok(result);
        };
        // Series evicted from memory have no sample within raw retention:
        // only a query reaching further back needs their keys.
        if view.evicted && start < self.oldest_writable() {
            self.fill_evicted(req.agent, &mut view.keys)?;
        }
        let mut selected: Vec<(u32, &Arc<SeriesKey>)> = view
            .keys
            .iter()
            .enumerate()
            .filter(|(_, k)| {
                !super::evict::is_placeholder(k)
                    && (req.metrics.is_empty() || req.metrics.iter().any(|m| *m == k.metric))
                    && req
                        .label_filter
                        .as_ref()
                        .is_none_or(|(n, v)| k.label(n) == Some(v.as_str()))
            })
            .map(|(i, k)| (i as u32, k))
            .collect();
        let sids: Vec<u32> = selected.iter().map(|(i, _)| *i).collect();
        let mut points = if sids.is_empty() {
            SeriesMap::new()
        } else {
            let now = self.clock.now_ms();
            // When the buckets are whole multiples of a coarser tier's, that
            // tier gives the same answer (min, max, sum, count and last
            // compose) from far fewer values: read it for the aligned part.
            let mut read = tier;
            while let Some(c) = read.coarser().filter(|c| interval % c.interval_ms() == 0) {
                read = c;
            }
            let split = floor_to(stop, read.interval_ms()).max(start);
            let mut pts = if read == tier {
                SeriesMap::new()
            } else {
                self.stitched_points(
                    req.agent, read, &sids, start, split, &view, now, interval, budget,
                )?
            };
            let tail_from = if read == tier { start } else { split };
            append(
                &mut pts,
                self.stitched_points(
                    req.agent, tier, &sids, tail_from, stop, &view, now, interval, budget,
                )?,
            );
            pts
        };
        selected.sort_by(|a, b| a.1.cmp(b.1));
        result.series = selected
            .into_iter()
            .map(|(sid, key)| SeriesPoints {
                key: (**key).clone(),
                points: points
                    .remove(&sid)
                    .map(|p| rebucket(p, interval))
                    .unwrap_or_default(),
            })
            .collect();
        Ok(result)
    }

    /// The raw reports of `agent` from `since_ms` on, rebuilt from stored
    /// samples (to refill the [`Ring`](super::Ring) after a restart).
    pub fn recent_reports(&self, agent: u64, since_ms: i64) -> Result<Vec<Report>, Error> {
        let Some(view) = self.view(agent) else {
            return Ok(Vec::new());
        };
        let sids: Vec<u32> = (0..view.keys.len() as u32).collect();
        let until = self.clock.now_ms().saturating_add(HOUR);
        let mut samples: Vec<(i64, u32, f64)> = Vec::new();
        self.scan_raw(
            agent,
            &view.head_windows,
            &sids,
            since_ms,
            until,
            &QueryBudget::unlimited(),
            |sid, t, v| {
                samples.push((t, sid, v));
            },
        )?;
        // Grouped by time, each report's samples in series order (`scan_raw`
        // gives each series once per time, so the order is total).
        samples.sort_unstable_by_key(|&(t, sid, _)| (t, sid));
        Ok(samples
            .chunk_by(|a, b| a.0 == b.0)
            .map(|group| {
                let keys = group
                    .iter()
                    .filter_map(|&(_, sid, v)| Some((&**view.keys.get(sid as usize)?, v)));
                samples_to_report(group[0].0, keys)
            })
            .collect())
    }
}

/// Hands `older` and `newer` (each in time order) to `f` in time order; at
/// the same time only `newer`'s value (a head row overrides its sealed block).
fn merge_newer(
    older: impl Iterator<Item = (i64, f64)>,
    newer: Vec<(i64, f64)>,
    mut f: impl FnMut(i64, f64),
) {
    let mut older = older.peekable();
    for (t, v) in newer {
        while let Some((ot, ov)) = older.next_if(|&(ot, _)| ot <= t) {
            if ot < t {
                f(ot, ov);
            }
        }
        f(t, v);
    }
    older.for_each(|(t, v)| f(t, v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_a_head_overlay_keeps_time_order_and_the_newer_value() {
        let older = [(0, 1.0), (5, 2.0), (10, 3.0), (20, 4.0)];
        let newer = vec![(-5, 9.0), (5, 7.0), (15, 8.0), (25, 6.0)];
        let mut out = Vec::new();
        merge_newer(older.into_iter(), newer, |t, v| out.push((t, v)));
        assert_eq!(
            out,
            vec![
                (-5, 9.0),
                (0, 1.0),
                (5, 7.0),
                (10, 3.0),
                (15, 8.0),
                (20, 4.0),
                (25, 6.0)
            ]
        );
        let mut out = Vec::new();
        merge_newer(older.into_iter(), Vec::new(), |t, v| out.push((t, v)));
        assert_eq!(out, older.to_vec());
    }

    #[test]
    fn bucketing_keeps_min_max_sum_count_last() {
        let pts: Vec<Point> = [(0, 1.0), (10, 5.0), (20, -1.0), (60, 2.0)]
            .iter()
            .map(|(t, v)| Point::sample(*t, *v))
            .collect();
        let b = bucket(&pts, 60);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].min, b[0].max, b[0].sum, b[0].count, b[0].last),
            (-1.0, 5.0, 5.0, 3, -1.0)
        );
        assert_eq!(b[1].ts_ms, 60);
    }

    use std::path::Path;

    use crate::tsdb::{EngineConfig, ManualClock, Row};

    const T0: i64 = 1_795_564_800_000; // 2026-11-25T00:00:00Z

    fn engine(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
        Engine::open(dir, EngineConfig::default(), clock.clone()).unwrap()
    }

    fn req(start_ms: i64, stop_ms: i64, tier: Option<Tier>) -> QueryRequest {
        QueryRequest {
            agent: 1,
            metrics: Vec::new(),
            label_filter: None,
            start_ms,
            stop_ms,
            tier,
            interval_ms: None,
            max_points: 600,
        }
    }

    /// Two hours of samples every 5 s, sealed and aggregated, plus a few
    /// rows still in the head.
    fn two_hours(e: &Engine, clock: &ManualClock) {
        let rows: Vec<Row> = (0..2 * 720)
            .map(|i| {
                let key = SeriesKey::new("cpu.total_pct");
                Row::new(T0 + i * 5_000, vec![(key, (i % 100) as f64)])
            })
            .collect();
        e.write(1, &rows).unwrap();
        clock.set(T0 + 3 * HOUR);
        e.run_maintenance().unwrap();
        let late = vec![Row::new(
            T0 + 3 * HOUR - 5_000,
            vec![(SeriesKey::new("cpu.total_pct"), 1.0)],
        )];
        e.write(1, &late).unwrap();
    }

    fn visits(f: impl FnOnce()) -> u64 {
        WINDOWS_VISITED.with(|v| v.set(0));
        f();
        WINDOWS_VISITED.with(|v| v.get())
    }

    /// A query over every time it may name reads the same blocks as one
    /// over the data's own span: its work follows the data, not the range
    /// (it used to step through the range an hour at a time).
    #[test]
    fn work_follows_the_data_not_the_span_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0 + HOUR));
        let e = engine(dir.path(), &clock);
        two_hours(&e, &clock);
        for tier in [None, Some(Tier::Raw5s), Some(Tier::Min1), Some(Tier::Hour1)] {
            let narrow = req(T0, T0 + 3 * HOUR, tier);
            let mut narrow_answer = None;
            let narrow_visits = visits(|| narrow_answer = Some(e.query(&narrow).unwrap()));
            let wide = req(MIN_QUERY_MS, MAX_QUERY_MS, tier);
            let mut wide_answer = None;
            let started = Instant::now();
            let wide_visits = visits(|| wide_answer = Some(e.query(&wide).unwrap()));
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{tier:?}: {:?}",
                started.elapsed()
            );
            // Raw: 6-hour partitions of 1-hour windows; the others a few
            // windows of their one partition, per tier stitched in.
            assert!(
                wide_visits <= narrow_visits + 16,
                "{tier:?}: {wide_visits} windows for the widest range, {narrow_visits} for the data's"
            );
            let total = |r: &QueryResult| -> u64 {
                r.series
                    .iter()
                    .flat_map(|s| &s.points)
                    .map(|p| p.count)
                    .sum()
            };
            let (n, w) = (narrow_answer.unwrap(), wide_answer.unwrap());
            assert!(total(&n) > 0, "{tier:?}");
            assert_eq!(total(&n), total(&w), "{tier:?}: every sample in both");
        }
        // Nothing stored in the range: no block is read at all.
        let empty = req(T0 - 300 * DAY_MS, T0 - 200 * DAY_MS, None);
        assert_eq!(
            visits(|| assert!(e.query(&empty).unwrap().series[0].points.is_empty())),
            0
        );
    }

    const DAY_MS: i64 = 24 * HOUR;

    /// Ranges whose arithmetic used to overflow (a panic in debug builds,
    /// a silent wrap in release) are refused.
    #[test]
    fn ranges_beyond_the_calendar_are_refused_without_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0 + HOUR));
        let e = engine(dir.path(), &clock);
        two_hours(&e, &clock);
        for (start, stop) in [
            (i64::MIN, 0),
            (-9_223_372_036_854_775_807, T0),
            (i64::MAX - 1, i64::MAX),
            (0, i64::MAX),
            (MIN_QUERY_MS - 1, T0),
            (T0, MAX_QUERY_MS + 1),
        ] {
            let r = e.query(&req(start, stop, None));
            assert!(
                matches!(r, Err(Error::InvalidRequest(_))),
                "{start}..{stop}: {r:?}"
            );
        }
        // The widest bucket there is, with and without a point limit.
        for max_points in [0, 1, 5_000] {
            let mut q = req(MIN_QUERY_MS, MAX_QUERY_MS, None);
            q.interval_ms = Some(i64::MAX);
            q.max_points = max_points;
            let r = e.query(&q).unwrap();
            assert_eq!(r.series[0].points.len(), 1, "{max_points}");
        }
    }

    #[test]
    fn a_query_stops_when_cancelled_or_out_of_time() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0 + HOUR));
        let e = engine(dir.path(), &clock);
        two_hours(&e, &clock);
        let q = req(T0, T0 + 3 * HOUR, Some(Tier::Raw5s));
        let flag = Arc::new(AtomicBool::new(false));
        let budget = QueryBudget::unlimited()
            .with_time(Duration::from_secs(60))
            .with_cancel(flag.clone());
        assert!(e.query_within(&q, &budget).is_ok());
        flag.store(true, Ordering::Relaxed);
        assert!(matches!(
            e.query_within(&q, &budget),
            Err(Error::QueryCancelled)
        ));
        let spent = QueryBudget::unlimited().with_time(Duration::ZERO);
        assert!(matches!(
            e.query_within(&q, &spent),
            Err(Error::QueryTimedOut { budget_ms: 0 })
        ));
    }

    /// The run-length view of finished hours agrees with asking hour by hour.
    #[test]
    fn fresh_runs_agree_with_each_hour() {
        let h = |n: i64| T0 + n * HOUR;
        for wm in [
            None,
            Some(h(0)),
            Some(h(5)),
            Some(h(5) + 1_000),
            Some(h(12)),
        ] {
            let dirty: BTreeSet<(u8, i64)> = [(1, h(2)), (1, h(3)), (1, h(7)), (2, h(4))]
                .into_iter()
                .collect();
            let view = AgentView {
                keys: Vec::new(),
                evicted: false,
                wm: [None, wm, wm],
                dirty,
                head_windows: BTreeSet::new(),
            };
            for tier in [Tier::Min1, Tier::Hour1] {
                for (s, e) in [(h(-3), h(15)), (h(2), h(4)), (h(6), h(6) + 1), (h(0), h(1))] {
                    let mut at = floor_to(s, HOUR);
                    while at < e {
                        let (fresh, end) = view.fresh_run(tier, at, e);
                        assert!(end > at);
                        let mut t = at;
                        while t < end.min(e) {
                            assert_eq!(view.fresh(tier, t), fresh, "{wm:?} {tier} {t}");
                            t += HOUR;
                        }
                        at = end;
                    }
                }
            }
        }
    }
}
