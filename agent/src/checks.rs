//! Uptime checks the server assigned to this agent: fetched, run on their
//! intervals, and their results handed to the sender.
//!
//! - The server's answer to each report carries `checks_version`, the
//!   version of this agent's check list. When it differs from the list the
//!   runner holds, the runner fetches `GET /api/agent/checks` (agent token),
//!   at most every [`REFETCH_AFTER`] after a failure.
//! - Each check runs every `interval_s`, at a phase taken from its id, so
//!   checks spread over their interval. At most [`MAX_RUNNING`] run at once,
//!   each on its own short-lived thread; a check whose run passes its
//!   timeout plus [`RUN_SLACK`] gets a `timeout` result and its late answer
//!   is dropped, so a hanging target never delays other checks. The
//!   collector and the sender are other threads: checks never delay a report.
//! - A result is up/down, the latency, and on failure a short fixed phrase
//!   (`HTTP 500`, `timeout`, `keyword not found`): never a response body.
//!   Results wait in a bounded queue ([`MAX_QUEUED`], oldest dropped) and
//!   ride in the next POST (`check_results`); the server counts retries,
//!   states and alerts exactly as for the checks it runs itself.
//! - HTTPS certificate expiry is not measured here (ureq does not show the
//!   peer certificate): agent-run checks have no `cert_days`.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storage::model::checks::schedule::{next_slot, phase};
use storage::model::{
    AgentCheck, AgentCheckList, AgentCheckResult, CheckKind, CheckSpec, MAX_AGENT_CHECKS,
    MAX_CHECK_RESULTS,
};

use crate::config::{Config, Token};
use crate::error::AgentError;

/// Checks running at once.
pub const MAX_RUNNING: usize = 8;
/// Results kept while the server is away; the oldest go first.
pub const MAX_QUEUED: usize = 4 * MAX_CHECK_RESULTS;
/// How much longer than its timeout a run may take before it counts as a
/// timeout.
pub const RUN_SLACK: Duration = Duration::from_secs(2);
/// How much of a body is searched for the keyword (as on the server).
pub const KEYWORD_SCAN_BYTES: u64 = 1 << 20;
/// After a failed fetch of the list, the next try waits this long.
pub const REFETCH_AFTER: Duration = Duration::from_secs(30);

/// What the sender and the runner share: the list version the server last
/// announced and the results waiting to be sent.
#[derive(Debug, Default)]
pub struct Link {
    state: Mutex<LinkState>,
}

#[derive(Debug, Default)]
struct LinkState {
    announced: Option<String>,
    queued: VecDeque<AgentCheckResult>,
}

impl Link {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server's answer to a POST: its `checks_version`, when it has one
    /// (an older server sends none: nothing is fetched).
    pub fn acked(&self, answer: &str) {
        #[derive(serde::Deserialize)]
        struct Ack {
            #[serde(default)]
            checks_version: Option<String>,
        }
        if let Ok(Ack {
            checks_version: Some(v),
        }) = serde_json::from_str::<Ack>(answer)
        {
            self.lock().announced = Some(v);
        }
    }

    fn announced(&self) -> Option<String> {
        self.lock().announced.clone()
    }

    /// Queues a result (the oldest goes when the queue is full).
    pub fn push(&self, result: AgentCheckResult) {
        let mut s = self.lock();
        if s.queued.len() >= MAX_QUEUED {
            s.queued.pop_front();
        }
        s.queued.push_back(result);
    }

    /// Up to [`MAX_CHECK_RESULTS`] results to send, oldest first.
    pub fn take(&self) -> Vec<AgentCheckResult> {
        let mut s = self.lock();
        let n = s.queued.len().min(MAX_CHECK_RESULTS);
        s.queued.drain(..n).collect()
    }

    /// Results that were not delivered go back to the front of the queue.
    pub fn put_back(&self, results: Vec<AgentCheckResult>) {
        let mut s = self.lock();
        for r in results.into_iter().rev() {
            if s.queued.len() >= MAX_QUEUED {
                break;
            }
            s.queued.push_front(r);
        }
    }
}

/// The JSON of `results` spliced into a batch body (`{...}`) as its
/// `check_results` field.
pub fn splice_results(body: Vec<u8>, results: &[AgentCheckResult]) -> Vec<u8> {
    let Ok(json) = serde_json::to_vec(results) else {
        return body;
    };
    if results.is_empty() || body.first() != Some(&b'{') {
        return body;
    }
    let mut out = Vec::with_capacity(body.len() + json.len() + 20);
    out.extend_from_slice(b"{\"check_results\":");
    out.extend_from_slice(&json);
    if body.len() > 2 {
        out.push(b',');
    }
    out.extend_from_slice(&body[1..]);
    out
}

