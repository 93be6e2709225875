//! `GET /api/rules` latency while the alert evaluator commits continuously.
//!
//! Run with `cargo bench -p server --bench rules`;
//! `STATUSMONITOR_BENCH_QUICK=1` takes fewer samples.
//!
//! Method: the server's app (the library, in this process, on a tokio
//! runtime with two workers, like the 2-core machines it is sized for)
//! serves a fresh data directory on a loopback port. One user has one agent
//! with `RULES` CPU rules (threshold 50 %, no cooldown). A client thread asks
//! `GET /api/rules` (every rule with its firing labels) over one keep-alive
//! connection, one request at a time, and records each latency, first with
//! nothing else running ("idle"), then while another thread ingests a report
//! every 20 ms whose CPU alternates between 95 % and 5 %: every report makes
//! every rule fire or resolve, and each transition is a redb commit (an
//! fsync) made by the evaluator thread while it holds its state mutex
//! ("evaluator committing"). Figures are p50 / p99 / max of the client's
//! latencies, and the evaluator's transitions per second over that phase
//! (from the alert history's total).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use server::config::{Config, PasswordCost, ServeArgs};
use server::datadir::DataDir;
use server::state::AppState;

const RULES: usize = 100;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn post(agent: &ureq::Agent, url: &str, auth: (&str, &str), body: &Value) -> Value {
    let mut r = agent
        .post(url)
        .header(auth.0, auth.1)
        .send_json(body)
        .unwrap();
    r.body_mut().read_json().unwrap_or(Value::Null)
}

/// p50, p99 and max of `ms`, in ms.
fn summary(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), ms[ms.len() - 1])
}

/// `n` sequential `GET /api/rules`, each latency in ms.
fn read_rules(agent: &ureq::Agent, base: &str, bearer: &str, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let mut r = agent
                .get(format!("{base}/api/rules"))
                .header("authorization", bearer)
                .call()
                .unwrap();
            let rules: Value = r.body_mut().read_json().unwrap();
            assert_eq!(rules.as_array().map(Vec::len), Some(RULES));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn main() {
    let quick = std::env::var_os("STATUSMONITOR_BENCH_QUICK").is_some();
    let samples = if quick { 500 } else { 3_000 };

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::resolve(ServeArgs {
        open_registration: Some(true),
        // Keep every event, so the history's total counts the transitions.
        alert_history_limit: Some(1_000_000),
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

    let account = json!({ "username": "alice", "password": "correct horse battery" });
    post(
        &http,
        &format!("{base}/api/auth/register"),
        ("x-bench", "1"),
        &account,
    );
    let login = post(
        &http,
        &format!("{base}/api/auth/token"),
        ("x-bench", "1"),
        &account,
    );
    let bearer = format!("Bearer {}", login["access_token"].as_str().unwrap());
    let auth = ("authorization", bearer.as_str());
    let created = post(
        &http,
        &format!("{base}/api/agents"),
        auth,
        &json!({ "name": "bench" }),
    );
    let agent_id = created["agent"]["id"].as_u64().unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    for i in 0..RULES {
        post(
            &http,
            &format!("{base}/api/rules"),
            auth,
            &json!({ "agent_id": agent_id, "metric": "cpu_pct", "comparison": "gt",
                     "threshold": 50, "cooldown_s": 0, "name": format!("rule {i}") }),
        );
    }

    println!(
        "GET /api/rules ({RULES} rules), {samples} sequential requests per phase, 2 tokio workers"
    );
    let idle = summary(read_rules(&http, &base, &bearer, samples));
    println!(
        "  idle                   p50 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms",
        idle.0, idle.1, idle.2
    );

    let stop = Arc::new(AtomicBool::new(false));
    let reports = Arc::new(AtomicU64::new(0));
    let ingester = {
        let (stop, reports, base, http) =
            (stop.clone(), reports.clone(), base.clone(), http.clone());
        std::thread::spawn(move || {
            let mut ts = now_ms();
            let mut hot = true;
            while !stop.load(Ordering::Relaxed) {
                ts = (ts + 1).max(now_ms());
                let cpu = if hot { 95.0 } else { 5.0 };
                hot = !hot;
                let report = json!({ "reports": [{ "ts_ms": ts, "interval_ms": 5000,
                    "cpu": { "total_pct": cpu }, "memory": { "total_bytes": 1000, "used_bytes": 500 } }] });
                post(
                    &http,
                    &format!("{base}/api/ingest"),
                    ("x-agent-token", &token),
                    &report,
                );
                reports.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // Let the evaluator get going, then measure.
    std::thread::sleep(Duration::from_millis(500));
    let events_before = alert_total(&http, &base, &bearer);
    let started = Instant::now();
    let busy = summary(read_rules(&http, &base, &bearer, samples));
    let elapsed = started.elapsed().as_secs_f64();
    let events = alert_total(&http, &base, &bearer) - events_before;
    stop.store(true, Ordering::Relaxed);
    ingester.join().unwrap();
    println!(
        "  evaluator committing   p50 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms  \
         ({:.0} transitions/s committed, {} reports)",
        busy.0,
        busy.1,
        busy.2,
        events as f64 / elapsed,
        reports.load(Ordering::Relaxed)
    );
    drop(state);
    runtime.shutdown_timeout(Duration::from_secs(5));
}

/// Events recorded so far (the alert history's total).
fn alert_total(http: &ureq::Agent, base: &str, bearer: &str) -> u64 {
    let mut r = http
        .get(format!("{base}/api/alerts?limit=1"))
        .header("authorization", bearer)
        .call()
        .unwrap();
    let page: Value = r.body_mut().read_json().unwrap();
    page["total"].as_u64().unwrap()
}
