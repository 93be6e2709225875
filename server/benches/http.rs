//! HTTP benchmarks of the real `statusmonitor` binary on loopback.
//!
//! Run with `cargo bench -p server --bench http` (or `make bench`). The server
//! is the release binary in its own process; the load comes from this process
//! (a lean one-thread HTTP/1.1 client for the sustained ingest, blocking `ureq`
//! clients on threads for the rest, raw-socket WebSocket subscribers), so on a
//! 2-core machine both share the CPU — the figures are for the pair, except
//! the WebSocket delivery figure, which the kernel times at the subscriber's
//! socket while the subscribers keep off the cores during the fan-out.
//! `STATUSMONITOR_BENCH_QUICK=1` runs a shorter version.
//!
//! Figures printed, each with its method:
//! - sustained ingest (closed loop, one report per request) with 100 / 1,000 /
//!   10,000 agents: reports/s and request latency p50/p99;
//! - 10,000 agents paced at one report per 5 s: the server's CPU (utime+stime
//!   from /proc) as a share of one core, and its RSS;
//! - ingest → WebSocket delivery latency with 1,000 subscribers: arrival at
//!   their sockets (kernel timestamps), then receipt by subscribers woken
//!   per frame;
//! - history: 24 h of one agent's CPU, and `summary` over 7 d;
//! - server RSS idle with 10 agents reporting every 5 s, and under the
//!   10,000-agent load;
//! - server RSS with 10,000 agents whose rings hold their full 15 minutes
//!   (the steady state of the live ring buffer), under the paced load;
//! - ingest latency p99 idle and while 10 clients hammer the worst legal
//!   history query (`history_hammer`, `STATUSMONITOR_BENCH_ONLY=history-hammer`).
//!
//! Every figure is printed with the machine's load average at that moment.
//! The quick run covers the same cases with shorter phases and fewer
//! repetitions.

// A benchmark harness: a failed setup step should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_statusmonitor");
const PASSWORD: &str = "correct horse battery";

/// (utime + stime) in seconds of process `pid` ("self" for this one), from /proc.
fn process_cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

/// Per thread of process `pid`, from /proc/PID/task: its name, CPU seconds
/// (user, system) and context switches (voluntary, involuntary). tokio's
/// workers and blocking threads are `statusmonitor`, the group commit is
/// `tsdb-writer`, fjall's threads are `fjall:*`.
fn thread_cpu(pid: u32) -> std::collections::BTreeMap<u32, (String, [f64; 4])> {
    let mut threads = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let dir = task.path();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map_or("?", |(_, n)| n);
        let name = if name.starts_with("fjall") {
            "fjall"
        } else {
            name
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 100.0
        };
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let switches = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let counts = [
            tick(11),
            tick(12),
            switches("voluntary_ctxt_switches:"),
            switches("nonvoluntary_ctxt_switches:"),
        ];
        threads.insert(tid, (name.to_string(), counts));
    }
    threads
}

/// One line per kind of thread that ran between two [`thread_cpu`]s: its
/// share of one core (user + system) over `secs` and its context switches
/// per report. A thread that ended in between is not counted.
fn thread_report(
    before: &std::collections::BTreeMap<u32, (String, [f64; 4])>,
    after: &std::collections::BTreeMap<u32, (String, [f64; 4])>,
    secs: f64,
    reports: u64,
) -> String {
    let mut by_name: std::collections::BTreeMap<&str, [f64; 4]> = Default::default();
    for (tid, (name, a)) in after {
        let b = before.get(tid).map_or([0.0; 4], |(_, b)| *b);
        let sum = by_name.entry(name).or_default();
        for i in 0..4 {
            sum[i] += a[i] - b[i];
        }
    }
    let mut out = String::new();
    for (name, d) in by_name {
        if d[0] + d[1] < 0.005 && d[2] + d[3] < 1.0 {
            continue;
        }
        out.push_str(&format!(
            "\n    {name}: {:.1} % user + {:.1} % system, {:.2} voluntary + {:.2} involuntary context switches per report",
            d[0] / secs * 100.0,
            d[1] / secs * 100.0,
            d[2] / reports.max(1) as f64,
            d[3] / reports.max(1) as f64,
        ));
    }
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["--listen", &listen, "--data-dir"];
        let data = dir.path().join("data");
        args.push(data.to_str().unwrap());
        args.extend_from_slice(extra);
        // Another build of the server (a before/after comparison) with
        // STATUSMONITOR_BENCH_SERVER=/path/to/statusmonitor.
        let bin = std::env::var("STATUSMONITOR_BENCH_SERVER").unwrap_or_else(|_| BIN.to_string());
        let child = Command::new(&bin)
            .args(&args)
            .env("STATUSMONITOR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start statusmonitor");
        let url = format!("http://{listen}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{url}/api/health")).call().is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            url,
            _dir: dir,
        }
    }

    /// (utime + stime) in seconds, from /proc/PID/stat.
    fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(&self.child.id().to_string())
    }

    /// Waits until the server spends under 5 % of a core over one second
    /// (its background work is done), at most `max`; returns the seconds waited.
    fn settle(&self, max: Duration) -> f64 {
        let start = Instant::now();
        while start.elapsed() < max {
            let cpu0 = self.cpu_seconds();
            std::thread::sleep(Duration::from_secs(1));
            if self.cpu_seconds() - cpu0 < 0.05 {
                break;
            }
        }
        start.elapsed().as_secs_f64()
    }

    /// (VmRSS, VmHWM) in MiB.
    fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            BufReader::new(status.as_bytes())
                .lines()
                .map_while(Result::ok)
                .find(|l| l.starts_with(name))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<f64>().ok())
                })
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Api {
    url: String,
    agent: ureq::Agent,
    bearer: String,
}

impl Api {
    fn login(server: &Server) -> Api {
        let agent = ureq::Agent::new_with_defaults();
        let url = server.url.clone();
        agent
            .post(&format!("{url}/api/auth/register"))
            .send_json(json!({ "username": "bench", "password": PASSWORD }))
            .expect("register");
        let mut r = agent
            .post(&format!("{url}/api/auth/token"))
            .send_json(json!({ "username": "bench", "password": PASSWORD }))
            .expect("login");
        let body: Value = r.body_mut().read_json().expect("login body");
        let bearer = format!(
            "Bearer {}",
            body["access_token"].as_str().expect("access token")
        );
        Api { url, agent, bearer }
    }

