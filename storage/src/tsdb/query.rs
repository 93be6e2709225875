//! Queries: pick a tier from the range, read blocks and head rows, stitch
//! tiers, and bucket into at most `max_points` points per series.
//!
//! Stitching goes both ways. Towards the present, an aggregate tier answers
//! only the hours its compactor finished (before its watermark and not dirty);
//! the rest is computed from the next finer tier on the fly, down to raw
//! blocks and head rows, so a row is visible as soon as `write` returns.
//! Towards the past, the part of a range older than the chosen tier's
//! retention is read from the next coarser tier.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::error::Error;
use crate::model::Report;
use crate::model::{SeriesKey, samples_to_report};

use super::Engine;
use super::chunk::{BlockKind, BlockReader};
use super::head;
use super::series::block_key;
use super::tier::{HOUR, Tier, ceil_to, floor_to};

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
    pub wm: [Option<i64>; 3],
    pub dirty: BTreeSet<(u8, i64)>,
    /// Raw windows with rows in the head. Other windows skip the head
    /// entirely: after sealing, the head holds their tombstones, which a
    /// range scan would have to step over.
    pub head_windows: BTreeSet<i64>,
}

impl AgentView {
    /// Whether `tier` holds finished aggregates for the hour starting at `h`.
    fn fresh(&self, tier: Tier, h: i64) -> bool {
        self.wm[tier.code() as usize].is_some_and(|wm| h + HOUR <= wm)
            && !self.dirty.contains(&(tier.code(), h))
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

    /// Every raw sample of `sids` (sorted) in `[s, e)`, sealed blocks overlaid
    /// by head rows (later writes win), handed to `f` in time order per series.
    fn scan_raw(
        &self,
        agent: u64,
        head_windows: &BTreeSet<i64>,
        sids: &[u32],
        s: i64,
        e: i64,
        mut f: impl FnMut(u32, i64, f64),
    ) -> Result<(), Error> {
        let bw = Tier::Raw5s.block_window_ms();
        let mut w = floor_to(s, bw);
        while w < e {
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
            w += bw;
        }
        Ok(())
    }

    /// Raw samples of `sids` in `[s, e)` folded straight into buckets of `interval`.
    fn read_raw_bucketed(
        &self,
        agent: u64,
        head_windows: &BTreeSet<i64>,
        sids: &[u32],
        s: i64,
        e: i64,
        interval: i64,
    ) -> Result<SeriesMap, Error> {
        // One vector per requested series, found by binary search when the
        // series changes (samples come per window, per series, in time order).
        let mut out: Vec<Vec<Point>> = vec![Vec::new(); sids.len()];
        let mut cur = usize::MAX;
        let mut cur_sid = u32::MAX;
        // End of the last point's bucket: most samples need no division.
        let mut bucket_end = i64::MIN;
        self.scan_raw(agent, head_windows, sids, s, e, |sid, t, v| {
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
    ) -> Result<SeriesMap, Error> {
        let mut out = SeriesMap::new();
        let bw = tier.block_window_ms();
        let mut w = floor_to(s, bw);
        while w < e {
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
            w += bw;
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
        if s >= e {
            return Ok(SeriesMap::new());
        }
        let Some(finer) = tier.finer() else {
            return self.read_raw_bucketed(agent, &view.head_windows, sids, s, e, interval);
        };
        let mut out = SeriesMap::new();
        let mut h = floor_to(s, HOUR);
        while h < e {
            let fresh = view.fresh(tier, h);
            let mut end = h + HOUR;
            while end < e && view.fresh(tier, end) == fresh {
                end += HOUR;
            }
            let (a, b) = (h.max(s), end.min(e));
            let part = if fresh {
                let pts = self.read_agg(agent, tier, sids, a, b)?;
                if interval == tier.interval_ms() {
                    pts
                } else {
                    pts.into_iter()
                        .map(|(sid, p)| (sid, bucket(&p, interval)))
                        .collect()
                }
            } else {
                self.tier_points(agent, finer, sids, a, b, view, interval)?
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
    ) -> Result<SeriesMap, Error> {
        let mut out = SeriesMap::new();
        let mut s2 = s;
        if let Some(coarser) = tier.coarser() {
            let boundary = ceil_to(now - self.config.retention_ms(tier), coarser.interval_ms());
            if s < boundary {
                // Coarser points keep their own resolution when it exceeds `interval`.
                let iv = interval.max(coarser.interval_ms());
                out =
                    self.stitched_points(agent, coarser, sids, s, boundary.min(e), view, now, iv)?;
                s2 = boundary;
            }
        }
        append(
            &mut out,
            self.tier_points(agent, tier, sids, s2, e, view, interval)?,
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

    /// Answer a history query.
    pub fn query(&self, req: &QueryRequest) -> Result<QueryResult, Error> {
        if req.stop_ms <= req.start_ms {
            return Err(Error::InvalidRequest(format!(
                "stop ({}) must be after start ({})",
                req.stop_ms, req.start_ms
            )));
        }
        let len = req.stop_ms - req.start_ms;
        let tier = req.tier.unwrap_or_else(|| self.tier_for_range(len));
        let tiv = tier.interval_ms();
        let mut interval = ceil_to(req.interval_ms.unwrap_or(tiv).max(tiv), tiv);
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
            while buckets(interval) > req.max_points as i64 {
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
        let Some(view) = self.view(req.agent) else {
            return Ok(result);
        };
        let mut selected: Vec<(u32, &Arc<SeriesKey>)> = view
            .keys
            .iter()
            .enumerate()
            .filter(|(_, k)| {
                (req.metrics.is_empty() || req.metrics.iter().any(|m| *m == k.metric))
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
                self.stitched_points(req.agent, read, &sids, start, split, &view, now, interval)?
            };
            let tail_from = if read == tier { start } else { split };
            append(
                &mut pts,
                self.stitched_points(
                    req.agent, tier, &sids, tail_from, stop, &view, now, interval,
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
}
