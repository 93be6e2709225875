//! Start-up time of the real `statusmonitor` binary on a data directory of a
//! year-old installation: 100 agents, each with a year of 1 h aggregates and
//! the last 24 h of 5 s samples (30 series per agent).
//!
//! Run with `cargo bench -p server --bench startup` (or `make bench`);
//! `STATUSMONITOR_BENCH_QUICK=1` uses 10 agents;
//! `STATUSMONITOR_BENCH_SERVER=/path/to/statusmonitor` starts another build.
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
//!
//! Second case, a restart after a crash under load: 1,000 agents (quick:
//! 100), each with the last 15 minutes of realistic 5 s reports (8 cores, 2
//! mounts, 2 interfaces: 38 series) written one report per write as ingest
//! does, and the engine dropped without a flush, so the reports are only in
//! fjall's journal, as `kill -9` leaves them. Each of three runs starts the
//! binary on a fresh copy of that directory: replaying the journal, then
//! every report back into the live ring.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::clock::ManualClock;
use storage::model::{Cpu, Disk, Memory, Network, Report, SeriesKey};
use storage::tsdb::{Engine, EngineConfig, Row};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const SERIES: usize = 30;

#[path = "common/launch.rs"]
mod launch;
use launch::{free_port, now_ms, spawn_server, wait_healthy};

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

/// A report like a real 8-core host's, its values moving with `i`.
fn report(ts_ms: i64, i: u64) -> Report {
    let pct = |k: u64| ((i * 7 + k * 13) % 1000) as f64 / 10.0;
    Report {
        ts_ms,
        interval_ms: Some(5_000),
        cpu: Some(Cpu {
            total_pct: pct(0),
            cores_pct: (1..=8).map(pct).collect(),
            cores_mhz: (0..8).map(|k| 2_000 + (i * 37 + k * 101) % 2_000).collect(),
        }),
        load: Some([pct(1) / 20.0, pct(2) / 20.0, pct(3) / 20.0]),
        memory: Some(Memory {
            total_bytes: 16 << 30,
            used_bytes: (6 << 30) + (i % 1000) * 4096,
            available_bytes: Some((10 << 30) - (i % 1000) * 4096),
            swap_total_bytes: Some(2 << 30),
            swap_used_bytes: Some(0),
        }),
        disks: ["/", "/data"]
            .iter()
            .map(|m| Disk {
                mount: (*m).into(),
                total_bytes: 500 << 30,
                used_bytes: (200 << 30) + i * 4096,
                available_bytes: None,
                read_bps: Some(i % 7 * 1024),
                write_bps: Some(i % 5 * 20_480),
            })
            .collect(),
        networks: ["eth0", "wg0"]
            .iter()
            .map(|n| Network {
                iface: (*n).into(),
                rx_bps: 100_000 + i % 300 * 100,
                tx_bps: 60_000 + i % 200 * 100,
            })
            .collect(),
        uptime_s: Some(86_400 + i * 5),
        temps: Vec::new(),
        containers: None,
        processes: None,
        services: None,
    }
}

/// `agents` agents with the last 15 minutes of reports, written one per
/// write in time order across agents, then dropped unflushed (see the top).
fn generate_unflushed(dir: &std::path::Path, agents: u64, now: i64) {
    let clock = Arc::new(ManualClock::new(now));
    let engine = Engine::open(&dir.join("tsdb"), EngineConfig::default(), clock).unwrap();
    let first = (now - 15 * 60_000) / 5_000 * 5_000;
    let t = Instant::now();
    for (i, ts) in (first..now).step_by(5_000).enumerate() {
        for agent in 1..=agents {
            let row = engine.report_row(&report(ts, i as u64 + agent));
            engine.write(agent, &[row]).unwrap();
        }
    }
    drop(engine);
    eprintln!("  written in {:.1} s", t.elapsed().as_secs_f64());
}

fn start_once(dir: &std::path::Path) -> Duration {
    let listen = format!("127.0.0.1:{}", free_port());
    let t = Instant::now();
    let mut child = spawn_server(&listen, dir, &[]);
    wait_healthy(
        &format!("http://{listen}"),
        Duration::from_secs(120),
        Duration::from_millis(2),
    );
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
    let runs: Vec<Duration> = (0..5).map(|_| start_once(dir)).collect();
    println!(
        "startup with {agents} agents (a year of 1 h, 24 h of 5 s): {} (spawn to first /api/health 200, 5 runs)",
        summary(runs)
    );

    let agents = if quick { 100 } else { 1_000 };
    let template = tempfile::tempdir().unwrap();
    eprintln!(
        "startup after a crash: {agents} agents x 15 min of 5 s reports, only in the journal"
    );
    generate_unflushed(template.path(), agents, now_ms());
    let runs: Vec<Duration> = (0..3)
        .map(|_| {
            let copy = tempfile::tempdir().unwrap();
            let status = Command::new("cp")
                .arg("-a")
                .arg(template.path().join("tsdb"))
                .arg(copy.path())
                .status()
                .unwrap();
            assert!(status.success(), "cp -a");
            start_once(copy.path())
        })
        .collect();
    println!(
        "startup after a crash with {agents} agents (15 min of 5 s reports each, only in the journal): {} (spawn to first /api/health 200, 3 runs on fresh copies)",
        summary(runs)
    );
}

/// "median …, min …, max …" of an odd number of runs, in ms.
fn summary(mut runs: Vec<Duration>) -> String {
    runs.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.0} ms, min {:.0} ms, max {:.0} ms",
        ms(&runs[runs.len() / 2]),
        ms(&runs[0]),
        ms(&runs[runs.len() - 1])
    )
}