    /// Creates `n` agents and activates each with a first report (4 client
    /// threads); returns (id, token) in creation order.
    fn agents(&self, n: usize) -> Vec<(u64, String)> {
        self.agents_since(n, 0)
    }

    /// [`Api::agents`] with the first report `back_ms` in the past.
    fn agents_since(&self, n: usize, back_ms: i64) -> Vec<(u64, String)> {
        let threads = 4.min(n.max(1));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (agent, url, bearer) =
                    (self.agent.clone(), self.url.clone(), self.bearer.clone());
                std::thread::spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| {
                            let mut r = agent
                                .post(&format!("{url}/api/agents"))
                                .header("authorization", &bearer)
                                .send_json(json!({ "name": format!("bench-{i}") }))
                                .expect("create agent");
                            let body: Value = r.body_mut().read_json().expect("agent body");
                            let id = body["agent"]["id"].as_u64().expect("id");
                            let token = body["token"].as_str().expect("token").to_string();
                            let first = report(now_ms() - back_ms, id);
                            send(&agent, &url, &token, &batch(&[first]));
                            (id, token)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(u64, String)> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("agent creation thread"))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// One GET, client-side time in ms; `accept` sets Accept-Encoding
    /// (otherwise ureq's own: gzip, which it decodes).
    fn get_ms(&self, path: &str, accept: Option<&str>) -> f64 {
        let t = Instant::now();
        let mut req = self
            .agent
            .get(&format!("{}{path}", self.url))
            .header("authorization", &self.bearer);
        if let Some(accept) = accept {
            req = req.header("accept-encoding", accept);
        }
        let mut r = req.call().expect("history");
        let _ = r.body_mut().read_to_vec().expect("body");
        t.elapsed().as_secs_f64() * 1e3
    }
}

/// A realistic report: bounded random walks (cheap LCG), 8 cores, 2 mounts, 2 interfaces.
fn report(ts: i64, seed: u64) -> Value {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add((ts / 1000) as u64);
    let mut next = move |span: f64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 33) as f64 / (1u64 << 31) as f64) * span
    };
    let cores: Vec<f64> = (0..8).map(|_| (next(1000.0)).round() / 10.0).collect();
    let mhz: Vec<u64> = (0..8).map(|_| 2000 + next(2000.0) as u64).collect();
    json!({
        "ts_ms": ts, "interval_ms": 5000,
        "cpu": { "total_pct": (cores.iter().sum::<f64>() / 8.0 * 10.0).round() / 10.0, "cores_pct": cores, "cores_mhz": mhz },
        "load": [(next(400.0)).round() / 100.0, 1.5, 1.2],
        "memory": { "total_bytes": 16_000_000_000u64, "used_bytes": 4_000_000_000u64 + next(4e9) as u64,
                    "available_bytes": 8_000_000_000u64, "swap_total_bytes": 2_000_000_000u64, "swap_used_bytes": next(1e8) as u64 },
        "disks": [
            { "mount": "/", "total_bytes": 500_000_000_000u64, "used_bytes": 200_000_000_000u64 + next(1e6) as u64, "read_bps": next(1e6) as u64, "write_bps": next(2e6) as u64 },
            { "mount": "/data", "total_bytes": 4_000_000_000_000u64, "used_bytes": 1_000_000_000_000u64, "read_bps": next(1e7) as u64, "write_bps": next(1e6) as u64 }
        ],
        "networks": [
            { "iface": "eth0", "rx_bps": next(1e7) as u64, "tx_bps": next(1e6) as u64 },
            { "iface": "wg0", "rx_bps": next(1e5) as u64, "tx_bps": next(1e5) as u64 }
        ],
        "uptime_s": 86_400 + ts / 1000 % 1_000_000
    })
}

/// `/proc/loadavg`'s three load averages, printed next to each figure: the
/// machine is shared, so a figure means little without the load it ran under.
fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let parts: Vec<&str> = text.split_whitespace().take(3).collect();
    format!("load average {}", parts.join(" "))
}

/// Reports with the timestamp left out, rendered once: the load generator
/// shares the two cores with the server, so it only splices a timestamp into
/// a ready report per request instead of building JSON.
struct Bodies {
    parts: Vec<(String, String)>,
}

impl Bodies {
    fn new(seed: u64) -> Bodies {
        const MARK: i64 = 1_111_111_111_111;
        let parts = (0..32)
            .map(|i| {
                let text = report(MARK, seed * 131 + i).to_string();
                let (a, b) = text.split_once(&MARK.to_string()).unwrap();
                (a.to_string(), b.to_string())
            })
            .collect();
        Bodies { parts }
    }

    /// Appends report `i` (of the 32, round-robin) with timestamp `ts` to `out`.
    fn push_report(&self, out: &mut String, i: usize, ts: i64) {
        let (a, b) = &self.parts[i % self.parts.len()];
        out.push_str(a);
        out.push_str(&ts.to_string());
        out.push_str(b);
    }

    /// A one-report ingest body.
    fn body(&self, i: usize, ts: i64) -> Vec<u8> {
        let mut out = String::from(r#"{"reports":["#);
        self.push_report(&mut out, i, ts);
        out.push_str("]}");
        out.into_bytes()
    }
}

fn batch(reports: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "reports": reports })).expect("json")
}

