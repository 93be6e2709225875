//! Soak and fault run of the real `statusmonitor` binary: `make soak`.
//!
//! Runs the release server on a data directory for `SOAK_MINUTES` (30) while
//! `SOAK_AGENTS` (1,000) simulated agents each send one report every 5 s,
//! `SOAK_VIEWERS` (20) WebSocket viewers watch one agent each and
//! `SOAK_HISTORY_CLIENTS` (5) clients query history (one query every 250 ms each). At random
//! moments, every `SOAK_KILL_MIN_S`..`SOAK_KILL_MAX_S` (180..480) seconds and
//! at most `SOAK_MAX_KILLS` times, the server is killed with SIGKILL and
//! started again on the same directory and port. When the time is up the load
//! stops, the server is killed once more and restarted, and the checks run:
//!
//! - **No acknowledged report lost.** Each simulated agent keeps the
//!   timestamp and `cpu.total_pct` of every report the server answered with
//!   a 2xx and `accepted: 1`. Its reports are stamped one per 5 s bucket, so
//!   afterwards the raw tier of every agent, read back through
//!   `GET /api/history/{id}/cpu?tier=5s` (which answers in 5 s buckets),
//!   must hold each acknowledged report's bucket with that report's value
//!   (reports sent but never acknowledged may or may not be there; they are
//!   counted, not checked).
//! - **RSS flat after warm-up.** The server's VmRSS (`/proc/PID/status`) every
//!   5 s; the slope in KiB/min is the least-squares slope pooled over the
//!   server's lives (each life its own intercept), leaving out the warm-up
//!   (`SOAK_WARMUP_MINUTES`, default half the run but at most 15 minutes: the
//!   live ring holds 15 minutes) and the first minute after each start. It
//!   fails above `SOAK_MAX_RSS_SLOPE_KIB_MIN` (256).
//! - **No error answers but the expected ones.** Every failed request or
//!   dropped WebSocket is classified (`connection refused`, `HTTP 503`, ...)
//!   and is expected only if it overlaps a window during which the server was
//!   down (from just before the SIGKILL until its `/api/health` answers
//!   again); any other is a failure.
//! - **The compactor keeps up.** `storage.compactor_lag_s` of `/api/health`,
//!   sampled every 5 s: how far the 1 m roll-up trails the newest closed
//!   hour (it reads 3,600 s for the minutes between an hour closing and its
//!   roll-up); fails above `SOAK_MAX_LAG_S` (4,500: one hour plus 15 minutes).
//!
//! Other knobs: `SOAK_SEED` (the kill moments; default from the clock),
//! `SOAK_DIR` (keep the data directory there instead of a temporary one),
//! `STATUSMONITOR_BENCH_SERVER` (another build of the server). Everything
//! runs on 127.0.0.1; every loop ends at the deadline. The load generator
//! shares the machine with the server, so CPU figures mean little here.

// A benchmark harness: a failed setup step should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";
const INTERVAL: Duration = Duration::from_secs(5);
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Each history client's pause between two queries (a dashboard user
/// switching charts, four times a second).
const HISTORY_PAUSE: Duration = Duration::from_millis(250);
/// How long after each start the RSS samples are left out of the slope.
const LIFE_WARM_UP: Duration = Duration::from_secs(60);

