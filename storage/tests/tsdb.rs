//! Integration tests of the time-series engine (one binary, modules by concern).
//!
//! - `model`: random writes and queries against a plain `BTreeMap` model.
//! - `crash`: a child process (this binary, re-executed) is killed with
//!   SIGKILL while writing; every acknowledged sample must be there after.
//! - `retention`: a simulated year at steady ingest keeps disk bounded.
//! - `restart`: compactor progress and the ring come back after a restart.
//! - `format`: the on-disk format version is checked on open.

#![cfg(feature = "engine")]

mod common {
    use std::path::Path;
    use std::sync::Arc;

    use storage::model::SeriesKey;
    use storage::tsdb::{Engine, EngineConfig, ManualClock, QueryRequest, Row, Tier};

    /// A day-aligned instant in 2026.
    pub const T0: i64 = 1_795_564_800_000 - 1_795_564_800_000 % 86_400_000;
    pub const MIN: i64 = 60_000;
    pub const HOUR: i64 = 3_600_000;
    pub const DAY: i64 = 86_400_000;

    pub fn open(dir: &Path, clock: &Arc<ManualClock>) -> Engine {
        let config = EngineConfig {
            cache_bytes: 4 << 20,
            ..EngineConfig::default()
        };
        Engine::open(dir, config, clock.clone()).expect("open engine")
    }

    pub fn series(i: usize) -> SeriesKey {
        match i % 3 {
            0 => SeriesKey::new("cpu.total_pct"),
            1 => SeriesKey::with_labels("cpu.core_pct", [("core", "0")]),
            _ => SeriesKey::new("mem.used_bytes"),
        }
    }

    pub fn row(ts: i64, samples: &[(usize, f64)]) -> Row {
        Row {
            ts_ms: ts,
            samples: samples.iter().map(|(s, v)| (series(*s), *v)).collect(),
        }
    }

    pub fn req(agent: u64, start: i64, stop: i64, tier: Option<Tier>) -> QueryRequest {
        QueryRequest {
            agent,
            metrics: Vec::new(),
            label_filter: None,
            start_ms: start,
            stop_ms: stop,
            tier,
            interval_ms: None,
            max_points: 0,
        }
    }
}

/// Random writes (duplicates, out of order, late) and queries across tier
/// boundaries give the same answers as a BTreeMap model's aggregation.
mod model {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use proptest::prelude::*;
    use storage::tsdb::{Clock, Engine, ManualClock, Point, Tier};