fn send(agent: &ureq::Agent, url: &str, token: &str, body: &[u8]) -> f64 {
    let t = Instant::now();
    let r = agent
        .post(&format!("{url}/api/ingest"))
        .header("x-agent-token", token)
        .header("content-type", "application/json")
        .send(body);
    match r {
        Ok(mut r) => {
            let _ = r.body_mut().read_to_vec();
        }
        Err(e) => panic!("ingest failed: {e}"),
    }
    t.elapsed().as_secs_f64() * 1e3
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

/// Closed loop: `connections` keep-alive connections, each sending one report
/// per request (round-robin over its share of `agents`) and the next as soon
/// as the answer is in, for `secs`. Returns (reports/s, latencies in ms).
///
/// The client is lean on purpose, because it shares the two cores with the
/// server: one thread (a current-thread tokio runtime) drives every
/// connection, each request is one `write` of a request rendered from a
/// ready body, and the answer is read with a minimal HTTP/1.1 parser that
/// still checks the status line and reads the whole body. (With 16 blocking
/// `ureq` threads the client used about as much CPU as the server.)
fn closed_loop(
    url: &str,
    agents: &[(u64, String)],
    connections: usize,
    secs: f64,
) -> (f64, Vec<f64>) {
    let addr = url.trim_start_matches("http://").to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let results: Vec<Vec<f64>> = rt.block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                let mine: Vec<(u64, String)> = agents
                    .iter()
                    .skip(c)
                    .step_by(connections)
                    .cloned()
                    .collect();
                let addr = addr.clone();
                tokio::spawn(async move {
                    let mut conn = RawConnection::open(&addr).await;
                    let bodies = Bodies::new(c as u64);
                    let mut lat = Vec::new();
                    let mut i = 0usize;
                    while Instant::now() < deadline {
                        let (_, token) = &mine[i % mine.len()];
                        let body = bodies.body(i, now_ms());
                        let t = Instant::now();
                        conn.ingest(&addr, token, &body).await;
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        i += 1;
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.expect("client task"));
        }
        all
    });
    let elapsed = start.elapsed().as_secs_f64();
    let lat: Vec<f64> = results.into_iter().flatten().collect();
    (lat.len() as f64 / elapsed, lat)
}

/// One keep-alive HTTP/1.1 connection speaking just enough of the protocol
/// for `POST /api/ingest`.
struct RawConnection {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawConnection {
    async fn open(addr: &str) -> RawConnection {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        RawConnection {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Sends one ingest request and reads its whole answer; panics unless it is 200.
    async fn ingest(&mut self, host: &str, token: &str, body: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let mut req = format!(
            "POST /api/ingest HTTP/1.1\r\nhost: {host}\r\nx-agent-token: {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.stream.write_all(&req).await.expect("send request");
        self.buf.clear();
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).expect("ascii head");
                assert!(
                    head.starts_with("HTTP/1.1 200"),
                    "ingest failed: {}",
                    head.lines().next().unwrap_or("")
                );
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .expect("content-length");
                let total = end + 4 + len;
                while self.buf.len() < total {
                    self.read_more().await;
                }
                assert_eq!(self.buf.len(), total, "one answer per request");
                return;
            }
            self.read_more().await;
        }
    }

