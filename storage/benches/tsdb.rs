//! Storage engine benchmark: the synthetic 100 hosts × 38 series × 5 s × 24 h
//! workload (~66 M samples), then sizes per tier, query latencies and RSS.
//! A plain `harness = false` binary: `cargo bench -p storage --bench tsdb`.
//!
//! Environment (all optional):
//! - `STATUSMONITOR_BENCH_HOSTS` (100), `STATUSMONITOR_BENCH_HOURS` (24):
//!   scale the main workload down for a quick run;
//! - `STATUSMONITOR_BENCH_HISTORY_DAYS` (365): length of the one-host history
//!   (1 sample per minute) used for the 7 d and 1 y queries;
//! - `STATUSMONITOR_BENCH_CONTAINERS` (0): containers per host, each 9
//!   series labelled by its name (running, restarts, CPU %, memory used and
//!   limit, network and block I/O rates);
//! - `STATUSMONITOR_BENCH_ONLY=ingest`: stop after the ingest and disk
//!   figures (no queries, no year of history);
//! - `STATUSMONITOR_BENCH_DIR`: where the databases go (default: a temp dir);
//! - `STATUSMONITOR_BENCH_ONLY=cycle`: only the full retention cycle
//!   (`STATUSMONITOR_BENCH_CYCLE_OLD_STEP_S`, 300: the report interval of its
//!   days older than a week; `STATUSMONITOR_BENCH_CYCLE_DAYS`, 365: a
//!   shorter cycle; `STATUSMONITOR_BENCH_DU=1`: list its 30 largest files).
//!
//! Every figure is printed with how it was measured.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use storage::model::synthetic::{Machine, Rng};
use storage::tsdb::{Clock, Engine, EngineConfig, ManualClock, QueryRequest, Row};

const STEP: i64 = 5_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-11-25T00:00:00Z: the end of the simulated day.
const END: i64 = 1_795_564_800_000;

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Containers per host (`STATUSMONITOR_BENCH_CONTAINERS`).
fn containers_per_host() -> usize {
    env("STATUSMONITOR_BENCH_CONTAINERS", 0) as usize
}

fn config() -> EngineConfig {
    let default = EngineConfig::default();
    EngineConfig {
        // The benchmark drives maintenance itself.
        maintenance_interval: Duration::from_secs(3600),
        // `STATUSMONITOR_BENCH_ZSTD=off` or a level, to compare.
        block_zstd_level: match std::env::var("STATUSMONITOR_BENCH_ZSTD").as_deref() {
            Ok("off") => None,
            Ok(l) => l.parse().ok().or(default.block_zstd_level),
            Err(_) => default.block_zstd_level,
        },
        // `STATUSMONITOR_BENCH_RAW_ZSTD=off` or a level, the same for raw blocks.
        raw_zstd_level: match std::env::var("STATUSMONITOR_BENCH_RAW_ZSTD").as_deref() {
            Ok("off") => None,
            Ok(l) => l.parse().ok().or(default.raw_zstd_level),
            Err(_) => default.raw_zstd_level,
        },
        ..default
    }
}