fn env_f64(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

#[path = "common/launch.rs"]
mod launch;
use launch::{now_ms, spawn_server, wait_healthy};

struct Settings {
    run: Duration,
    agents: usize,
    viewers: usize,
    history_clients: usize,
    kill_min: Duration,
    kill_max: Duration,
    max_kills: usize,
    warm_up: Duration,
    seed: u64,
    max_rss_slope: f64,
    max_lag_s: f64,
}

impl Settings {
    fn from_env() -> Settings {
        let minutes = env_f64("SOAK_MINUTES", 30.0);
        assert!(minutes > 0.0, "SOAK_MINUTES must be more than 0");
        let kill_min = env_f64("SOAK_KILL_MIN_S", 180.0);
        let kill_max = env_f64("SOAK_KILL_MAX_S", 480.0).max(kill_min);
        let seed = std::env::var("SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| now_ms() as u64);
        Settings {
            run: Duration::from_secs_f64(minutes * 60.0),
            agents: env_f64("SOAK_AGENTS", 1000.0) as usize,
            viewers: env_f64("SOAK_VIEWERS", 20.0) as usize,
            history_clients: env_f64("SOAK_HISTORY_CLIENTS", 5.0) as usize,
            kill_min: Duration::from_secs_f64(kill_min),
            kill_max: Duration::from_secs_f64(kill_max),
            max_kills: env_f64("SOAK_MAX_KILLS", (minutes * 60.0 / kill_min).ceil()) as usize,
            warm_up: Duration::from_secs_f64(
                env_f64("SOAK_WARMUP_MINUTES", (minutes / 2.0).min(15.0)) * 60.0,
            ),
            seed,
            max_rss_slope: env_f64("SOAK_MAX_RSS_SLOPE_KIB_MIN", 256.0),
            max_lag_s: env_f64("SOAK_MAX_LAG_S", 4500.0),
        }
    }
}

/// What every thread of the run shares.
struct Shared {
    base: String,
    /// The server's pid (0 while it is down).
    pid: AtomicU32,
    /// Bumped at every kill: clients drop their pooled connections.
    generation: AtomicU64,
    /// `Authorization` header of the account, renewed before it expires.
    bearer: RwLock<String>,
    stop: AtomicBool,
    /// [kill, answering again) of every time the server was down.
    down: Mutex<Vec<(Instant, Option<Instant>)>>,
    errors: Mutex<Vec<Failure>>,
    history_ok: AtomicU64,
    ws_frames: AtomicU64,
    ws_connects: AtomicU64,
}

/// One failed request (or dropped WebSocket), from when it began to when it
/// failed.
struct Failure {
    what: &'static str,
    class: String,
    began: Instant,
    ended: Instant,
}

impl Shared {
    fn fail(&self, what: &'static str, class: String, began: Instant) {
        self.errors.lock().unwrap().push(Failure {
            what,
            class,
            began,
            ended: Instant::now(),
        });
    }

    fn bearer(&self) -> String {
        self.bearer.read().unwrap().clone()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// A blocking client: 10 s per request, every status returned as an answer.
fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// A failed request's class: the I/O error kind or ureq's error.
fn classify(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("{:?}", io.kind()),
        ureq::Error::Timeout(t) => format!("timeout ({t:?})"),
        other => {
            let text = other.to_string();
            if text.contains("Connection refused") {
                "ConnectionRefused".into()
            } else {
                text
            }
        }
    }
}

fn start_server(dir: &Path, listen: &str) -> (Child, Instant) {
    let child = spawn_server(listen, dir, &[]);
    let ready = wait_healthy(
        &format!("http://{listen}"),
        Duration::from_secs(300),
        Duration::from_millis(20),
    );
    (child, ready)
}

fn login(http: &ureq::Agent, base: &str) -> String {
    let mut r = http
        .post(&format!("{base}/api/auth/token"))
        .send_json(json!({ "username": "soak", "password": PASSWORD }))
        .expect("log in");
    assert_eq!(r.status(), 200, "log in");
    let body: Value = r.body_mut().read_json().expect("login body");
    format!(
        "Bearer {}",
        body["access_token"].as_str().expect("access token")
    )
}

/// `cpu.total_pct` of report `i`: what the check expects to read back.
fn total_pct(i: u64) -> f64 {
    (i * 7 % 1000) as f64 / 10.0
}

/// A report with values moving with `i` (8 cores, 2 mounts, 2 interfaces).
fn report(ts: i64, i: u64) -> Value {
    let pct = |k: u64| ((i * 7 + k * 13) % 1000) as f64 / 10.0;
    debug_assert_eq!(pct(0), total_pct(i));
    let cores: Vec<f64> = (1..=8).map(pct).collect();
    let mhz: Vec<u64> = (0..8).map(|k| 2_000 + (i * 37 + k * 101) % 2_000).collect();
    let disks: Vec<Value> = ["/", "/data"]
        .iter()
        .map(|m| {
            json!({ "mount": m, "total_bytes": 500u64 << 30, "used_bytes": (200u64 << 30) + i % 1000 * 4096,
                    "read_bps": i % 7 * 1024, "write_bps": i % 5 * 20_480 })
        })
        .collect();
    let networks: Vec<Value> = ["eth0", "wg0"]
        .iter()
        .map(|n| json!({ "iface": n, "rx_bps": 100_000 + i % 300 * 100, "tx_bps": 60_000 + i % 200 * 100 }))
        .collect();
    json!({
        "ts_ms": ts, "interval_ms": 5000,
        "cpu": { "total_pct": pct(0), "cores_pct": cores, "cores_mhz": mhz },
        "load": [pct(1) / 20.0, pct(2) / 20.0, pct(3) / 20.0],
        "memory": { "total_bytes": 16u64 << 30, "used_bytes": (6u64 << 30) + i % 1000 * 4096,
                    "available_bytes": (10u64 << 30) - i % 1000 * 4096 },
        "disks": disks,
        "networks": networks,
        "uptime_s": 86_400 + i * 5
    })
}

/// One simulated agent and what the server acknowledged of it: per report,
/// its timestamp and `cpu.total_pct`.
struct SimAgent {
    id: u64,
    token: String,
    acked: Vec<(i64, f64)>,
    unacked: Vec<(i64, f64)>,
}

/// Sends the reports of `agents` (a slice of the whole, spread evenly over
/// the 5 s interval from `t0`) until the deadline.
///
/// Report `cycle` of an agent is stamped `grid_ms + offset + cycle × 5 s`
/// (`grid_ms` on a 5 s boundary, the offset under 5 s), whenever it
/// actually leaves: each report of an agent falls in its own 5 s bucket of
/// the raw tier, which is how history answers, and so can be found there.
fn ingest_loop(
    shared: &Shared,
    agents: &mut [SimAgent],
    offsets: &[Duration],
    (t0, grid_ms): (Instant, i64),
    deadline: Instant,
) {
    let url = format!("{}/api/ingest", shared.base);
    let mut http = client();
    let mut generation = shared.generation.load(Ordering::Acquire);
    'cycles: for cycle in 0u32.. {
        for (agent, offset) in agents.iter_mut().zip(offsets) {
            let due = t0 + *offset + INTERVAL * cycle;
            if due >= deadline || shared.stopped() {
                break 'cycles;
            }
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let now = shared.generation.load(Ordering::Acquire);
            if now != generation {
                generation = now;
                http = client();
            }
            let ts = grid_ms
                + offset.as_millis() as i64
                + INTERVAL.as_millis() as i64 * i64::from(cycle);
            let i = agent.id * 100_000 + u64::from(cycle);
            let sent = (ts, total_pct(i));
            let body = serde_json::to_vec(&json!({ "reports": [report(ts, i)] })).expect("json");
            let began = Instant::now();
            let answer = http
                .post(&url)
                .header("x-agent-token", &agent.token)
                .header("content-type", "application/json")
                .send(&body[..]);
            match answer {
                Ok(mut r) => {
                    let status = r.status().as_u16();
                    let text = r.body_mut().read_to_string().unwrap_or_default();
                    let accepted = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v["accepted"].as_u64());
                    if (200..300).contains(&status) && accepted == Some(1) {
                        agent.acked.push(sent);
                    } else {
                        agent.unacked.push(sent);
                        let class = if (200..300).contains(&status) {
                            format!("HTTP {status} accepted {accepted:?}")
                        } else {
                            format!("HTTP {status}")
                        };
                        shared.fail("ingest", class, began);
                    }
                }
                Err(e) => {
                    agent.unacked.push(sent);
                    shared.fail("ingest", classify(&e), began);
                    http = client();
                }
            }
        }
    }
}

/// Queries history of random agents, one query every 250 ms at most.
fn history_loop(shared: &Shared, ids: &[u64], seed: u64, deadline: Instant) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut http = client();
    let mut generation = shared.generation.load(Ordering::Acquire);
    let kinds = ["cpu", "memory", "disk", "network", "summary"];
    let mut next = Instant::now();
    while next < deadline && !shared.stopped() {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next = Instant::now() + HISTORY_PAUSE;
        let now = shared.generation.load(Ordering::Acquire);
        if now != generation {
            generation = now;
            http = client();
        }
        let id = ids[rng.random_range(0..ids.len())];
        let kind = kinds[rng.random_range(0..kinds.len())];
        let start = ["-15m", "-1h", "-24h"][rng.random_range(0..3)];
        let url = format!("{}/api/history/{id}/{kind}?start={start}", shared.base);
        let began = Instant::now();
        match http
            .get(&url)
            .header("authorization", &shared.bearer())
            .call()
        {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let _ = r.body_mut().read_to_vec();
                if (200..300).contains(&status) {
                    shared.history_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    shared.fail("history", format!("HTTP {status}"), began);
                }
            }
            Err(e) => {
                shared.fail("history", classify(&e), began);
                http = client();
            }
        }
    }
}

