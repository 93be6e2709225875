//! Start-up time of the real `statusmonitor` binary on a data directory of a
//! year-old installation: 100 agents, each with a year of 1 h aggregates and
//! the last 24 h of 5 s samples (30 series per agent).
//!
//! Run with `cargo bench -p server --bench startup` (or `make bench`);
//! `STATUSMONITOR_BENCH_QUICK=1` uses 10 agents.
//!
//! Method: the data is generated through the storage engine itself (its real
//! write path, then its real maintenance: sealing, 1 m and 1 h roll-ups,
//! retention) on a manual clock set to now. The year is written as one raw
//! row per hour (the 1 h tier gets one block per agent and window, as a
//! year of real data gives it; only the per-hour counts differ), the last
//! 24 h as a row every 5 s. Then the release binary is started on the
//! directory five times (after one warm-up start that creates the catalog);
//! each time is from spawn to the first `200` from `/api/health`, which
//! includes opening the catalog and the engine and replaying the last 15
//! minutes of every agent into the live ring. Each run ends with SIGTERM
//! and a clean shutdown.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use storage::clock::ManualClock;
use storage::model::SeriesKey;
use storage::tsdb::{Engine, EngineConfig, Row};

const BIN: &str = env!("CARGO_BIN_EXE_statusmonitor");
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const SERIES: usize = 30;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn rows(keys: &Arc<[SeriesKey]>, from: i64, to: i64, step: i64, agent: u64) -> Vec<Row> {
    (0..)
        .map(|i| from + i * step)
        .take_while(|ts| *ts < to)
        .map(|ts| Row {
            ts_ms: ts,
            keys: keys.clone(),
            values: (0..keys.len())
                .map(|s| {
                    let v = ((ts / step) as u64 * 7 + s as u64 * 13 + agent) % 1000;
                    v as f64 / 10.0
                })
                .collect(),
        })
        .collect()
}

/// Writes the year into `dir/tsdb` and closes the engine.
fn generate(dir: &std::path::Path, agents: u64, now: i64) {
    let keys: Arc<[SeriesKey]> = (0..SERIES)
        .map(|s| SeriesKey::new(format!("bench.metric_{s}")))
        .collect();
    let clock = Arc::new(ManualClock::new(now));
    // Long raw retention while writing the past; month-long partitions so the
    // year does not create thousands of short ones.
    let config = EngineConfig {
        raw_retention_ms: 400 * DAY,
        m1_retention_ms: 400 * DAY,
        h1_retention_ms: 400 * DAY,
        partition_ms: [28 * DAY, 28 * DAY, 28 * DAY],
        ..EngineConfig::default()
    };
    let engine = Engine::open(&dir.join("tsdb"), config, clock.clone()).unwrap();
    let start = (now - 365 * DAY) / HOUR * HOUR;
    let recent = (now - DAY) / 5_000 * 5_000;
    let t = Instant::now();
    for agent in 1..=agents {
        for chunk in rows(&keys, start, recent, HOUR, agent).chunks(720) {
            engine.write(agent, chunk).unwrap();
        }
        for chunk in rows(&keys, recent, now, 5_000, agent).chunks(720) {
            engine.write(agent, chunk).unwrap();
        }
    }
    eprintln!("  written in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    engine.run_maintenance().unwrap();
    engine.flush().unwrap();
    drop(engine);
    // The server's own retention: what a year-old directory holds.
    let engine = Engine::open(&dir.join("tsdb"), EngineConfig::default(), clock).unwrap();
    engine.run_maintenance().unwrap();
    let s = engine.stats();
    engine.flush().unwrap();
    eprintln!(
        "  maintained in {:.1} s: {} agents, {} series, {} partitions, tiers {:?} bytes",
        t.elapsed().as_secs_f64(),
        s.agents,
        s.series,
        s.partitions,
        s.tier_bytes
    );
}

fn start_once(dir: &std::path::Path) -> Duration {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let mut child = Command::new(BIN)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .env(
            "STATUSMONITOR_LOG",
            std::env::var("STATUSMONITOR_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(if std::env::var_os("STATUSMONITOR_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/health");
    loop {
        if ureq::get(&url).call().is_ok() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = t.elapsed();
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap();
    took
}

fn main() {
    let quick = std::env::var_os("STATUSMONITOR_BENCH_QUICK").is_some();
    let agents = if quick { 10 } else { 100 };
    // STATUSMONITOR_BENCH_DIR keeps the generated directory there (and
    // reuses it when it already holds one), for profiling the server on it.
    let kept = std::env::var_os("STATUSMONITOR_BENCH_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().unwrap();
    let dir = kept.as_deref().unwrap_or(temp.path());
    if dir.join("tsdb").exists() {
        eprintln!("startup: reusing {}", dir.display());
    } else {
        eprintln!(
            "startup: generating {agents} agents x (365 d of 1 h + 24 h of 5 s) x {SERIES} series"
        );
        generate(dir, agents, now_ms());
    }
    let _warm_up = start_once(dir);
    let mut runs: Vec<Duration> = (0..5).map(|_| start_once(dir)).collect();
    runs.sort();
    println!(
        "startup with {agents} agents (a year of 1 h, 24 h of 5 s): median {:.0} ms, min {:.0} ms, max {:.0} ms (spawn to first /api/health 200, 5 runs)",
        runs[2].as_secs_f64() * 1e3,
        runs[0].as_secs_f64() * 1e3,
        runs[4].as_secs_f64() * 1e3
    );
}