    async fn read_more(&mut self) {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.expect("read answer");
        assert!(n > 0, "server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

/// Open loop: every agent sends one report per `every` for `secs`, spread evenly.
fn paced(url: &str, agents: &[(u64, String)], every: Duration, secs: f64, threads: usize) -> u64 {
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let per_thread = every.as_secs_f64() / (agents.len() as f64 / threads as f64);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mine: Vec<(u64, String)> =
                agents.iter().skip(t).step_by(threads).cloned().collect();
            let (sent, url) = (sent.clone(), url.to_string());
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                let bodies = Bodies::new(t as u64);
                let mut i = 0usize;
                loop {
                    let due = start + Duration::from_secs_f64(per_thread * i as f64);
                    if due.duration_since(start).as_secs_f64() >= secs {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let (_, token) = &mine[i % mine.len()];
                    send(&agent, &url, token, &bodies.body(i, now_ms()));
                    sent.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("paced thread");
    }
    sent.load(Ordering::Relaxed)
}

/// Backfills `days` of 5 s reports of one agent over HTTP, 500 per request.
fn backfill(url: &str, id: u64, token: &str, end: i64, days: i64) -> usize {
    let agent = ureq::Agent::new_with_defaults();
    let mut ts = end - days * 86_400_000;
    let mut n = 0;
    while ts < end {
        let chunk: Vec<Value> = (0..500)
            .map(|i| ts + i * 5_000)
            .filter(|&t| t < end)
            .map(|t| report(t, id))
            .collect();
        n += chunk.len();
        send(&agent, url, token, &batch(&chunk));
        ts += 500 * 5_000;
    }
    n
}

/// Fills the ring of every agent with `back_ms` of 5 s reports: one POST
/// per agent holding every report from `from_ms + 5 s` to now, oldest first
/// (each newer than the agent's first report, so all of them enter its ring).
/// Returns the reports sent.
fn prefill(url: &str, agents: &[(u64, String)], from_ms: i64, threads: usize) -> u64 {
    let sent = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mine: Vec<(u64, String)> =
                agents.iter().skip(t).step_by(threads).cloned().collect();
            let (sent, url) = (sent.clone(), url.to_string());
            std::thread::spawn(move || {
                let bodies = Bodies::new(t as u64);
                let agent = ureq::Agent::new_with_defaults();
                for (i, (_, token)) in mine.iter().enumerate() {
                    let end = now_ms();
                    let mut body = String::from(r#"{"reports":["#);
                    let mut ts = from_ms + 5_000;
                    let mut n = 0;
                    while ts < end {
                        if n > 0 {
                            body.push(',');
                        }
                        bodies.push_report(&mut body, i + n, ts);
                        ts += 5_000;
                        n += 1;
                    }
                    body.push_str("]}");
                    send(&agent, &url, token, body.as_bytes());
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("prefill thread");
    }
    sent.load(Ordering::Relaxed)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let quick = std::env::var("STATUSMONITOR_BENCH_QUICK").is_ok_and(|v| v != "0");
    let secs = if quick { 3.0 } else { 10.0 };
    // STATUSMONITOR_BENCH_ONLY=ingest,paced,ring,history,ws runs only those parts (for
    // profiling one of them); the idle figure always runs.
    let only = std::env::var("STATUSMONITOR_BENCH_ONLY").ok();
    let run = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p.trim() == part))
    };
    println!(
        "statusmonitor HTTP benchmarks ({} run), {}",
        if quick { "quick" } else { "full" },
        load()
    );
    println!(
        "machine: {} cores; server = {} (release) in its own process, load from this process on loopback\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::var("STATUSMONITOR_BENCH_SERVER").unwrap_or_else(|_| BIN.to_string())
    );

    // --- idle with 10 agents -------------------------------------------------
    let server = Server::start(&["--raw-retention", "8d"]);
    let api = Api::login(&server);
    let ten = api.agents(10);
    let idle_secs = if quick { 10.0 } else { 30.0 };
    paced(&server.url, &ten, Duration::from_secs(5), idle_secs, 2);
    let (rss, hwm) = server.memory_mib();
    println!(
        "idle RSS with 10 agents at 5 s: {rss:.1} MiB (peak {hwm:.1} MiB) [{}]",
        load()
    );
    println!(
        "  method: 10 agents created and reporting once per 5 s for {idle_secs}s; VmRSS/VmHWM from /proc/PID/status\n"
    );

    // --- sustained ingest ----------------------------------------------------
    let mut agents = ten.clone();
    if run("ingest") {
        for n in [100usize, 1_000, 10_000] {
            let t = Instant::now();
            agents.extend(api.agents(n - agents.len().min(n)));
            let created = t.elapsed();
            let cpu0 = server.cpu_seconds();
            let (rate, lat) = closed_loop(&server.url, &agents[..n], 16, secs);
            let cpu_us = (server.cpu_seconds() - cpu0) / (rate * secs) * 1e6;
            let (p50, p99) = summary(lat);
            println!(
                "ingest, {n} agents: {rate:.0} reports/s, latency p50 {p50:.2} ms, p99 {p99:.2} ms; server CPU {cpu_us:.0} µs per report [{}]",
                load()
            );
            println!(
                "  method: 16 keep-alive connections driven by one client thread (tokio current-thread, raw HTTP/1.1 requests from ready bodies), one report (8 cores, 2 mounts, 2 ifaces ≈ 1.1 KB JSON) per POST, round-robin over the agents, closed loop for {secs}s; server CPU = its utime+stime over the run / reports (the load generator takes the rest of the two cores); agents created in {:.1}s",
                created.as_secs_f64()
            );
        }
    }
    // STATUSMONITOR_BENCH_ONLY=paced: this figure alone, on 10,000 fresh agents.
    if run("ingest") || run("paced") {
        let n_paced = 10_000;
        if agents.len() < n_paced {
            agents.extend(api.agents(n_paced - agents.len()));
        }
        let paced_secs = if quick { 10.0 } else { 30.0 };
        // The closed loops just wrote ~230,000 reports: let the engine's
        // flushes and compactions of them finish first, or the figure is
        // theirs (see the ring part).
        let settle = server.settle(Duration::from_secs(if quick { 30 } else { 60 }));
        let cpu0 = server.cpu_seconds();
        let threads0 = thread_cpu(server.child.id());
        let t = Instant::now();
        let sent = paced(
            &server.url,
            &agents[..n_paced],
            Duration::from_secs(5),
            paced_secs,
            8,
        );
        let elapsed = t.elapsed().as_secs_f64();
        let cpu = (server.cpu_seconds() - cpu0) / elapsed * 100.0;
        let threads = thread_report(&threads0, &thread_cpu(server.child.id()), elapsed, sent);
        let (rss, hwm) = server.memory_mib();
        println!(
            "\n{n_paced} agents at 5 s: server CPU {cpu:.1} % of one core ({:.0} µs per report), RSS {rss:.1} MiB (peak {hwm:.1} MiB), {sent} reports in {elapsed:.0}s [{}]{threads}",
            cpu / 100.0 * elapsed / sent.max(1) as f64 * 1e6,
            load()
        );
        println!(
            "  method: {settle:.0}s after the agents' creation and the closed loops until the server's background work was done (a second under 5 % of a core), then an open loop, each agent one report per 5 s (2,000 reports/s) spread evenly over 8 threads; server utime+stime from /proc/PID/stat over the run, by thread from /proc/PID/task; VmRSS at its end, VmHWM = peak of the whole benchmark so far\n"
        );
    }

    // --- ring buffer at steady state -------------------------------------------
    if run("ring") {
        // Its own server: every agent's ring holds a full 15 minutes, as after
        // 15 minutes of the 10,000-agent load.
        let server = Server::start(&[]);
        let api = Api::login(&server);
        let n = 10_000;
        let window_ms = 15 * 60_000;
        let t = Instant::now();
        let from = now_ms() - window_ms;
        let agents = api.agents_since(n, window_ms);
        let created = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let filled = prefill(&server.url, &agents, from, 4);
        let fill_secs = t.elapsed().as_secs_f64();
        let (rss_filled, _) = server.memory_mib();
        // The fill wrote 1.86 M reports at once: let the engine's background
        // work on them (memtable flushes, compactions) finish, so the figure
        // is the cost of the load and not of digesting the fill.
        let settle = server.settle(Duration::from_secs(if quick { 60 } else { 120 }));
        let paced_secs = if quick { 10.0 } else { 30.0 };
        let cpu0 = server.cpu_seconds();
        let t = Instant::now();
        let sent = paced(&server.url, &agents, Duration::from_secs(5), paced_secs, 8);
        let cpu = (server.cpu_seconds() - cpu0) / t.elapsed().as_secs_f64() * 100.0;
        let (rss, hwm) = server.memory_mib();
        println!(
            "{n} agents at 5 s with 15 min in every ring (steady state): RSS {rss:.1} MiB (peak {hwm:.1} MiB), {rss_filled:.1} MiB right after the fill; server CPU {cpu:.1} % of one core, {sent} reports in {paced_secs:.0}s [{}]",
            load()
        );
        println!(
            "  method: a fresh server; {n} agents created ({created:.0}s) each with a first report 15 min old, then one POST per agent with its next {} reports at 5 s up to now ({filled} reports in {fill_secs:.0}s, 4 client threads), so every ring holds 15 minutes (180 reports); then {settle:.0}s until the server's background work on the fill was done (a second under 5 % of a core); then the paced load (one report per agent per 5 s, 8 threads) for {paced_secs:.0}s; VmRSS at its end, VmHWM over the whole run\n",
            filled / n as u64
        );
    }

    // --- history ---------------------------------------------------------------
    // Agents that took no part in the ingest runs above.
    let fresh = api.agents(3);
    if run("history") {
        let (hist_id, hist_token) = fresh[0].clone();
        let (sum_id, sum_token) = fresh[1].clone();
        let end = now_ms();
        let t = Instant::now();
        let n_hist = backfill(&server.url, hist_id, &hist_token, end, 1);
        let n_sum = backfill(&server.url, sum_id, &sum_token, end, 7);
        let filled = t.elapsed().as_secs_f64();
        // Over a real week the compactor seals each hour as it closes; give it
        // the time to do the same for the backfill before measuring.
        let settle = if quick { 30 } else { 60 };
        std::thread::sleep(Duration::from_secs(settle));
        let runs = if quick { 50 } else { 200 };
        let cpu_24h = format!("/api/history/{hist_id}/cpu?start=-24h");
        for (what, path, accept) in [
            (
                "history, 24 h of one agent's CPU (cpu.total_pct, 8 cores' % and MHz, load: 20 series, default max_points 600), gzip",
                cpu_24h.clone(),
                None,
            ),
            (
                "  same, Accept-Encoding: gzip, deflate, br, zstd (a browser's)",
                cpu_24h.clone(),
                Some("gzip, deflate, br, zstd"),
            ),
            ("  same, uncompressed", cpu_24h.clone(), Some("identity")),
            (
                "  same with max_points=720, gzip",
                format!("/api/history/{hist_id}/cpu?start=-24h&max_points=720"),
                None,
            ),
            (
                "summary over 7 d of one agent",
                format!("/api/history/{sum_id}/summary?start=-7d"),
                None,
            ),
        ] {
            let lat: Vec<f64> = (0..runs).map(|_| api.get_ms(&path, accept)).collect();
            let (p50, p99) = summary(lat);
            println!("{what}: p50 {p50:.2} ms, p99 {p99:.2} ms [{}]", load());
        }
        println!(
            "  method: {n_hist} + {n_sum} reports at 5 s (24 h and 7 d) backfilled over HTTP in {filled:.0}s (server started with --raw-retention 8d), {settle}s for the compactor to seal them, then {runs} sequential GETs each; client-side time including HTTP and JSON decoding\n"
        );
    }

    if run("history-hammer") {
        history_hammer::run(quick);
    }

    if !run("ws") {
        return;
    }
    // --- WebSocket fan-out -----------------------------------------------------
    let (ws_id, ws_token) = fresh[2].clone();
    let access = api.bearer.trim_start_matches("Bearer ").to_string();
    // STATUSMONITOR_BENCH_WS_CLIENT picks the subscribers (default: stamped,
    // then reactive; `tungstenite` is the earlier client, for comparisons).
    let clients = match std::env::var("STATUSMONITOR_BENCH_WS_CLIENT").as_deref() {
        Ok("stamped") => vec![WsClient::Stamped],
        Ok("reactive") => vec![WsClient::Reactive],
        Ok("tungstenite") => vec![WsClient::Tungstenite],
        _ => vec![WsClient::Stamped, WsClient::Reactive],
    };
    for client in clients {
        ws_fanout(&server, &access, ws_id, &ws_token, quick, client);
    }
}

/// The subscribers of the fan-out benchmark.
#[derive(Clone, Copy, PartialEq)]
enum WsClient {
    /// One thread reading every socket in batches, each frame timed by the
    /// kernel's receive timestamp (`stamped_ws`).
    Stamped,
    /// A task per socket woken for every frame, timed when its read returns
    /// (`light_ws`).
    Reactive,
    /// A tokio-tungstenite stream per socket, timed when a message is out.
    Tungstenite,
}

/// Ingest → WebSocket delivery to 1,000 subscribers of one agent.
fn ws_fanout(
    server: &Server,
    access: &str,
    ws_id: u64,
    ws_token: &str,
    quick: bool,
    client: WsClient,
) {
    let subscribers = 1_000;
    let ws_url = format!(
        "{}/api/ws/{ws_id}?token={access}",
        server.url.replace("http://", "ws://")
    );
    let reports = if quick { 20 } else { 100 };
    // When report i was POSTed: nanoseconds since `epoch` (Instant-based
    // clients) or since the Unix epoch (kernel timestamps); 0 = not yet.
    let epoch = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..reports).map(|_| AtomicU64::new(0)).collect());
    // Report i carries ts_ms = base + i, so a frame says which report it is;
    // a second ahead, so even report 0 is newer than the agent's activation
    // report (one in the same millisecond would not be live news).
    let base = now_ms() + 1_000;
    // The POSTs go out on a 100 ms grid from `start` (set once the
    // subscribers are connected).
    let period = Duration::from_millis(100);
    let start: Arc<OnceLock<Instant>> = Arc::default();
    let post_all = {
        let (url, token, sent_at, start) = (
            server.url.clone(),
            ws_token.to_string(),
            sent_at.clone(),
            start.clone(),
        );
        move || {
            let agent = ureq::Agent::new_with_defaults();
            let start = *start.get_or_init(Instant::now);
            for i in 0..reports {
                let body = batch(&[report(base + i as i64, ws_id)]);
                std::thread::sleep(
                    (start + period * i as u32).saturating_duration_since(Instant::now()),
                );
                let at = if client == WsClient::Stamped {
                    unix_nanos()
                } else {
                    epoch.elapsed().as_nanos() as u64
                };
                sent_at[i].store(at.max(1), Ordering::Release);
                send(&agent, &url, &token, &body);
            }
        }
    };
    // Each branch connects its subscribers, notes the CPU counters, then
    // starts the POSTs: the figure covers the sending phase only.
    let (lat, (cpu0, client0), workers) = if client == WsClient::Stamped {
        let mut pool = stamped_ws::Pool::connect(&ws_url, subscribers);
        let cpu = (server.cpu_seconds(), process_cpu_seconds("self"));
        let first_post = *start.get_or_init(Instant::now);
        let poster = std::thread::spawn(post_all);
        // Read halfway between two POSTs: the fan-out of a report has both
        // cores to itself unless it takes longer than 50 ms.
        let lat = pool.collect(
            reports,
            first_post + period / 2,
            period,
            |frame_ts, rx_ns| {
                let i = usize::try_from(frame_ts - base).ok()?;
                let at = sent_at.get(i)?.load(Ordering::Acquire);
                (at > 0).then(|| (i, (rx_ns as f64 - at as f64) / 1e6))
            },
        );
        poster.join().expect("poster");
        (lat, cpu, 0)
    } else {
        // STATUSMONITOR_BENCH_WS_WORKERS: the subscribers' tokio workers (2).
        let workers: usize = std::env::var("STATUSMONITOR_BENCH_WS_WORKERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("runtime");
        let latencies: Arc<Mutex<Vec<(usize, f64)>>> = Arc::default();
        let cpu = rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..subscribers {
                let (sent_at, latencies) = (sent_at.clone(), latencies.clone());
                // Latency of the report frame `text` received at `received`.
                let record =
                    move |text: &[u8], received: Instant, local: &mut Vec<(usize, f64)>| {
                        let Some(ts) = report_ts(text) else {
                            return false;
                        };
                        let at = usize::try_from(ts - base)
                            .ok()
                            .and_then(|i| sent_at.get(i))
                            .map_or(0, |a| a.load(Ordering::Acquire));
                        if at > 0 {
                            let at = epoch + Duration::from_nanos(at);
                            local.push((
                                (ts - base) as usize,
                                received.duration_since(at).as_secs_f64() * 1e3,
                            ));
                        }
                        true
                    };
                if client == WsClient::Reactive {
                    let mut sock = light_ws::connect(&ws_url).await;
                    tasks.push(tokio::spawn(async move {
                        let mut local = Vec::with_capacity(reports);
                        let mut got = 0;
                        while got < reports {
                            let Some((text, received)) = sock.next_text().await else {
                                break;
                            };
                            if record(&text, received, &mut local) {
                                got += 1;
                            }
                        }
                        latencies.lock().unwrap().extend(local);
                    }));
                } else {
                    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
                        .await
                        .expect("websocket");
                    let _snapshot = ws.next().await;
                    tasks.push(tokio::spawn(async move {
                        let mut local = Vec::with_capacity(reports);
                        let mut got = 0;
                        while let Some(Ok(msg)) = ws.next().await {
                            let received = Instant::now();
                            let Ok(text) = msg.into_text() else { continue };
                            if record(text.as_bytes(), received, &mut local) {
                                got += 1;
                            }
                            if got == reports {
                                break;
                            }
                        }
                        latencies.lock().unwrap().extend(local);
                    }));
                }
            }
            let cpu = (server.cpu_seconds(), process_cpu_seconds("self"));
            tokio::task::spawn_blocking(post_all).await.expect("poster");
            for t in tasks {
                let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
            }
            cpu
        });
        let lat = std::mem::take(&mut *latencies.lock().unwrap());
        (lat, cpu, workers)
    };
    let server_cpu = server.cpu_seconds() - cpu0;
    let client_cpu = process_cpu_seconds("self") - client0;
    let count = lat.len();
    // STATUSMONITOR_BENCH_WS_DETAIL=1: first, median and last delivery of
    // each report, to tell a slow report from a slow fan-out.
    if std::env::var("STATUSMONITOR_BENCH_WS_DETAIL").is_ok_and(|v| v != "0") {
        let mut by_report = vec![Vec::new(); reports];
        for &(i, ms) in &lat {
            by_report[i].push(ms);
        }
        for (i, mut v) in by_report.into_iter().enumerate() {
            v.sort_by(f64::total_cmp);
            if let (Some(first), Some(last)) = (v.first(), v.last()) {
                println!(
                    "  report {i:3}: first {first:6.2} ms, median {:6.2} ms, last {last:6.2} ms ({} deliveries)",
                    v[v.len() / 2],
                    v.len()
                );
            }
        }
    }
    let (p50, p99) = summary(lat.into_iter().map(|(_, ms)| ms).collect());
    let (what, how) = match client {
        WsClient::Stamped => (
            "arrival at the subscriber's socket (kernel timestamp), subscribers reading in batches",
            "all subscribers on one thread of this process: raw sockets after the HTTP upgrade, in one epoll set, read once per report, 50 ms after its POST (the thread sleeps in between, so a frame arriving wakes nobody); latency = SO_TIMESTAMPNS of the read that completes the report frame (when its last bytes reached the subscriber's TCP socket; on loopback that is inside the server's send) − wall clock just before the POST",
        ),
        WsClient::Reactive => (
            "receipt in user space, subscribers woken per frame",
            "the subscribers run in this process as tasks on tokio workers, each a plain TCP socket after the HTTP upgrade, reading and parsing every frame itself (header, length, text payload: no tungstenite stream), latency taken when the read that completes the report frame returns",
        ),
        WsClient::Tungstenite => (
            "receipt in user space, tokio-tungstenite subscribers",
            "each subscriber a tokio-tungstenite stream on tokio workers (STATUSMONITOR_BENCH_WS_CLIENT=tungstenite)",
        ),
    };
    println!(
        "ingest → WebSocket, {subscribers} subscribers, {what}: p50 {p50:.2} ms, p99 {p99:.2} ms ({count} deliveries); CPU per delivery: server {:.1} µs, subscribers {:.1} µs [{}]",
        server_cpu / count.max(1) as f64 * 1e6,
        client_cpu / count.max(1) as f64 * 1e6,
        load()
    );
    println!(
        "  method: {subscribers} WebSockets on one agent; {reports} reports POSTed 100 ms apart; latency = receipt − just before the POST (includes the durable write); CPU = utime+stime of the server and of this process over the sending phase (the POSTs included) / deliveries; {how}{}\n",
        if workers > 0 {
            format!(" ({workers} workers)")
        } else {
            String::new()
        }
    );
}

/// The `ts_ms` of a report frame (its first), without a full JSON parse: a
/// thousand subscribers parsing would compete with the server for the cores.
fn report_ts(text: &[u8]) -> Option<i64> {
    if !text.starts_with(br#"{"type":"report""#) {
        return None;
    }
    let (_, rest) = std::str::from_utf8(text).ok()?.split_once(r#""ts_ms":"#)?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A minimal WebSocket client for the fan-out benchmark: the HTTP upgrade by
/// hand, then server frames (never masked) parsed straight from the socket's
/// bytes. 1,000 of them share the two cores with the server, so they do no
/// more than reading every frame and handing each text payload over.
mod light_ws {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    pub struct Socket {
        stream: TcpStream,
        buf: Vec<u8>,
        /// When the bytes in `buf` (those not yet consumed) arrived.
        at: Instant,
    }

    /// Opens `ws://host:port/path` and reads the 101 answer.
    pub async fn connect(url: &str) -> Socket {
        let rest = url.strip_prefix("ws://").expect("ws:// URL");
        let (host, path) = rest.split_once('/').expect("path");
        let mut stream = TcpStream::connect(host).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let request = format!(
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("upgrade");
        let mut buf = Vec::with_capacity(8 << 10);
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(stream.read_buf(&mut buf).await.expect("read") > 0, "closed");
        };
        assert!(buf.starts_with(b"HTTP/1.1 101"), "upgrade refused");
        buf.drain(..end);
        Socket {
            stream,
            buf,
            at: Instant::now(),
        }
    }

    impl Socket {
        /// The next text frame's payload and when its last byte was read.
        pub async fn next_text(&mut self) -> Option<(Vec<u8>, Instant)> {
            loop {
                if let Some((opcode, start, len)) = header(&self.buf)
                    && self.buf.len() >= start + len
                {
                    let payload = self.buf[start..start + len].to_vec();
                    self.buf.drain(..start + len);
                    match opcode {
                        1 => return Some((payload, self.at)),
                        8 => return None,
                        _ => continue,
                    }
                }
                if self.buf.capacity() - self.buf.len() < 4096 {
                    self.buf.reserve(64 << 10);
                }
                if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                    return None;
                }
                self.at = Instant::now();
            }
        }
    }

    /// (opcode, payload offset, payload length) of a complete frame header.
    pub fn header(b: &[u8]) -> Option<(u8, usize, usize)> {
        let (&b0, &b1) = (b.first()?, b.get(1)?);
        assert!(b0 & 0x80 != 0, "fragmented frames are not expected");
        let (start, len) = match b1 & 0x7f {
            126 => (4, usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]))),
            127 => (
                10,
                u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize,
            ),
            n => (2, usize::from(n)),
        };
        Some((b0 & 0x0f, start, len))
    }
}

