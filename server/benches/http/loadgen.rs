//! The load generator: reports, the lean ingest client, closed and paced loops, backfills.

use super::*;

/// A realistic report: bounded random walks (cheap LCG), 8 cores, 2 mounts, 2 interfaces.
pub(crate) fn report(ts: i64, seed: u64) -> Value {
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

/// Reports with the timestamp left out, rendered once: the load generator
/// shares the two cores with the server, so it only splices a timestamp into
/// a ready report per request instead of building JSON.
pub(crate) struct Bodies {
    pub(crate) parts: Vec<(String, String)>,
}

impl Bodies {
    pub(crate) fn new(seed: u64) -> Bodies {
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
    pub(crate) fn push_report(&self, out: &mut String, i: usize, ts: i64) {
        let (a, b) = &self.parts[i % self.parts.len()];
        out.push_str(a);
        out.push_str(&ts.to_string());
        out.push_str(b);
    }

    /// A one-report ingest body.
    pub(crate) fn body(&self, i: usize, ts: i64) -> Vec<u8> {
        let mut out = String::from(r#"{"reports":["#);
        self.push_report(&mut out, i, ts);
        out.push_str("]}");
        out.into_bytes()
    }
}

pub(crate) fn batch(reports: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "reports": reports })).expect("json")
}

pub(crate) fn send(agent: &ureq::Agent, url: &str, token: &str, body: &[u8]) -> f64 {
    send_as(agent, url, token, body, false)
}

/// The request body as the agent sends it: gzip at its level (`fast`).
pub(crate) fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(body).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// [`send`], gzip-compressed as the agent sends it when `gzipped`.
pub(crate) fn send_as(
    agent: &ureq::Agent,
    url: &str,
    token: &str,
    body: &[u8],
    gzipped: bool,
) -> f64 {
    let t = Instant::now();
    let request = agent
        .post(&format!("{url}/api/ingest"))
        .header("x-agent-token", token)
        .header("content-type", "application/json");
    let r = if gzipped {
        request
            .header("content-encoding", "gzip")
            .send(&gzip(body)[..])
    } else {
        request.send(body)
    };
    match r {
        Ok(mut r) => {
            let _ = r.body_mut().read_to_vec();
        }
        Err(e) => panic!("ingest failed: {e}"),
    }
    t.elapsed().as_secs_f64() * 1e3
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
pub(crate) fn closed_loop(
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
pub(crate) struct RawConnection {
    pub(crate) stream: tokio::net::TcpStream,
    pub(crate) buf: Vec<u8>,
}

impl RawConnection {
    pub(crate) async fn open(addr: &str) -> RawConnection {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        RawConnection {
            stream,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Sends one ingest request and reads its whole answer; panics unless it is 200.
    pub(crate) async fn ingest(&mut self, host: &str, token: &str, body: &[u8]) {
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

    pub(crate) async fn read_more(&mut self) {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.expect("read answer");
        assert!(n > 0, "server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

/// Open loop: every agent sends one report per `every` for `secs`, spread evenly.
pub(crate) fn paced(
    url: &str,
    agents: &[(u64, String)],
    every: Duration,
    secs: f64,
    threads: usize,
) -> u64 {
    paced_as(url, agents, every, secs, threads, false)
}

/// [`paced`], each body gzip-compressed as the agent sends it when `gzipped`.
pub(crate) fn paced_as(
    url: &str,
    agents: &[(u64, String)],
    every: Duration,
    secs: f64,
    threads: usize,
    gzipped: bool,
) -> u64 {
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
                    // Thread t is t/threads of a step behind thread 0, so
                    // the requests arrive one at a time, evenly spread, as
                    // from agents that are not synchronised (until
                    // 2026-12-06 every thread sent at the same instants:
                    // bursts of 8 that the server took in one wake-up and
                    // one group commit, half the CPU of a spread load).
                    let due = start
                        + Duration::from_secs_f64(
                            per_thread * (i as f64 + t as f64 / threads as f64),
                        );
                    if due.duration_since(start).as_secs_f64() >= secs {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let (_, token) = &mine[i % mine.len()];
                    send_as(&agent, &url, token, &bodies.body(i, now_ms()), gzipped);
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
pub(crate) fn backfill(url: &str, id: u64, token: &str, end: i64, days: i64) -> usize {
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
pub(crate) fn prefill(url: &str, agents: &[(u64, String)], from_ms: i64, threads: usize) -> u64 {
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
