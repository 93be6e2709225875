//! The uptime-check scheduler: 1,000 HTTP checks every 60 s against a local
//! server; its CPU and how late runs start.
//!
//! Run with `cargo bench -p server --bench checks`;
//! `STATUSMONITOR_BENCH_QUICK=1` measures 60 s instead of 180 s.
//!
//! Method: the server's app (the library, in this process, on a tokio
//! runtime with two workers) on a fresh data directory; the admin creates
//! 1,000 HTTP checks (`GET /ok`, interval 60 s) through the API, all at
//! once. The target is an axum server in the same process on its own
//! runtime, whose threads are named `bench-target` so their CPU is left
//! out. After a 65 s warm-up (every check has run once), the figures over
//! the measured span are: the server's CPU (process CPU minus the target's
//! threads, from /proc) as a share of one core, runs per second (from the
//! target's hit counter), and the p50 / p99 / max lateness of runs (start
//! time minus due time, recorded by the scheduler).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::config::{Config, PasswordCost, ServeArgs};
use server::datadir::DataDir;
use server::state::AppState;

const CHECKS: usize = 1_000;

/// (utime + stime) seconds of this process, and of its threads named `prefix*`.
fn cpu_seconds(prefix: &str) -> (f64, f64) {
    let ticks = |stat: &str| -> f64 {
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let f: Vec<&str> = after.split_whitespace().collect();
        let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (get(11) + get(12)) / 100.0
    };
    let total = ticks(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default());
    let mut named = 0.0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            named += ticks(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default());
        }
    }
    (total, named)
}

fn summary(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), ms[ms.len() - 1])
}

fn main() {
    let quick = std::env::var_os("STATUSMONITOR_BENCH_QUICK").is_some();
    let measure = Duration::from_secs(if quick { 60 } else { 180 });

    // The target, on its own runtime and threads.
    let hits = Arc::new(AtomicU64::new(0));
    let target = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-target")
        .enable_all()
        .build()
        .unwrap();
    let target_addr: SocketAddr = target.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/ok",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                async { "ok" }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    });

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::resolve(ServeArgs {
        max_checks_per_user: Some(CHECKS as u64),
        ..Default::default()
    })
    .unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.password_cost = PasswordCost::INSECURE_FAST_FOR_TESTS;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let state = runtime
        .block_on(async { AppState::open(config, DataDir::open(dir.path()).unwrap()).unwrap() });
    let addr: SocketAddr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = server::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    });
    let base = format!("http://{addr}");
    let http: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(true)
        .build()
        .into();
    let post = |path: &str, auth: Option<&str>, body: &Value| -> Value {
        let mut req = http.post(format!("{base}{path}"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send_json(body)
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap_or(Value::Null)
    };
    let account = json!({ "username": "admin", "password": "correct horse battery" });
    post("/api/auth/register", None, &account);
    let login = post("/api/auth/token", None, &account);
    let bearer = format!("Bearer {}", login["access_token"].as_str().unwrap());
    let created = Instant::now();
    for i in 0..CHECKS {
        let check = json!({
            "name": format!("check {i}"),
            "kind": "http",
            "target": format!("http://{target_addr}/ok"),
            "interval_s": 60,
            "timeout_ms": 5000,
        });
        post("/api/checks", Some(&bearer), &check);
    }
    eprintln!(
        "{CHECKS} checks created in {:.1} s; warming up 65 s",
        created.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(65));

    let lateness_before = state.checks.lateness_ms().len();
    let hits_before = hits.load(Ordering::Relaxed);
    let (cpu0, target0) = cpu_seconds("bench-target");
    let started = Instant::now();
    std::thread::sleep(measure);
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu1, target1) = cpu_seconds("bench-target");
    let runs = hits.load(Ordering::Relaxed) - hits_before;
    let lateness = state.checks.lateness_ms();
    // Lateness samples are kept in a bounded buffer: take the newest.
    let measured: Vec<f64> = lateness
        .iter()
        .copied()
        .skip(lateness_before.min(lateness.len()))
        .collect();
    let server_cpu = (cpu1 - cpu0) - (target1 - target0);
    let (p50, p99, max) = summary(if measured.is_empty() {
        vec![0.0]
    } else {
        measured.clone()
    });
    println!(
        "checks: {CHECKS} HTTP checks at 60 s for {elapsed:.0} s: {:.2} runs/s, server CPU {:.2} % of a core (target {:.2} %), lateness p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({} runs)",
        runs as f64 / elapsed,
        100.0 * server_cpu / elapsed,
        100.0 * (target1 - target0) / elapsed,
        measured.len(),
    );
    drop(state);
    drop(runtime);
    drop(target);
}