/// Subscribers for the fan-out benchmark that keep out of the server's way,
/// as browsers on other machines would: one thread, every socket in one
/// epoll set, read in batches at set times (between reports). While it
/// sleeps, a frame arriving wakes nobody (the kernel only marks the socket
/// ready). Each frame is timed by the kernel (`SO_TIMESTAMPNS`): when its
/// bytes reached the subscriber's TCP socket, which on loopback happens
/// inside the server's send, so when the batch is read changes nothing in
/// the figure.
mod stamped_ws {
    use std::io::{IoSliceMut, Read, Write};
    use std::net::TcpStream;
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
    use nix::sys::time::TimeSpec;

    use super::light_ws::header;

    struct Subscriber {
        stream: TcpStream,
        buf: Vec<u8>,
        /// Report frames seen.
        got: usize,
    }

    pub struct Pool {
        epoll: Epoll,
        subscribers: Vec<Subscriber>,
    }

    impl Pool {
        /// Opens `n` WebSockets to `url` (`ws://host:port/path`).
        pub fn connect(url: &str, n: usize) -> Pool {
            let rest = url.strip_prefix("ws://").expect("ws:// URL");
            let (host, path) = rest.split_once('/').expect("path");
            let epoll = Epoll::new(EpollCreateFlags::empty()).expect("epoll");
            let mut subscribers = Vec::with_capacity(n);
            for i in 0..n {
                let mut stream = TcpStream::connect(host).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                write!(
                    stream,
                    "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                .expect("upgrade");
                let mut buf = Vec::with_capacity(8 << 10);
                let end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    let mut chunk = [0u8; 4096];
                    let n = stream.read(&mut chunk).expect("read");
                    assert!(n > 0, "closed during the upgrade");
                    buf.extend_from_slice(&chunk[..n]);
                };
                assert!(buf.starts_with(b"HTTP/1.1 101"), "upgrade refused");
                buf.drain(..end);
                setsockopt(&stream, sockopt::ReceiveTimestampns, &true).expect("SO_TIMESTAMPNS");
                stream.set_nonblocking(true).expect("nonblocking");
                epoll
                    .add(
                        stream.as_fd(),
                        EpollEvent::new(EpollFlags::EPOLLIN, i as u64),
                    )
                    .expect("epoll add");
                subscribers.push(Subscriber {
                    stream,
                    buf,
                    got: 0,
                });
            }
            Pool { epoll, subscribers }
        }