/// Bytes the files under `path` occupy on disk (allocated blocks, as `du`
/// counts them: fjall preallocates its active journal as a sparse file).
fn dir_size(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir(path) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct Ingest {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    write_wall: Duration,
    maintenance: Duration,
    samples: u64,
}

/// Write `hours` of `hosts` at 5 s with `threads` writer threads (hosts split
/// between them), one report per `write` call as the server does. Rows are
/// generated outside the timed sections (5 minutes at a time); maintenance
/// runs after every simulated hour, also outside them.
fn ingest(dir: &std::path::Path, hosts: u64, hours: i64, threads: u64) -> Ingest {
    let start = END - hours * HOUR;
    let clock = Arc::new(ManualClock::new(start));
    let engine = Arc::new(Engine::open(dir, config(), clock.clone()).expect("open"));
    let barrier = Arc::new(Barrier::new(threads as usize + 1));
    let batches = hours * 12; // 5-minute batches
    let mut workers = Vec::new();
    for t in 0..threads {
        let engine = engine.clone();
        let barrier = barrier.clone();
        workers.push(std::thread::spawn(move || {
            let my: Vec<u64> = (0..hosts).filter(|h| h % threads == t).collect();
            let mut sims: Vec<Machine> = my
                .iter()
                .map(|h| Machine::new(*h, containers_per_host()))
                .collect();
            let mut jitter = Rng(t + 99);
            let mut samples = 0u64;
            for b in 0..batches {
                let mut rows: Vec<(u64, Row)> = Vec::with_capacity(60 * my.len());
                for s in 0..60 {
                    let ts = start + (b * 60 + s) * STEP;
                    for (i, h) in my.iter().enumerate() {
                        // Timers fire at or a little after their deadline.
                        let ts = ts + (jitter.sym().abs() * 4.0) as i64;
                        let rep = sims[i].report(ts, STEP as u32);
                        rows.push((*h, engine.report_row(&rep)));
                    }
                }
                samples += rows.iter().map(|(_, r)| r.values.len() as u64).sum::<u64>();
                barrier.wait();
                for (h, row) in &rows {
                    engine.write(*h, std::slice::from_ref(row)).expect("write");
                }
                barrier.wait();
                barrier.wait();
            }
            samples
        }));
    }
    let mut write_wall = Duration::ZERO;
    let mut maintenance = Duration::ZERO;
    for b in 0..batches {
        clock.set(start + (b + 1) * 5 * 60_000);
        barrier.wait();
        let t0 = Instant::now();
        barrier.wait();
        write_wall += t0.elapsed();
        if b % 12 == 11 {
            let t0 = Instant::now();
            engine.run_maintenance().expect("maintenance");
            maintenance += t0.elapsed();
        }
        barrier.wait();
    }
    let samples = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    Ingest {
        engine,
        clock,
        write_wall,
        maintenance,
        samples,
    }
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    (at(0.50), at(0.99))
}

fn time_queries(
    engine: &Engine,
    n: usize,
    mut make: impl FnMut(usize) -> QueryRequest,
) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(n);
    let mut points = 0;
    // Warm-up: one untimed run of the first few requests (fills fjall's block cache).
    for i in 0..n.min(100) {
        engine.query(&make(i)).expect("warm-up query");
    }
    for i in 0..n {
        let req = make(i);
        let t0 = Instant::now();
        let res = engine.query(&req).expect("query");
        times.push(t0.elapsed());
        points = res.series.iter().map(|s| s.points.len()).sum();
    }
    let (p50, p99) = percentiles(times);
    (p50, p99, points)
}

fn req(agent: u64, metric: Option<&str>, start: i64, stop: i64) -> QueryRequest {
    QueryRequest {
        agent,
        metrics: metric.map(|m| vec![m.to_owned()]).unwrap_or_default(),
        label_filter: None,
        start_ms: start,
        stop_ms: stop,
        tier: None,
        interval_ms: None,
        max_points: 720,
    }
}