/// `viewers` WebSocket viewers, each watching one agent and reconnecting
/// whenever its socket ends, until the deadline.
fn viewers(shared: Arc<Shared>, ids: Vec<u64>, deadline: Instant) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let deadline = tokio::time::Instant::from_std(deadline);
    rt.block_on(async move {
        let tasks: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let shared = shared.clone();
                tokio::spawn(async move {
                    while tokio::time::Instant::now() < deadline && !shared.stopped() {
                        let token = shared.bearer();
                        let token = token.trim_start_matches("Bearer ");
                        let url = format!(
                            "{}/api/ws/{id}?token={token}",
                            shared.base.replace("http://", "ws://")
                        );
                        let began = Instant::now();
                        let connect = tokio::time::timeout(
                            Duration::from_secs(10),
                            tokio_tungstenite::connect_async(&url),
                        )
                        .await;
                        let mut ws = match connect {
                            Ok(Ok((ws, _))) => ws,
                            Ok(Err(e)) => {
                                let class = match e {
                                    tokio_tungstenite::tungstenite::Error::Io(io) => {
                                        format!("{:?}", io.kind())
                                    }
                                    tokio_tungstenite::tungstenite::Error::Http(r) => {
                                        format!("HTTP {}", r.status().as_u16())
                                    }
                                    other => other.to_string(),
                                };
                                shared.fail("websocket connect", class, began);
                                tokio::time::sleep(Duration::from_millis(500)).await;
                                continue;
                            }
                            Err(_) => {
                                shared.fail("websocket connect", "timeout".into(), began);
                                continue;
                            }
                        };
                        shared.ws_connects.fetch_add(1, Ordering::Relaxed);
                        let connected = Instant::now();
                        loop {
                            match tokio::time::timeout_at(deadline, ws.next()).await {
                                // The run is over.
                                Err(_) => {
                                    let _ = ws.close(None).await;
                                    return;
                                }
                                Ok(Some(Ok(msg))) => {
                                    if msg.is_text() {
                                        shared.ws_frames.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                                Ok(Some(Err(e))) => {
                                    shared.fail(
                                        "websocket stream",
                                        format!("ended: {e}"),
                                        connected,
                                    );
                                    break;
                                }
                                Ok(None) => {
                                    shared.fail(
                                        "websocket stream",
                                        "ended: closed".into(),
                                        connected,
                                    );
                                    break;
                                }
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// RSS of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

struct Sample {
    at: Instant,
    life: usize,
    rss_kib: f64,
}

/// Samples RSS and `/api/health` every 5 s; returns (RSS samples,
/// compactor lags in s, health answers that were not 200 `ok`).
fn sampler(
    shared: &Shared,
    lives: &Mutex<Vec<Instant>>,
    deadline: Instant,
) -> (Vec<Sample>, Vec<f64>, BTreeMap<String, u64>) {
    let (mut samples, mut lags, mut unhealthy) = (Vec::new(), Vec::new(), BTreeMap::new());
    let http = client();
    let url = format!("{}/api/health", shared.base);
    let mut next = Instant::now();
    while next < deadline && !shared.stopped() {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += SAMPLE_EVERY;
        let pid = shared.pid.load(Ordering::Acquire);
        let life = lives.lock().unwrap().len();
        if pid != 0
            && let Some(rss) = rss_kib(pid)
        {
            samples.push(Sample {
                at: Instant::now(),
                life,
                rss_kib: rss,
            });
        }
        let began = Instant::now();
        match http.get(&url).call() {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let body: Value = r.body_mut().read_json().unwrap_or(Value::Null);
                if let Some(lag) = body["storage"]["compactor_lag_s"].as_f64() {
                    lags.push(lag);
                }
                let state = body["status"].as_str().unwrap_or("?");
                if status != 200 || state != "ok" {
                    *unhealthy
                        .entry(format!(
                            "HTTP {status} {state}: {}",
                            body["storage"]["status"]
                        ))
                        .or_default() += 1;
                }
            }
            Err(e) => shared.fail("health", classify(&e), began),
        }
    }
    (samples, lags, unhealthy)
}

/// Least-squares slope (per minute) pooled over lives: each life has its
/// own intercept, the slope is shared. None below 3 points in all.
fn pooled_slope(points: &[(usize, f64, f64)]) -> Option<f64> {
    let mut by_life: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for &(life, minute, y) in points {
        by_life.entry(life).or_default().push((minute, y));
    }
    let (mut sxy, mut sxx, mut n) = (0.0, 0.0, 0);
    for pts in by_life.values() {
        let len = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / len;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / len;
        for (x, y) in pts {
            sxy += (x - mx) * (y - my);
            sxx += (x - mx) * (x - mx);
        }
        n += pts.len();
    }
    (n >= 3 && sxx > 0.0).then(|| sxy / sxx)
}

fn main() {
    let s = Settings::from_env();
    let kept = std::env::var_os("SOAK_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = kept.unwrap_or_else(|| temp.path().join("data"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    eprintln!(
        "soak: {:.1} min, {} agents every 5 s, {} viewers, {} history clients, kills every {}..{} s (at most {}), seed {}, data in {}",
        s.run.as_secs_f64() / 60.0,
        s.agents,
        s.viewers,
        s.history_clients,
        s.kill_min.as_secs(),
        s.kill_max.as_secs(),
        s.max_kills,
        s.seed,
        dir.display()
    );
    let (mut child, ready) = start_server(&dir, &listen);
    let lives = Mutex::new(vec![ready]);

    // The account (the first, so the admin: no agent quota) and the agents.
    let http = client();
    let r = http
        .post(&format!("{base}/api/auth/register"))
        .send_json(json!({ "username": "soak", "password": PASSWORD }))
        .expect("register");
    assert!(r.status().is_success(), "register: {}", r.status());
    let bearer = login(&http, &base);
    let mut agents: Vec<SimAgent> = (0..s.agents)
        .map(|i| {
            let mut r = http
                .post(&format!("{base}/api/agents"))
                .header("authorization", &bearer)
                .send_json(json!({ "name": format!("soak-{i}") }))
                .expect("create agent");
            assert!(r.status().is_success(), "create agent: {}", r.status());
            let body: Value = r.body_mut().read_json().expect("agent body");
            SimAgent {
                id: body["agent"]["id"].as_u64().expect("agent id"),
                token: body["token"].as_str().expect("agent token").to_string(),
                acked: Vec::new(),
                unacked: Vec::new(),
            }
        })
        .collect();
    let ids: Vec<u64> = agents.iter().map(|a| a.id).collect();
    let shared = Arc::new(Shared {
        base: base.clone(),
        pid: AtomicU32::new(child.id()),
        generation: AtomicU64::new(0),
        bearer: RwLock::new(bearer),
        stop: AtomicBool::new(false),
        down: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
        history_ok: AtomicU64::new(0),
        ws_frames: AtomicU64::new(0),
        ws_connects: AtomicU64::new(0),
    });

    let wall = now_ms();
    let t0 = Instant::now();
    let grid_ms = wall - wall.rem_euclid(INTERVAL.as_millis() as i64);
    let deadline = t0 + s.run;
    let mut rng = rand::rngs::StdRng::seed_from_u64(s.seed);
    let (samples, lags, unhealthy, kills, restarts) = std::thread::scope(|scope| {
        // Ingest: 8 threads, each with its share of the agents spread over
        // the interval.
        let threads = 8.min(agents.len().max(1));
        let per = agents.len().div_ceil(threads);
        let total = agents.len() as u32;
        for (t, chunk) in agents.chunks_mut(per).enumerate() {
            let offsets: Vec<Duration> = (0..chunk.len())
                .map(|k| INTERVAL * (t * per + k) as u32 / total)
                .collect();
            let shared = &shared;
            scope.spawn(move || ingest_loop(shared, chunk, &offsets, (t0, grid_ms), deadline));
        }
        for c in 0..s.history_clients {
            let (shared, ids) = (&shared, &ids);
            let seed = s.seed ^ (c as u64 + 1);
            scope.spawn(move || history_loop(shared, ids, seed, deadline));
        }
        let watched: Vec<u64> = (0..s.viewers)
            .map(|v| ids[v * ids.len() / s.viewers.max(1)])
            .collect();
        {
            let shared = shared.clone();
            scope.spawn(move || viewers(shared, watched, deadline));
        }
        let sampling = {
            let (shared, lives) = (&shared, &lives);
            scope.spawn(move || sampler(shared, lives, deadline))
        };

        // The killer, which also renews the access token (15 min) every 10 min.
        let mut kills = 0;
        let mut restarts: Vec<Duration> = Vec::new();
        let mut next_kill = t0
            + Duration::from_secs_f64(
                rng.random_range(s.kill_min.as_secs_f64()..=s.kill_max.as_secs_f64()),
            );
        let mut next_login = t0 + Duration::from_secs(600);
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wake = next_kill.min(next_login).min(deadline);
            if wake > now {
                std::thread::sleep((wake - now).min(Duration::from_secs(1)));
                continue;
            }
            if now >= next_login {
                *shared.bearer.write().unwrap() = login(&client(), &base);
                next_login = now + Duration::from_secs(600);
            }
            // A kill needs a minute left after it, to see the restarted
            // server take the load.
            if now >= next_kill
                && kills < s.max_kills
                && deadline.saturating_duration_since(now) > Duration::from_secs(60)
            {
                shared.down.lock().unwrap().push((Instant::now(), None));
                shared.pid.store(0, Ordering::Release);
                child.kill().expect("SIGKILL the server");
                child.wait().expect("reap the server");
                shared.generation.fetch_add(1, Ordering::AcqRel);
                let killed = Instant::now();
                let (new, ready) = start_server(&dir, &listen);
                child = new;
                // The new life first, so no sample of it counts in the last.
                lives.lock().unwrap().push(ready);
                shared.pid.store(child.id(), Ordering::Release);
                shared.down.lock().unwrap().last_mut().expect("this kill").1 = Some(ready);
                restarts.push(ready - killed);
                kills += 1;
                eprintln!(
                    "soak: kill {kills} at {:.1} min, answering again after {:.1} s",
                    killed.duration_since(t0).as_secs_f64() / 60.0,
                    (ready - killed).as_secs_f64()
                );
                next_kill = Instant::now()
                    + Duration::from_secs_f64(
                        rng.random_range(s.kill_min.as_secs_f64()..=s.kill_max.as_secs_f64()),
                    );
            } else if now >= next_kill {
                next_kill = deadline + Duration::from_secs(3600);
            }
        }
        shared.stop.store(true, Ordering::Release);
        let (samples, lags, unhealthy) = sampling.join().expect("sampler");
        (samples, lags, unhealthy, kills, restarts)
    });

    // The load has stopped: kill once more, then read everything back from
    // a fresh start on the same directory.
    shared.down.lock().unwrap().push((Instant::now(), None));
    child.kill().expect("final SIGKILL");
    child.wait().expect("reap the server");
    let (mut child, ready) = start_server(&dir, &listen);
    shared
        .down
        .lock()
        .unwrap()
        .last_mut()
        .expect("final kill")
        .1 = Some(ready);
    let bearer = login(&http, &base);

    // Per agent, its raw tier's `cpu.total_pct` by 5 s bucket: each
    // acknowledged report must be there with its own value.
    let step = INTERVAL.as_millis() as i64;
    let (mut acked, mut missing, mut wrong, mut lost_agents) = (0usize, 0usize, 0usize, 0usize);
    let (mut unacked, mut unacked_stored) = (0usize, 0usize);
    for a in &agents {
        let all: Vec<i64> = a.acked.iter().chain(&a.unacked).map(|r| r.0).collect();
        let (Some(&first), Some(&last)) = (all.iter().min(), all.iter().max()) else {
            continue;
        };
        let mut stored: BTreeMap<i64, f64> = BTreeMap::new();
        // Windows of at most 4,000 buckets, under the 5,000-point cap.
        let mut from = first - first.rem_euclid(step);
        while from <= last {
            let to = (from + 4_000 * step).min(last + 1);
            let url = format!(
                "{base}/api/history/{}/cpu?tier=5s&start={from}&stop={to}&max_points=5000",
                a.id
            );
            let mut r = http
                .get(&url)
                .header("authorization", &bearer)
                .call()
                .expect("history for the check");
            assert_eq!(r.status(), 200, "history for the check: {url}");
            let body: Value = r.body_mut().read_json().expect("history body");
            assert_eq!(body["tier"], "5s", "the check reads the raw tier");
            assert_eq!(body["interval_ms"], step, "the check reads 5 s buckets");
            for series in body["series"].as_array().into_iter().flatten() {
                if series["metric"] == "cpu.total_pct" {
                    for p in series["points"].as_array().into_iter().flatten() {
                        if let (Some(ts), Some(avg)) = (p[0].as_i64(), p[1].as_f64()) {
                            stored.insert(ts, avg);
                        }
                    }
                }
            }
            from = to;
        }
        let found = |&(ts, value): &(i64, f64)| {
            stored
                .get(&(ts - ts.rem_euclid(step)))
                .map(|v| (v - value).abs() < 1e-9)
        };
        let (mut m, mut w) = (0, 0);
        for r in &a.acked {
            match found(r) {
                None => m += 1,
                Some(false) => w += 1,
                Some(true) => {}
            }
        }
        acked += a.acked.len();
        missing += m;
        wrong += w;
        lost_agents += usize::from(m + w > 0);
        unacked += a.unacked.len();
        unacked_stored += a.unacked.iter().filter(|r| found(r) == Some(true)).count();
    }
    let lost = missing + wrong;
    let _ = child.kill();
    let _ = child.wait();

    // Errors: expected when they overlap a time the server was down.
    let down = shared.down.lock().unwrap().clone();
    let errors = std::mem::take(&mut *shared.errors.lock().unwrap());
    let mut expected: BTreeMap<(String, &str), u64> = BTreeMap::new();
    let mut unexpected: BTreeMap<(String, &str), u64> = BTreeMap::new();
    for e in &errors {
        let overlaps = down
            .iter()
            .any(|(from, to)| e.ended >= *from && to.is_none_or(|to| e.began <= to));
        let map = if overlaps {
            &mut expected
        } else {
            &mut unexpected
        };
        *map.entry((e.class.clone(), e.what)).or_default() += 1;
    }

    // RSS: after the warm-up and the first minute of each life.
    let lives = lives.into_inner().unwrap();
    let kept_samples: Vec<(usize, f64, f64)> = samples
        .iter()
        .filter(|p| p.at >= t0 + s.warm_up && p.at >= lives[p.life - 1] + LIFE_WARM_UP)
        .map(|p| {
            (
                p.life,
                p.at.duration_since(t0).as_secs_f64() / 60.0,
                p.rss_kib,
            )
        })
        .collect();
    let slope = pooled_slope(&kept_samples);
    let rss_range = kept_samples
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.2), hi.max(p.2)));
    let lag_max = lags.iter().copied().fold(0.0f64, f64::max);
    let lag_last = lags.last().copied().unwrap_or(0.0);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    println!(
        "soak: {:.1} min, {} agents every 5 s, {} WebSocket viewers, {} history clients; load average at the end {}",
        s.run.as_secs_f64() / 60.0,
        s.agents,
        s.viewers,
        s.history_clients,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let restart_s: Vec<String> = restarts
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64()))
        .collect();
    println!(
        "  kills: {kills} during the run + 1 after it (seed {}); answering again after [{}] s",
        s.seed,
        restart_s.join(", ")
    );
    println!(
        "  reports: {acked} acknowledged, {missing} of them missing afterwards and {wrong} with another value (in {lost_agents} agents); {unacked} not acknowledged, {unacked_stored} of those stored anyway"
    );
    println!(
        "  history queries answered 2xx: {}; WebSocket frames: {} over {} connections",
        shared.history_ok.load(Ordering::Relaxed),
        shared.ws_frames.load(Ordering::Relaxed),
        shared.ws_connects.load(Ordering::Relaxed)
    );
    println!("  errors while the server was down (expected):");
    for ((class, what), n) in &expected {
        println!("    {what}: {class}: {n}");
    }
    println!("  errors while the server was up (unexpected):");
    for ((class, what), n) in &unexpected {
        println!("    {what}: {class}: {n}");
    }
    for (what, n) in &unhealthy {
        println!("  /api/health not ok: {what}: {n} samples");
    }
    match slope {
        Some(slope) => println!(
            "  RSS after warm-up ({:.0} min, and 1 min after each start): slope {slope:.1} KiB/min over {} samples, {:.1}..{:.1} MiB",
            s.warm_up.as_secs_f64() / 60.0,
            kept_samples.len(),
            rss_range.0 / 1024.0,
            rss_range.1 / 1024.0
        ),
        None => println!("  RSS: too few samples after warm-up for a slope"),
    }
    println!(
        "  compactor_lag_s: max {lag_max:.0}, last {lag_last:.0} over {} samples",
        lags.len()
    );

    let mut failed = Vec::new();
    if acked == 0 {
        failed.push("no report was acknowledged".to_string());
    }
    if lost > 0 {
        failed.push(format!("{lost} acknowledged reports lost"));
    }
    if !unexpected.is_empty() {
        failed.push("errors while the server was up".to_string());
    }
    if slope.is_some_and(|v| v > s.max_rss_slope) {
        failed.push(format!("RSS grows faster than {} KiB/min", s.max_rss_slope));
    }
    if lag_max > s.max_lag_s {
        failed.push(format!("compactor lag above {} s", s.max_lag_s));
    }
    if failed.is_empty() {
        println!("soak: every check passed");
    } else {
        println!(
            "soak: FAILED: {}; the data directory is left in {}",
            failed.join("; "),
            dir.display()
        );
        std::process::exit(1);
    }
}