/// One check as the runner holds it.
struct Slot {
    check: AgentCheck,
    /// HTTP checks: the client, kept between runs.
    client: Option<ureq::Agent>,
    due: Instant,
    /// Bumped by every start: a late answer of an abandoned run is dropped.
    run: u64,
    started: Option<Instant>,
}

/// Starts the runner thread; it stops with `stop`.
pub fn spawn(
    config: &Config,
    link: Arc<Link>,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, AgentError> {
    let (server, token) = config.endpoint()?;
    let url = format!("{server}/api/agent/checks");
    let token = token.clone();
    // A short timeout: while the list is fetched no check starts.
    let client = crate::send::http_agent(
        config.timeout.min(Duration::from_secs(5)),
        config.ca_cert.as_ref(),
    );
    std::thread::Builder::new()
        .name("checks".into())
        .spawn(move || run_loop(&client, &url, &token, &link, &stop))
        .map_err(|e| AgentError::Collector(format!("cannot start the checks thread: {e}")))
}

fn run_loop(client: &ureq::Agent, url: &str, token: &Token, link: &Link, stop: &AtomicBool) {
    let mut held: Option<String> = None;
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    let mut failed_fetch: Option<Instant> = None;
    let (tx, rx) = mpsc::channel::<(u64, u64, AgentCheckResult)>();
    let mut running = 0usize;
    // Where every check's slots are counted from.
    let anchor = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let announced = link.announced();
        if announced.is_some()
            && announced != held
            && failed_fetch.is_none_or(|t| t.elapsed() >= REFETCH_AFTER)
        {
            match fetch(client, url, token) {
                Ok(list) => {
                    tracing::info!(checks = list.checks.len(), "check list from the server");
                    replace(&mut slots, list.checks);
                    held = Some(list.version);
                    failed_fetch = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fetch the check list");
                    failed_fetch = Some(Instant::now());
                }
            }
        }
        let now = Instant::now();
        // Runs past their deadline: a timeout, and the slot is free again.
        for (id, slot) in &mut slots {
            if let Some(started) = slot.started
                && now.duration_since(started) > slot.check.spec.timeout() + RUN_SLACK
            {
                slot.started = None;
                slot.run += 1;
                link.push(result(*id, false, None, Some("timeout".into())));
            }
        }
        // Start what is due.
        let mut next = now + Duration::from_secs(1);
        for (id, slot) in &mut slots {
            if slot.due <= now && slot.started.is_none() && running < MAX_RUNNING {
                let interval = slot.check.spec.interval();
                slot.due = next_slot(anchor, *id, interval, now);
                slot.run += 1;
                slot.started = Some(now);
                running += 1;
                let (tx, id, run, spec, http) = (
                    tx.clone(),
                    *id,
                    slot.run,
                    slot.check.spec.clone(),
                    slot.client.clone(),
                );
                let spawned = std::thread::Builder::new()
                    .name("check".into())
                    .spawn(move || {
                        let r = probe(id, &spec, http.as_ref());
                        let _ = tx.send((id, run, r));
                    });
                if spawned.is_err() {
                    running -= 1;
                    slot.started = None;
                }
            }
            next = next.min(slot.due);
        }
        // Wait for an answer or the next due time (a little at least: a
        // check that is due while all runs are taken waits for an answer).
        let wait = next
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(20), Duration::from_millis(500));
        let mut answer = rx.recv_timeout(wait).ok();
        while let Some((id, run, r)) = answer {
            running = running.saturating_sub(1);
            if let Some(slot) = slots.get_mut(&id)
                && slot.run == run
                && slot.started.is_some()
            {
                slot.started = None;
                link.push(r);
            }
            answer = rx.try_recv().ok();
        }
    }
}

/// Replaces the held checks by `checks`: a check whose definition did not
/// change keeps its place in its interval.
fn replace(slots: &mut HashMap<u64, Slot>, checks: Vec<AgentCheck>) {
    let now = Instant::now();
    let mut kept: HashMap<u64, Slot> = HashMap::new();
    for check in checks.into_iter().take(MAX_AGENT_CHECKS) {
        let id = check.id;
        match slots.remove(&id) {
            Some(old) if old.check == check => {
                kept.insert(id, old);
            }
            _ => {
                let client = (check.spec.kind == CheckKind::Http).then(|| http_client(&check.spec));
                // The first run soon (spread over 2 s), later ones in the
                // check's own slot of its interval.
                let due = now + phase(id, Duration::from_secs(2));
                kept.insert(
                    id,
                    Slot {
                        check,
                        client,
                        due,
                        run: 0,
                        started: None,
                    },
                );
            }
        }
    }
    *slots = kept;
}