/// The steady state the product promises, measured: `hosts` × 38 series
/// through a whole retention cycle with the default retentions (24 h of 5 s,
/// 7 d of 1 m, 365 d of 1 h). The last 7 days are written at 5 s (so the 1 m
/// points aggregate 12 samples as in production); the 358 days before at one
/// report per `old_step_s` (default 5 min: 1 h points of 12 samples), which
/// builds the 1 h tier directly instead of writing a year at 5 s. A day at a
/// time with maintenance after each, as the history host does; retention
/// drops what ages out. Then the whole engine directory is measured.
fn retention_cycle(hosts: u64) {
    const SERIES: u64 = 38;
    let old_step = env("STATUSMONITOR_BENCH_CYCLE_OLD_STEP_S", 300) * 1000;
    let shm = std::path::Path::new("/dev/shm");
    let root = if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("shm dir")
    } else {
        tempfile::tempdir().expect("temp dir")
    };
    let dir = root.path().join("cycle");
    let days = env("STATUSMONITOR_BENCH_CYCLE_DAYS", 365);
    let clock = Arc::new(ManualClock::new(END - days * DAY));
    let engine = Engine::open(&dir, config(), clock.clone()).expect("open cycle");
    let mut sims: Vec<Machine> = (0..hosts)
        .map(|h| Machine::new(h + 1000, containers_per_host()))
        .collect();
    let mut jitter = Rng(7);
    let t0 = Instant::now();
    let mut samples = 0u64;
    for day in 0..days {
        let day0 = END - (days - day) * DAY;
        let step = if day >= days - 7 { STEP } else { old_step };
        // Hours at a time, so maintenance seals and rolls up as it goes.
        for hour in 0..24 {
            let h0 = day0 + hour * HOUR;
            clock.set(h0 + HOUR);
            for (h, sim) in sims.iter_mut().enumerate() {
                let rows: Vec<Row> = (0..HOUR / step)
                    .map(|i| {
                        let ts = h0 + i * step + (jitter.sym().abs() * 4.0) as i64;
                        engine.report_row(&sim.report(ts, STEP as u32))
                    })
                    .collect();
                samples += rows.iter().map(|r| r.values.len() as u64).sum::<u64>();
                engine.write(h as u64, &rows).expect("cycle write");
            }
            if step == STEP || hour == 23 {
                clock.advance(5 * 60_000);
                engine.run_maintenance().expect("cycle maintenance");
            }
        }
    }
    clock.set(END + 5 * 60_000);
    engine.run_maintenance().expect("cycle maintenance");
    engine.flush().expect("flush");
    let build = t0.elapsed();
    if std::env::var("STATUSMONITOR_BENCH_DU").is_ok() {
        let mut entries: Vec<(u64, String)> = Vec::new();
        fn walk(p: &std::path::Path, out: &mut Vec<(u64, String)>) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push((dir_size_file(&path), path.display().to_string()));
                }
            }
        }
        fn dir_size_file(p: &std::path::Path) -> u64 {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(p).map(|m| m.blocks() * 512).unwrap_or(0)
        }
        walk(&dir, &mut entries);
        entries.sort();
        for (b, p) in entries.iter().rev().take(30) {
            println!("{b} {p}");
        }
        println!("{} files", entries.len());
    }
    let st = engine.stats();
    let total = dir_size(&dir);
    let series = (hosts * SERIES) as f64;
    println!(
        "retention cycle: {hosts} hosts x {SERIES} series, 365 d (last 7 d at 5 s, before that one report per {} s), \
         {samples} samples written in {:.0} s (writes + maintenance after every hour of the last 7 d, every day before)",
        old_step / 1000,
        build.as_secs_f64()
    );
    let kb = |b: u64| b as f64 / series / 1000.0;
    println!(
        "retention cycle, whole engine directory after maintenance and flush (allocated blocks, as du counts): \
         {:.1} MB = {:.1} KB per series (target <= 120 KB)",
        total as f64 / 1e6,
        kb(total)
    );
    println!(
        "retention cycle, split per series: 5 s tier {:.1} KB ({} bytes; {} points), 1 m tier {:.1} KB ({} bytes; {:.2} bytes/point), \
         1 h tier {:.1} KB ({} bytes; {:.2} bytes/point), head {:.2} KB, meta {:.2} KB, journal {:.2} KB; {} partitions",
        kb(st.tier_bytes[0]),
        st.tier_bytes[0],
        17_280,
        kb(st.tier_bytes[1]),
        st.tier_bytes[1],
        st.tier_bytes[1] as f64 / (series * 7.0 * 1440.0),
        kb(st.tier_bytes[2]),
        st.tier_bytes[2],
        st.tier_bytes[2] as f64 / (series * 358.0 * 24.0),
        kb(st.head_bytes),
        kb(st.meta_bytes),
        kb(st.journal_bytes),
        st.partitions
    );
    let now = Clock::now_ms(&*clock);
    let q7 = time_queries(&engine, 100, |i| {
        req(i as u64 % hosts, Some("cpu.total_pct"), now - 7 * DAY, now)
    });
    let q365 = time_queries(&engine, 100, |i| {
        req(
            i as u64 % hosts,
            Some("cpu.total_pct"),
            now - 365 * DAY,
            now,
        )
    });
    for (name, r) in [("7 d (1 m tier)", q7), ("365 d (1 h tier)", q365)] {
        println!(
            "retention cycle, query one series {name}, max_points 720: p50 {:.3} ms, p99 {:.3} ms ({} points; 100 runs over the hosts after a warm-up)",
            r.0, r.1, r.2
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` passes
    // nothing we need: run only when asked to bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let hosts = env("STATUSMONITOR_BENCH_HOSTS", 100) as u64;
    let hours = env("STATUSMONITOR_BENCH_HOURS", 24);
    let only = std::env::var("STATUSMONITOR_BENCH_ONLY").unwrap_or_default();
    if only == "cycle" {
        retention_cycle(hosts);
        return;
    }
    let history_days = env("STATUSMONITOR_BENCH_HISTORY_DAYS", 365);
    let root = match std::env::var("STATUSMONITOR_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).expect("bench dir"),
        Err(_) => tempfile::tempdir().expect("temp dir"),
    };
    println!("# storage engine benchmark");
    println!(
        "block zstd level: raw {:?}, aggregates {:?}",
        config().raw_zstd_level,
        config().block_zstd_level
    );
    let containers = env("STATUSMONITOR_BENCH_CONTAINERS", 0);
    let per_host = 38 + 9 * containers;
    println!(
        "workload: {hosts} hosts x {per_host} series (38 host + 9 x {containers} containers) x 5 s x {hours} h; \
         values are bounded random walks (pct 1 decimal, load 2 decimals, bytes/MHz integers), \
         timestamps on a 5 s grid plus 0-3 ms of timer lateness"
    );

    // 1. Ingest with one writer thread.
    let one = ingest(&root.path().join("one"), hosts, hours, 1);
    let rate1 = one.samples as f64 / one.write_wall.as_secs_f64();
    println!(
        "ingest, 1 writer thread: {:.2} M samples/s ({} samples in {:.1} s of write() wall time; \
         one report ({per_host} samples) per write() call, durable in the journal (PersistMode::Buffer) on return; \
         row generation and maintenance excluded)",
        rate1 / 1e6,
        one.samples,
        one.write_wall.as_secs_f64()
    );
    println!(
        "maintenance (seal 1 h windows, roll up 1 m and 1 h), run after every simulated hour: {:.1} s total, \
         {:.2} M samples/s",
        one.maintenance.as_secs_f64(),
        one.samples as f64 / one.maintenance.as_secs_f64() / 1e6
    );

    // Close every window, roll everything up, flush memtables.
    let engine = one.engine;
    let dir_one = root.path().join("one");
    engine.flush().expect("flush");
    let head_before = engine.stats().head_bytes;
    one.clock.set(END + 2 * HOUR);
    let t0 = Instant::now();
    engine.run_maintenance().expect("final maintenance");
    let final_pass = t0.elapsed();
    engine.flush().expect("flush");
    let st = engine.stats();
    println!(
        "head before the final maintenance pass: {head_before} bytes (the last open hour, flushed to tables); \
         after it sealed that hour: {} bytes (sealed rows and their tombstones compacted away)",
        st.head_bytes
    );
    let n = one.samples as f64;
    let series = (hosts * per_host as u64) as f64;
    let m1_points = series * (hours * 60) as f64;
    let h1_points = series * hours as f64;
    println!(
        "final maintenance pass (the last hour): {:.2} s; then flush (journal fsync, memtables to tables)",
        final_pass.as_secs_f64()
    );
    println!(
        "disk, 5 s tier: {:.3} bytes/sample ({} bytes of fjall tables in the raw partitions / {} samples)",
        st.tier_bytes[0] as f64 / n,
        st.tier_bytes[0],
        one.samples
    );
    println!(
        "disk, 1 m tier: {:.2} bytes/aggregate point (min,max,sum,count,last) = {:.3} bytes per raw sample covered ({} bytes / {} points)",
        st.tier_bytes[1] as f64 / m1_points,
        st.tier_bytes[1] as f64 / n,
        st.tier_bytes[1],
        m1_points
    );
    println!(
        "disk, 1 h tier: {:.2} bytes/aggregate point = {:.4} bytes per raw sample covered ({} bytes / {} points)",
        st.tier_bytes[2] as f64 / h1_points,
        st.tier_bytes[2] as f64 / n,
        st.tier_bytes[2],
        h1_points
    );
    println!(
        "disk, whole tsdb directory after flush (allocated blocks, as du counts): {:.3} bytes/sample ({} bytes: tables {} + head {} + meta {} + journal {})",
        dir_size(&dir_one) as f64 / n,
        dir_size(&dir_one),
        st.tier_bytes.iter().sum::<u64>(),
        st.head_bytes,
        st.meta_bytes,
        st.journal_bytes
    );

    if only == "ingest" {
        return;
    }

    // 2. Queries on the 24 h workload.
    // Host i of a series of queries: a fixed pseudo-random sequence, so the
    // warm-up touches the hosts the timed runs read.
    let pick = |i: usize| Rng(i as u64 % 100).next_u64() % hosts;
    let q = |name: &str, r: (f64, f64, usize)| {
        println!(
            "query {name}: p50 {:.3} ms, p99 {:.3} ms ({} points returned; Engine::query wall time after a warm-up, 300 runs, random host)",
            r.0, r.1, r.2
        );
    };
    let span = hours.min(24) * HOUR;
    q(
        "one series, 1 h (5 s tier, 720 points)",
        time_queries(&engine, 300, |i| {
            req(pick(i), Some("cpu.total_pct"), END - HOUR, END)
        }),
    );
    q(
        &format!("one series, {} h (5 s tier, max_points 720)", span / HOUR),
        time_queries(&engine, 300, |i| {
            req(pick(i), Some("cpu.total_pct"), END - span, END)
        }),
    );
    q(
        &format!(
            "all 38 series of one host, {} h (5 s tier, max_points 720)",
            span / HOUR
        ),
        time_queries(&engine, 300, |i| req(pick(i), None, END - span, END)),
    );
    drop(engine);

    // 3. A long history for the 7 d and 1 y queries: one host, one report per
    // minute for `history_days`, ingested a day at a time with maintenance
    // after each day (so the 1 m and 1 h tiers and retention work as in
    // production).
    // On tmpfs when there is one: fjall fsyncs a few dozen times whenever a
    // partition keyspace is created or dropped, which the simulated year does
    // thousands of times (a handful a day in production). Queries run from
    // the page cache either way.
    let shm = std::path::Path::new("/dev/shm");
    let hist_root = if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("shm dir")
    } else {
        tempfile::tempdir().expect("temp dir")
    };
    let hist_dir = hist_root.path().join("history");
    let hclock = Arc::new(ManualClock::new(END - history_days * DAY));
    let hengine = Engine::open(&hist_dir, config(), hclock.clone()).expect("open history");
    let mut host = Machine::new(4242, containers_per_host());
    let t0 = Instant::now();
    for _ in 0..history_days {
        let day0 = Clock::now_ms(&*hclock);
        let rows: Vec<Row> = (0..1440)
            .map(|m| {
                let ts = day0 + m * 60_000;
                hengine.report_row(&host.report(ts, STEP as u32))
            })
            .collect();
        hclock.advance(DAY);
        hengine.write(1, &rows).expect("history write");
        hengine.run_maintenance().expect("history maintenance");
    }
    hclock.advance(2 * HOUR);
    hengine.run_maintenance().expect("history maintenance");
    hengine.flush().expect("flush");
    println!(
        "history host: {history_days} days at 1 report/min built in {:.1} s (write + daily maintenance); sizes: 1 m tier {} bytes, 1 h tier {} bytes",
        t0.elapsed().as_secs_f64(),
        hengine.stats().tier_bytes[1],
        hengine.stats().tier_bytes[2]
    );
    let hnow = Clock::now_ms(&*hclock);
    let q7 = time_queries(&hengine, 300, |_| {
        req(1, Some("cpu.total_pct"), hnow - 7 * DAY, hnow)
    });
    q("one series, 7 d (1 m tier, max_points 720)", q7);
    let q365 = time_queries(&hengine, 100, |_| {
        req(1, Some("cpu.total_pct"), hnow - history_days * DAY, hnow)
    });
    q(
        &format!("one series, {history_days} d (1 h tier, max_points 720)"),
        q365,
    );
    let qall7 = time_queries(&hengine, 100, |_| req(1, None, hnow - 7 * DAY, hnow));
    q(
        "all 38 series of one host, 7 d (1 m tier, max_points 720)",
        qall7,
    );
    drop(hengine);

    // 4. Both cores: the same 24 h workload, hosts split over two writer threads.
    let two = ingest(&root.path().join("two"), hosts, hours, 2);
    let rate2 = two.samples as f64 / two.write_wall.as_secs_f64();
    println!(
        "ingest, 2 writer threads: {:.2} M samples/s ({} samples in {:.1} s of write() wall time, \
         same method as above; hosts split between the threads)",
        rate2 / 1e6,
        two.samples,
        two.write_wall.as_secs_f64()
    );
    drop(two.engine);

    println!(
        "peak RSS: {:.0} MiB (VmHWM of the benchmark process, which also holds 5 minutes of generated rows per thread)",
        rss_kib("VmHWM:") as f64 / 1024.0
    );

    // 5. The whole retention cycle.
    retention_cycle(hosts);
}
