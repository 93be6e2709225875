//! A disk that fills up during maintenance (sealing, roll-ups and the
//! compactions that drop superseded blocks): the engine on a small tmpfs
//! that the test mounts (root only; CI runs as root; skipped with a message
//! elsewhere), filled to within a few bytes before each pass. Whatever step
//! of the pass the disk runs out in, the blocks written before stay
//! readable with the same values, and once space is back a reopened engine
//! finishes the work and loses nothing.

#![cfg(feature = "engine")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use storage::model::SeriesKey;
use storage::tsdb::{Engine, EngineConfig, ManualClock, QueryRequest, Row, Tier};

const T0: i64 = 1_795_564_800_000; // 2026-11-25T00:00:00Z
const HOUR: i64 = 3_600_000;

/// The tmpfs, unmounted (lazily, so open files do not stop it) on drop.
struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn tmpfs(size_mib: u64) -> Option<Tmpfs> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m,mode=0700")])
        .arg("tmpfs")
        .arg(dir.path())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs (needs root): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(Tmpfs(dir))
}

/// Fills the file system of `dir` until at most `leave` bytes are free.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("filler");
    let chunk = vec![0xA5u8; 1 << 20];
    // A few rounds: what is free moves a little as the pages are counted.
    for _ in 0..4 {
        let mut todo = free_bytes(dir).saturating_sub(leave);
        while todo > 0 {
            let n = (todo as usize).min(chunk.len());
            if f.write_all(&chunk[..n]).is_err() {
                break;
            }
            todo -= n as u64;
        }
    }
    path
}

/// Free bytes of the file system holding `dir` (`df`'s available column).
fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

fn key(s: usize) -> SeriesKey {
    SeriesKey::with_labels("cpu.core_pct", [("core", s.to_string())])
}

/// Rows of 8 noisy series (one-decimal walks) every 5 s over `[from, to)`.
fn rows(agent: u64, from: i64, to: i64) -> Vec<Row> {
    let mut x = agent.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ from as u64;
    let mut v = [500i64; 8];
    (0..(to - from) / 5_000)
        .map(|i| {
            let samples = (0..8)
                .map(|s| {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    v[s] = (v[s] + ((x >> 33) % 121) as i64 - 60).clamp(0, 1000);
                    (key(s), v[s] as f64 / 10.0)
                })
                .collect();
            Row::new(from + i * 5_000, samples)
        })
        .collect()
}

fn req(agent: u64, tier: Tier, start: i64, stop: i64) -> QueryRequest {
    QueryRequest {
        agent,
        metrics: Vec::new(),
        label_filter: None,
        start_ms: start,
        stop_ms: stop,
        tier: Some(tier),
        interval_ms: None,
        max_points: 0,
    }
}

/// Every point of every tier of the agents over `[start, stop)`, as text.
fn answers(engine: &Engine, start: i64, stop: i64) -> Vec<String> {
    let mut out = Vec::new();
    for agent in 1..=3 {
        for tier in [Tier::Raw5s, Tier::Min1, Tier::Hour1] {
            let res = engine.query(&req(agent, tier, start, stop)).expect("query");
            for s in &res.series {
                // Sums to 6 decimals: a sum the roll-up stored (rounded to
                // the values' scale) and one added up on the fly from finer
                // points differ in the last bits of the float.
                let points: Vec<String> = s
                    .points
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {} {} {:.6} {} {}",
                            p.ts_ms, p.min, p.max, p.sum, p.count, p.last
                        )
                    })
                    .collect();
                out.push(format!("{agent} {tier:?} {} {points:?}", s.key));
            }
        }
    }
    out
}

fn config() -> EngineConfig {
    EngineConfig {
        cache_bytes: 1 << 20,
        seal_grace_ms: 0,
        ..EngineConfig::default()
    }
}

#[test]
fn a_full_disk_during_maintenance_leaves_the_previous_blocks_readable() {
    let Some(fs) = tmpfs(24) else { return };
    let dir = fs.0.path().join("tsdb");
    let clock = Arc::new(ManualClock::new(T0 + 2 * HOUR + 60_000));
    let engine = Engine::open(&dir, config(), clock.clone()).expect("open");
    for agent in 1..=3 {
        engine
            .write(agent, &rows(agent, T0, T0 + 2 * HOUR))
            .unwrap();
    }
    engine.run_maintenance().unwrap();
    engine.flush().unwrap();
    let before = answers(&engine, T0, T0 + 2 * HOUR);
    assert!(
        before.len() >= 3 * 3 * 8,
        "{} series answered",
        before.len()
    );

    drop(engine);

    // Each round: an hour more into the head, then a pass on a disk with
    // only `leave` bytes free. Where the pass runs out (the journal append
    // of a seal, the table a flush writes, the compaction that drops
    // superseded blocks) depends on how far its writes get; the blocks
    // sealed before must read the same, in the engine that failed and in
    // the one reopened once space is back, which then finishes the work.
    let mut t = T0 + 2 * HOUR;
    let mut compaction_failed = 0;
    for leave in [
        0u64,
        64 << 10,
        128 << 10,
        192 << 10,
        256 << 10,
        384 << 10,
        512 << 10,
        1 << 20,
    ] {
        let engine = Engine::open(&dir, config(), clock.clone()).expect("reopen");
        for agent in 1..=3 {
            engine.write(agent, &rows(agent, t, t + HOUR)).unwrap();
        }
        t += HOUR;
        let filler = fill(fs.0.path(), leave);
        clock.set(t + 60_000);
        match engine.run_maintenance() {
            Err(e) if e.to_string().contains("compact") => compaction_failed += 1,
            Err(e) => eprintln!("{leave} bytes free: the pass failed: {e}"),
            Ok(r) => eprintln!("{leave} bytes free: {r:?}"),
        }
        assert_eq!(
            answers(&engine, T0, T0 + 2 * HOUR),
            before,
            "after a pass with {leave} bytes free"
        );
        drop(engine);
        std::fs::remove_file(filler).unwrap();
    }
    assert!(
        compaction_failed > 0,
        "the disk never ran out in a compaction"
    );

    // Space is back: the reopened engine finishes the work and lost nothing.
    let engine = Engine::open(&dir, config(), clock.clone()).expect("reopen");
    engine.run_maintenance().unwrap();
    assert_eq!(answers(&engine, T0, T0 + 2 * HOUR), before);
    let res = engine.query(&req(1, Tier::Min1, T0, t)).unwrap();
    let minutes = ((t - T0) / 60_000) as usize;
    assert!(
        res.series.iter().all(|s| s.points.len() == minutes),
        "every minute of every hour written"
    );
}