fn fetch(client: &ureq::Agent, url: &str, token: &Token) -> Result<AgentCheckList, String> {
    let mut resp = client
        .get(url)
        .header("X-Agent-Token", token.expose())
        .call()
        .map_err(|e| crate::send::transport_error(&e))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(4 << 20)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("server answered {status}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("unreadable check list: {e}"))
}

fn result(
    check_id: u64,
    ok: bool,
    latency_ms: Option<f64>,
    error: Option<String>,
) -> AgentCheckResult {
    AgentCheckResult {
        check_id,
        ts_ms: crate::run::now_ms(),
        ok,
        latency_ms,
        error,
    }
}

/// One run of `spec`, blocking.
pub fn probe(id: u64, spec: &CheckSpec, http: Option<&ureq::Agent>) -> AgentCheckResult {
    let timeout = spec.timeout();
    let started = Instant::now();
    let outcome = match spec.kind {
        CheckKind::Http => match http {
            Some(client) => http_probe(client, spec),
            None => Err("no HTTP client".to_string()),
        },
        CheckKind::Tcp => tcp_probe(&spec.target, timeout),
        CheckKind::Dns => dns_probe(spec),
        CheckKind::Ping => ping_probe(&spec.target, timeout),
    };
    let latency = Some(started.elapsed().as_secs_f64() * 1000.0);
    match outcome {
        Ok(Some(rtt)) => result(id, true, Some(rtt), None),
        Ok(None) => result(id, true, latency, None),
        Err(e) => result(id, false, latency, Some(e)),
    }
}

/// The HTTP client of an HTTP check: its redirect, TLS and timeout settings.
pub fn http_client(spec: &CheckSpec) -> ureq::Agent {
    let http = spec.http.clone().unwrap_or_default();
    ureq::Agent::config_builder()
        .timeout_global(Some(spec.timeout()))
        .http_status_as_error(false)
        .max_redirects(if http.follow_redirects { 10 } else { 0 })
        .user_agent(concat!("StatusMonitor-check/", env!("CARGO_PKG_VERSION")))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(http.ignore_tls_errors)
                .build(),
        )
        .build()
        .into()
}

type Outcome = Result<Option<f64>, String>;

fn http_probe(client: &ureq::Agent, spec: &CheckSpec) -> Outcome {
    let options = spec.http.clone().unwrap_or_default();
    let mut request = ureq::http::Request::builder()
        .method(options.method.as_str())
        .uri(spec.target.as_str());
    for h in &options.headers {
        if let Some(value) = &h.value {
            request = request.header(h.name.as_str(), value.as_str());
        }
    }
    let request = request
        .body(())
        .map_err(|_| "invalid request".to_string())?;
    let mut response = client.run(request).map_err(|e| http_failure(&e))?;
    let status = response.status().as_u16();
    if !(options.status_min..=options.status_max).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    if let Some(keyword) = &options.keyword {
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(KEYWORD_SCAN_BYTES)
            .read_to_end(&mut body)
            .map_err(|_| "body not readable".to_string())?;
        let found = String::from_utf8_lossy(&body).contains(keyword.as_str());
        if found == options.keyword_absent {
            return Err(if found {
                "keyword found"
            } else {
                "keyword not found"
            }
            .into());
        }
    }
    Ok(None)
}

/// A fixed phrase for a failed request (never text the target sent).
fn http_failure(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timeout",
        ureq::Error::HostNotFound => "host not found",
        ureq::Error::TooManyRedirects => "too many redirects",
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS error",
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused",
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timeout",
            _ if io
                .get_ref()
                .is_some_and(|i| i.to_string().contains("certificate")) =>
            {
                "TLS error: certificate not trusted"
            }
            _ => "connection failed",
        },
        _ => "connection failed",
    }
    .into()
}

/// `host:port` (IPv6 in brackets) as socket addresses.
fn addrs(host_port: &str) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = host_port
        .to_socket_addrs()
        .map_err(|_| "host not found".to_string())?
        .collect();
    if addrs.is_empty() {
        return Err("host not found".into());
    }
    Ok(addrs)
}

fn tcp_probe(target: &str, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let mut last = "connection failed";
    for addr in addrs(target)? {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            last = "timeout";
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(_) => return Ok(None),
            Err(e) => {
                last = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused",
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timeout",
                    std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable => "host unreachable",
                    _ => "connection failed",
                }
            }
        }
    }
    Err(last.into())
}