    use super::common::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Rows at `now - back` (5 s grid plus jitter), values as tenths.
        Write {
            agent: u64,
            rows: Vec<(i64, Vec<(usize, i32)>)>,
        },
        Advance(i64),
        Maintain,
        Reopen,
        Query {
            agent: u64,
            tier: Option<Tier>,
            start_back: i64,
            len: i64,
            interval_mul: i64,
            max_points: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..2, proptest::collection::vec(
                (
                    prop_oneof![0i64..(2 * MIN), 0i64..(3 * HOUR), 0i64..(18 * HOUR)],
                    proptest::collection::vec((0usize..3, -500i32..500), 1..4),
                ),
                1..8,
            ))
                .prop_map(|(agent, rows)| Op::Write { agent, rows }),
            3 => prop_oneof![1i64..(2 * MIN), (10 * MIN)..(2 * HOUR)].prop_map(Op::Advance),
            2 => Just(Op::Maintain),
            1 => Just(Op::Reopen),
            3 => (
                0u64..2,
                prop_oneof![
                    Just(None),
                    Just(Some(Tier::Raw5s)),
                    Just(Some(Tier::Min1)),
                    Just(Some(Tier::Hour1))
                ],
                0i64..(20 * HOUR),
                1i64..(30 * HOUR),
                1i64..4,
                prop_oneof![Just(0usize), 1usize..50],
            )
                .prop_map(|(agent, tier, start_back, len, interval_mul, max_points)| Op::Query {
                    agent,
                    tier,
                    start_back,
                    len,
                    interval_mul,
                    max_points,
                }),
        ]
    }

    type Model = BTreeMap<(u64, usize, i64), f64>;

    fn model_points(m: &Model, agent: u64, s: usize, start: i64, stop: i64, iv: i64) -> Vec<Point> {
        let mut out: Vec<Point> = Vec::new();
        for ((_, _, ts), v) in m.range((agent, s, start)..(agent, s, stop)) {
            let b = ts.div_euclid(iv) * iv;
            match out.last_mut() {
                Some(p) if p.ts_ms == b => p.merge(&Point::sample(b, *v)),
                _ => out.push(Point::sample(b, *v)),
            }
        }
        out
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    fn check(engine: &Engine, m: &Model, op: &Op, now: i64) -> Result<(), TestCaseError> {
        let Op::Query {
            agent,
            tier,
            start_back,
            len,
            interval_mul,
            max_points,
        } = op
        else {
            return Ok(());
        };
        let chosen = tier.unwrap_or_else(|| engine.tier_for_range(*len));
        // Aggregate tiers answer whole buckets: align the range to them.
        let align = if tier.is_none() {
            HOUR
        } else {
            chosen.interval_ms()
        };
        let start = (now - start_back).div_euclid(align) * align;
        let stop = start + ((len + align - 1) / align) * align;
        let mut r = req(*agent, start, stop, *tier);
        r.interval_ms = Some(chosen.interval_ms() * interval_mul);
        r.max_points = *max_points;
        let res = engine
            .query(&r)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(res.tier, chosen);
        for s in 0..3 {
            let want = model_points(m, *agent, s, res.start_ms, res.stop_ms, res.interval_ms);
            let got = res
                .series
                .iter()
                .find(|sp| sp.key == series(s))
                .map(|sp| sp.points.clone())
                .unwrap_or_default();
            if *max_points > 0 {
                prop_assert!(got.len() <= *max_points, "{} > {}", got.len(), max_points);
            }
            prop_assert_eq!(
                got.len(),
                want.len(),
                "series {} got {:?} want {:?}",
                s,
                got,
                want
            );
            for (g, w) in got.iter().zip(&want) {
                prop_assert!(
                    g.ts_ms == w.ts_ms
                        && g.count == w.count
                        && g.min == w.min
                        && g.max == w.max
                        && g.last == w.last
                        && close(g.sum, w.sum),
                    "series {} got {:?} want {:?}",
                    s,
                    g,
                    w
                );
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 200, ..ProptestConfig::default() })]

        #[test]
        fn engine_matches_btreemap_model(ops in proptest::collection::vec(op(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let clock = Arc::new(ManualClock::new(T0 + 2 * HOUR));
            let mut engine = open(dir.path(), &clock);
            let mut m = Model::new();
            for op in &ops {
                let now = clock.now_ms();
                match op {
                    Op::Write { agent, rows } => {
                        let mut written = Vec::new();
                        for (back, samples) in rows {
                            let ts = (now - back).max(T0);
                            let samples: Vec<(usize, f64)> =
                                samples.iter().map(|(s, v)| (*s, *v as f64 / 10.0)).collect();
                            written.push(row(ts, &samples));
                        }
                        engine.write(*agent, &written).unwrap();
                        for r in &written {
                            for (k, v) in &r.samples {
                                let s = (0..3).find(|i| series(*i) == *k).unwrap();
                                m.insert((*agent, s, r.ts_ms), *v);
                            }
                        }
                    }
                    Op::Advance(ms) => {
                        // Stay inside raw retention of T0 (no eviction here).
                        if now + ms < T0 + 22 * HOUR {
                            clock.advance(*ms);
                        }
                    }
                    Op::Maintain => {
                        engine.run_maintenance().unwrap();
                    }
                    Op::Reopen => {
                        drop(engine);
                        engine = open(dir.path(), &clock);
                    }
                    Op::Query { .. } => check(&engine, &m, op, now)?,
                }
            }
            // Everything settled: all tiers agree with the model too.
            clock.advance(2 * HOUR);
            engine.run_maintenance().unwrap();
            let now = clock.now_ms();
            for tier in [Tier::Raw5s, Tier::Min1, Tier::Hour1] {
                for agent in 0..2 {
                    let q = Op::Query { agent, tier: Some(tier), start_back: 26 * HOUR, len: 28 * HOUR, interval_mul: 1, max_points: 0 };
                    check(&engine, &m, &q, now)?;
                }
            }
            prop_assert_eq!(engine.stats().dirty_hours, 0);
        }
    }

    #[test]
    fn recent_rows_are_visible_at_once_and_after_sealing() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0 + 3 * HOUR));
        let engine = open(dir.path(), &clock);
        let rows: Vec<_> = (0..720)
            .map(|i| row(T0 + 2 * HOUR + i * 5000, &[(0, (i % 100) as f64 / 10.0)]))
            .collect();
        engine.write(7, &rows).unwrap();
        let q = req(7, T0, T0 + 4 * HOUR, Some(Tier::Raw5s));
        assert_eq!(engine.query(&q).unwrap().series[0].points.len(), 720);
        clock.advance(HOUR);
        let rep = engine.run_maintenance().unwrap();
        assert_eq!(rep.sealed_windows, 1);
        assert_eq!(engine.query(&q).unwrap().series[0].points.len(), 720);
        let q1 = req(7, T0, T0 + 4 * HOUR, Some(Tier::Min1));
        let pts = &engine.query(&q1).unwrap().series[0].points;
        assert_eq!(pts.len(), 60);
        assert!(pts.iter().all(|p| p.count == 12));
        let qh = req(7, T0, T0 + 4 * HOUR, Some(Tier::Hour1));
        let pts = &engine.query(&qh).unwrap().series[0].points;
        assert_eq!(pts.len(), 1);
        assert_eq!(pts[0].count, 720);
    }
}