        /// Reads at `first`, then every `every`, until every subscriber has
        /// seen `reports` report frames (or 30 s past the reports' time);
        /// `latency(report ts, arrival ns since the Unix epoch)` gives a
        /// delivery's (report index, latency in ms).
        pub fn collect(
            &mut self,
            reports: usize,
            first: Instant,
            every: Duration,
            latency: impl Fn(i64, u64) -> Option<(usize, f64)>,
        ) -> Vec<(usize, f64)> {
            let mut out = Vec::with_capacity(reports * self.subscribers.len());
            let deadline = first + every * reports as u32 + Duration::from_secs(30);
            let mut done = 0;
            let mut unstamped = 0usize;
            let mut events = vec![EpollEvent::empty(); self.subscribers.len()];
            let mut chunk = vec![0u8; 64 << 10];
            let mut cmsg = nix::cmsg_space!(TimeSpec);
            let mut next = first;
            while done < self.subscribers.len() && Instant::now() < deadline {
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                next += every;
                let ready = self
                    .epoll
                    .wait(&mut events, EpollTimeout::ZERO)
                    .expect("epoll wait");
                for event in &events[..ready] {
                    let s = &mut self.subscribers[event.data() as usize];
                    loop {
                        let mut iov = [IoSliceMut::new(&mut chunk)];
                        let (n, stamp) = match recvmsg::<()>(
                            std::os::fd::AsRawFd::as_raw_fd(&s.stream),
                            &mut iov,
                            Some(&mut cmsg),
                            MsgFlags::empty(),
                        ) {
                            Ok(msg) => {
                                let stamp = msg.cmsgs().ok().and_then(|mut c| {
                                    c.find_map(|m| match m {
                                        ControlMessageOwned::ScmTimestampns(t) => Some(
                                            t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64,
                                        ),
                                        _ => None,
                                    })
                                });
                                (msg.bytes, stamp)
                            }
                            Err(nix::errno::Errno::EAGAIN) => break,
                            Err(e) => panic!("recvmsg: {e}"),
                        };
                        assert!(n > 0, "the server closed a socket");
                        s.buf.extend_from_slice(&chunk[..n]);
                        let drained = n < chunk.len();
                        // Frames this read completed: timed by it.
                        while let Some((opcode, start, len)) = header(&s.buf)
                            && s.buf.len() >= start + len
                        {
                            if opcode == 1
                                && let Some(ts) = super::report_ts(&s.buf[start..start + len])
                            {
                                s.got += 1;
                                if s.got == reports {
                                    done += 1;
                                }
                                match stamp.and_then(|ns| latency(ts, ns)) {
                                    Some(ms) => out.push(ms),
                                    None => unstamped += 1,
                                }
                            }
                            s.buf.drain(..start + len);
                        }
                        // Level-triggered: a socket with more is ready again
                        // next round, so a short read needs no EAGAIN read.
                        if drained {
                            break;
                        }
                    }
                }
            }
            assert_eq!(unstamped, 0, "report frames without a kernel timestamp");
            out
        }
    }
}