fn dns_probe(spec: &CheckSpec) -> Outcome {
    let answers: Vec<SocketAddr> = (spec.target.as_str(), 0)
        .to_socket_addrs()
        .map_err(|_| "name not resolved".to_string())?
        .collect();
    if answers.is_empty() {
        return Err("name not resolved".into());
    }
    if let Some(expected) = &spec.dns_expected
        && !answers.iter().any(|a| a.ip().to_string() == *expected)
    {
        return Err("expected address not among the answers".into());
    }
    Ok(None)
}

/// One ICMP echo through an unprivileged ping socket (Linux, where
/// `net.ipv4.ping_group_range` allows the agent's group); the round trip.
#[cfg(target_os = "linux")]
fn ping_probe(target: &str, timeout: Duration) -> Outcome {
    use rustix::net::{AddressFamily, SocketType, ipproto, socket};
    let host = target.trim_start_matches('[').trim_end_matches(']');
    let addr = *addrs(&format!(
        "{}:0",
        if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        }
    ))?
    .first()
    .ok_or_else(|| "host not found".to_string())?;
    let (family, protocol) = if addr.is_ipv4() {
        (AddressFamily::INET, ipproto::ICMP)
    } else {
        (AddressFamily::INET6, ipproto::ICMPV6)
    };
    let fd = socket(family, SocketType::DGRAM, Some(protocol)).map_err(|e| {
        if e == rustix::io::Errno::ACCESS || e == rustix::io::Errno::PERM {
            "ping not permitted: the agent's group is not in net.ipv4.ping_group_range".to_string()
        } else {
            "ping socket not available".to_string()
        }
    })?;
    let socket = std::net::UdpSocket::from(fd);
    let seq = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos()) as u16)
        ^ (std::process::id() as u16);
    let mut packet = [0u8; 16];
    packet[0] = if addr.is_ipv4() { 8 } else { 128 };
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..16].copy_from_slice(b"statusmo");
    if addr.is_ipv4() {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    let reply = if addr.is_ipv4() { 0 } else { 129 };
    let started = Instant::now();
    socket
        .send_to(&packet, SocketAddr::new(addr.ip(), 0))
        .map_err(|_| "host unreachable".to_string())?;
    let mut buf = [0u8; 1500];
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            return Err("timeout".into());
        }
        match socket.recv(&mut buf) {
            Ok(n) if n >= 8 && buf[0] == reply && buf[6..8] == seq.to_be_bytes() => {
                return Ok(Some(started.elapsed().as_secs_f64() * 1000.0));
            }
            Ok(_) => continue,
            Err(_) => return Err("timeout".into()),
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn ping_probe(_target: &str, _timeout: Duration) -> Outcome {
    Err("ping is run by agents on Linux only".into())
}

/// The Internet checksum (RFC 1071).
#[cfg(target_os = "linux")]
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_spliced_into_a_batch_body() {
        let r = result(7, false, Some(1.5), Some("HTTP 500".into()));
        let body = splice_results(
            br#"{"reports":[{"ts_ms":1}]}"#.to_vec(),
            std::slice::from_ref(&r),
        );
        let batch: storage::model::wire::IngestBatch = serde_json::from_slice(&body).unwrap();
        assert_eq!(batch.check_results, vec![r]);
        assert_eq!(batch.reports.len(), 1);
    }

    #[test]
    fn the_queue_is_bounded_and_keeps_the_newest() {
        let link = Link::default();
        for i in 0..(MAX_QUEUED as u64 + 5) {
            link.push(result(i, true, None, None));
        }
        let first = link.take();
        assert_eq!(first.len(), MAX_CHECK_RESULTS);
        assert_eq!(first[0].check_id, 5);
        link.put_back(first);
        assert_eq!(link.take()[0].check_id, 5);
    }

    /// A tiny HTTP server on 127.0.0.1: `/ok` (200, a keyword), `/500`,
    /// `/moved` (302 to `/ok`), `/checks` (the list `list` holds), and
    /// `/hang` (read, never answered).
    fn server(list: Arc<Mutex<String>>) -> std::net::SocketAddr {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let list = list.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut first = String::new();
                    reader.read_line(&mut first).unwrap();
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap_or(0) > 2 {
                        line.clear();
                    }
                    let path = first.split(' ').nth(1).unwrap_or("").to_string();
                    let (status, extra, body) = match path.as_str() {
                        "/ok" => ("200 OK", "", "<h1>all good</h1>".to_string()),
                        "/500" => ("500 Internal Server Error", "", "all good".into()),
                        "/moved" => ("302 Found", "location: /ok\r\n", String::new()),
                        "/checks" => ("200 OK", "", list.lock().unwrap().clone()),
                        _ => {
                            std::thread::sleep(Duration::from_secs(10));
                            return;
                        }
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        addr
    }

    fn http_spec(url: String, options: serde_json::Value) -> CheckSpec {
        serde_json::from_value(serde_json::json!({
            "name": "t", "kind": "http", "target": url, "interval_s": 20,
            "timeout_ms": 800, "http": options,
        }))
        .unwrap()
    }

    fn run_http(spec: &CheckSpec) -> AgentCheckResult {
        probe(1, spec, Some(&http_client(spec)))
    }

    #[test]
    fn http_checks_judge_status_keyword_and_redirects_like_the_servers() {
        let addr = server(Arc::default());
        let url = |p: &str| format!("http://{addr}{p}");
        let ok = run_http(&http_spec(
            url("/ok"),
            serde_json::json!({ "keyword": "all good" }),
        ));
        assert!(ok.ok && ok.error.is_none(), "{ok:?}");
        assert!(ok.latency_ms.is_some());
        let r = run_http(&http_spec(
            url("/ok"),
            serde_json::json!({ "keyword": "all good", "keyword_absent": true }),
        ));
        assert_eq!(r.error.as_deref(), Some("keyword found"));
        let r = run_http(&http_spec(
            url("/ok"),
            serde_json::json!({ "keyword": "nope" }),
        ));
        assert_eq!(r.error.as_deref(), Some("keyword not found"));
        let r = run_http(&http_spec(url("/500"), serde_json::json!({})));
        assert_eq!(r.error.as_deref(), Some("HTTP 500"), "no body text");
        let r = run_http(&http_spec(
            url("/moved"),
            serde_json::json!({ "follow_redirects": false, "status_max": 299 }),
        ));
        assert_eq!(r.error.as_deref(), Some("HTTP 302"));
        let r = run_http(&http_spec(
            url("/moved"),
            serde_json::json!({ "keyword": "all good" }),
        ));
        assert!(r.ok, "{r:?}");
        let started = Instant::now();
        let r = run_http(&http_spec(url("/hang"), serde_json::json!({})));
        assert_eq!(r.error.as_deref(), Some("timeout"));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_hanging_check_delays_no_other_and_ends_as_a_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = port.local_addr().unwrap();
        // The list server is also the hanging target. The hanging check
        // (id 1) starts first (its phase is 485 ms, the port's 1,839 ms)
        // and ends 2 s later: the port's result comes in between.
        let list = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let addr = server(list.clone());
        let checks = serde_json::json!({ "version": "v1", "checks": [
            { "id": 1, "spec": { "name": "hangs", "kind": "http", "target": format!("http://{addr}/hang"), "interval_s": 20, "timeout_ms": 2000 } },
            { "id": 3, "spec": { "name": "port", "kind": "tcp", "target": open.to_string(), "interval_s": 20, "timeout_ms": 1000 } },
        ]});
        *list.lock().unwrap() = checks.to_string();
        let link = Arc::new(Link::default());
        link.acked(r#"{"accepted":1,"checks_version":"v1"}"#);
        let stop = Arc::new(AtomicBool::new(false));
        let runner = {
            let (link, stop) = (link.clone(), stop.clone());
            let token = crate::config::parse_token("sma_test").unwrap();
            let client = crate::send::http_agent(Duration::from_secs(5), None);
            std::thread::spawn(move || {
                run_loop(
                    &client,
                    &format!("http://{addr}/checks"),
                    &token,
                    &link,
                    &stop,
                )
            })
        };
        let started = Instant::now();
        let mut got: Vec<AgentCheckResult> = Vec::new();
        while got.iter().filter(|r| r.check_id == 1).count() == 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "{got:?}");
            got.extend(link.take());
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        runner.join().unwrap();
        let port_result = got
            .iter()
            .position(|r| r.check_id == 3)
            .expect("the port check ran");
        let hang_result = got.iter().position(|r| r.check_id == 1).unwrap();
        assert!(
            port_result < hang_result,
            "the open port was not held up: {got:?}"
        );
        assert!(got[port_result].ok);
        assert_eq!(got[hang_result].error.as_deref(), Some("timeout"));
    }

    #[test]
    fn only_a_version_in_the_answer_is_taken() {
        let link = Link::default();
        link.acked(r#"{"accepted":1}"#);
        assert_eq!(link.announced(), None);
        link.acked(r#"{"accepted":1,"checks_version":"ab"}"#);
        assert_eq!(link.announced().as_deref(), Some("ab"));
    }
}