/// Ingest latency while 10 clients of one account hammer the worst legal
/// history query (everything kept, at the finest tier and the most points),
/// against the same ingest idle. Self-contained: its own server and data.
mod history_hammer {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Paced ingest, one report at a time at `rate` per second over `agents`
    /// (round-robin), for `secs`; the latency of each request in ms.
    fn paced_latencies(url: &str, agents: &[(u64, String)], rate: f64, secs: f64) -> Vec<f64> {
        let agent = ureq::Agent::new_with_defaults();
        let bodies = Bodies::new(99);
        let start = Instant::now();
        let mut lat = Vec::new();
        let mut i = 0usize;
        loop {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            if due.duration_since(start).as_secs_f64() >= secs {
                break;
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let (_, token) = &agents[i % agents.len()];
            lat.push(send(&agent, url, token, &bodies.body(i, now_ms())));
            i += 1;
        }
        lat
    }

    pub fn run(quick: bool) {
        // Raw data kept 2 d, so the day backfilled is accepted whole.
        let server = Server::start(&["--raw-retention", "2d"]);
        let api = Api::login(&server);
        let agents = api.agents(100);
        let (id, token) = agents[0].clone();
        // A day of 5 s reports for the agent the queries read.
        let n = backfill(&server.url, id, &token, now_ms() - 10_000, 1);
        let settle = server.settle(Duration::from_secs(if quick { 30 } else { 60 }));
        let secs = if quick { 10.0 } else { 30.0 };
        let rate = 100.0;
        let (idle50, idle99) = summary(paced_latencies(&server.url, &agents, rate, secs));

        // The most work a legal request can ask for: every raw sample of the
        // raw tier's whole retention (24 h), 20 series, in 5,000 points of
        // 20 s (longer ranges go to the aggregates, far less work).
        let worst = format!("/api/history/{id}/cpu?start=-24h&tier=5s&max_points=5000");
        let stop = Arc::new(AtomicBool::new(false));
        // 200, 429, 503, other; and the time of each 200 in ms.
        let answers = Arc::new([0, 1, 2, 3].map(|_| AtomicU64::new(0)));
        let ok_ms = Arc::new(Mutex::new(Vec::new()));
        let clients: Vec<_> = (0..10)
            .map(|_| {
                let (stop, answers, ok_ms) = (stop.clone(), answers.clone(), ok_ms.clone());
                let (url, bearer, path) = (api.url.clone(), api.bearer.clone(), worst.clone());
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let mut r = agent
                            .get(&format!("{url}{path}"))
                            .header("authorization", &bearer)
                            .call()
                            .expect("history request");
                        let _ = r.body_mut().read_to_vec();
                        let slot = match r.status().as_u16() {
                            200 => {
                                ok_ms.lock().unwrap().push(t.elapsed().as_secs_f64() * 1e3);
                                0
                            }
                            429 => 1,
                            503 => 2,
                            _ => 3,
                        };
                        answers[slot].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let (busy50, busy99) = summary(paced_latencies(&server.url, &agents, rate, secs));
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("history client");
        }
        let [ok, limited, over, other] = [0, 1, 2, 3].map(|i| answers[i].load(Ordering::Relaxed));
        let (q50, q99) = summary(ok_ms.lock().unwrap().clone());
        println!(
            "ingest under a history flood: p50 {busy50:.2} ms, p99 {busy99:.2} ms, against {idle50:.2} / {idle99:.2} ms idle: p99 ×{:.2} [{}]",
            busy99 / idle99,
            load()
        );
        println!(
            "  history answers: {ok} × 200 (p50 {q50:.0} ms, p99 {q99:.0} ms), {limited} × 429, {over} × 503, {other} other"
        );
        println!(
            "  method: 100 agents; {n} reports of one agent at 5 s backfilled (24 h), {settle:.0}s to settle (server with --raw-retention 2d); ingest paced at {rate:.0} reports/s (one keep-alive ureq client, one report per POST) for {secs}s idle, then {secs}s while 10 threads of the same account loop on GET {worst} (every raw sample kept, 5,000 points; the server's defaults: 4 queries per user, 10 s budget)\n"
        );
    }
}
