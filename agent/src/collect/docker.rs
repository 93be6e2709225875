//! A minimal HTTP/1.1 client for the Docker Engine API on a Unix socket, and
//! the parts of the API's answers the agent reads.
//!
//! Why not a client crate: the well-kept ones (bollard, hyperlocal) bring
//! tokio and hyper into an agent that has neither and must stay under 10 MiB
//! RSS; ureq has no Unix-socket transport. The agent needs three GETs whose
//! answers are JSON: one request per connection (`Connection: close`), the
//! body framed by `Content-Length`, chunked encoding or the end of the
//! stream, every read and write bounded by the caller's deadline and every
//! body by a size cap.
//!
//! Endpoints (Docker Engine API, also served by Podman's compatibility
//! socket): `GET /containers/json?all=true` (ContainerSummary),
//! `GET /containers/{id}/stats?stream=false&one-shot=true`
//! (ContainerStatsResponse; `one-shot` answers at once with empty
//! `precpu_stats`, the agent keeps its own previous reading), and
//! `GET /containers/{id}/json` (ContainerInspectResponse: `RestartCount`).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The largest answer read: a list of 500 containers with labels and
/// mounts is a few hundred KB.
pub const MAX_BODY: usize = 8 << 20;

/// Why a request got no usable answer. One kind is logged once, not per tick.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Failure {
    /// No socket at the path.
    Missing,
    /// The socket exists but this user may not open it.
    PermissionDenied,
    /// Connecting or reading failed otherwise (engine stopped, reset).
    Io(String),
    /// The deadline passed before the answer was complete.
    Timeout,
    /// The engine answered with this status.
    Status(u16),
    /// The answer is not HTTP, too large, or not the JSON expected.
    Garbage(String),
}

impl Failure {
    /// What kind it is, for "log once per kind": the detail is left out.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Missing => "missing",
            Failure::PermissionDenied => "permission",
            Failure::Io(_) => "io",
            Failure::Timeout => "timeout",
            Failure::Status(_) => "status",
            Failure::Garbage(_) => "garbage",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Missing => f.write_str("no socket there"),
            Failure::PermissionDenied => f.write_str("permission denied"),
            Failure::Io(e) => write!(f, "{e}"),
            Failure::Timeout => f.write_str("no answer in time"),
            Failure::Status(s) => write!(f, "the engine answered HTTP {s}"),
            Failure::Garbage(e) => write!(f, "unreadable answer: {e}"),
        }
    }
}

fn io_failure(e: std::io::Error) -> Failure {
    match e.kind() {
        ErrorKind::NotFound => Failure::Missing,
        ErrorKind::PermissionDenied => Failure::PermissionDenied,
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Failure::Timeout,
        _ => Failure::Io(e.to_string()),
    }
}

/// `GET path` on its own connection, the body of a 200 answer, all before
/// `deadline`.
pub fn get(socket: &Path, path: &str, deadline: Instant) -> Result<Vec<u8>, Failure> {
    Connection::new(socket).get(path, deadline)
}

/// One connection to the engine, kept alive across the calls of a
/// collection (HTTP/1.1 keep-alive, one request at a time): a list and 30
/// stats calls are one `connect` instead of 31. It is opened on first use,
/// opened again when the engine closed it between two calls, and dropped
/// after an answer that was cut short or late (its rest could arrive later
/// and be taken for the next answer).
pub struct Connection<'a> {
    socket: &'a Path,
    stream: Option<UnixStream>,
    /// Read buffer, reused by every call.
    raw: Vec<u8>,
    /// Connections opened, for tests and the benchmark's account.
    pub opened: u32,
    /// The engine is Podman: its answers carry `Libpod-Api-Version`.
    pub libpod: bool,
}

impl<'a> Connection<'a> {
    pub fn new(socket: &'a Path) -> Self {
        Connection {
            socket,
            stream: None,
            raw: Vec::new(),
            opened: 0,
            libpod: false,
        }
    }

    /// `GET path`, the body of a 200 answer, all before `deadline`.
    pub fn get(&mut self, path: &str, deadline: Instant) -> Result<Vec<u8>, Failure> {
        let reused = self.stream.is_some();
        match self.exchange(path, deadline) {
            // The engine closed the kept connection (an idle timeout)
            // before answering: once more on a new one.
            Err(Exchange::ClosedBeforeAnswer) if reused => {
                self.stream = None;
                self.exchange(path, deadline).map_err(Exchange::failure)
            }
            other => other.map_err(Exchange::failure),
        }
    }

    fn exchange(&mut self, path: &str, deadline: Instant) -> Result<Vec<u8>, Exchange> {
        let result = self.try_exchange(path, deadline);
        if !matches!(result, Ok((_, true))) {
            self.stream = None;
        }
        result.map(|(body, _)| body)?
    }

    /// The answer's body (or its failure status) and whether the
    /// connection can carry the next request.
    #[allow(clippy::type_complexity)]
    fn try_exchange(
        &mut self,
        path: &str,
        deadline: Instant,
    ) -> Result<(Result<Vec<u8>, Exchange>, bool), Exchange> {
        let left = || {
            deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or(Exchange::Failed(Failure::Timeout))
        };
        left()?;
        let stream = match &mut self.stream {
            Some(s) => s,
            None => {
                let s = UnixStream::connect(self.socket).map_err(Exchange::io)?;
                self.opened += 1;
                self.stream.insert(s)
            }
        };
        stream
            .set_write_timeout(Some(left()?))
            .map_err(Exchange::io)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: statusmonitor-agent\r\n\
             Accept: application/json\r\n\r\n"
        );
        if let Err(e) = stream.write_all(request.as_bytes()) {
            return Err(match e.kind() {
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => Exchange::ClosedBeforeAnswer,
                _ => Exchange::io(e),
            });
        }
        self.raw.clear();
        let mut buf = [0u8; 16 << 10];
        let end = loop {
            stream
                .set_read_timeout(Some(left()?))
                .map_err(Exchange::io)?;
            let n = match stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset && self.raw.is_empty() => {
                    return Err(Exchange::ClosedBeforeAnswer);
                }
                Err(e) => return Err(Exchange::io(e)),
            };
            if n == 0 {
                if self.raw.is_empty() {
                    return Err(Exchange::ClosedBeforeAnswer);
                }
                break End::Closed;
            }
            self.raw.extend_from_slice(&buf[..n]);
            if self.raw.len() > MAX_BODY + (64 << 10) {
                return Err(Exchange::Failed(Failure::Garbage(format!(
                    "more than {MAX_BODY} bytes"
                ))));
            }
            // A complete answer ends the read; the connection stays.
            if let Some(end) = complete(&self.raw) {
                break end;
            }
        };
        let keep = matches!(end, End::Complete { keep_alive: true });
        if let Some(head_end) = find(&self.raw, b"\r\n\r\n") {
            self.libpod = header(&self.raw[..head_end], "libpod-api-version").is_some();
        }
        Ok((parse_response(&self.raw).map_err(Exchange::Failed), keep))
    }
}

/// How one exchange on a connection went wrong.
enum Exchange {
    /// The connection was closed before any byte of an answer: if it was
    /// a kept one, the engine closed it while idle.
    ClosedBeforeAnswer,
    Failed(Failure),
}

impl Exchange {
    fn io(e: std::io::Error) -> Self {
        Exchange::Failed(io_failure(e))
    }

    fn failure(self) -> Failure {
        match self {
            Exchange::ClosedBeforeAnswer => Failure::Io("the engine closed the connection".into()),
            Exchange::Failed(f) => f,
        }
    }
}

/// Where the read of an answer stopped.
enum End {
    /// The whole answer by its framing; `keep_alive` unless it said
    /// `Connection: close` (or is HTTP/1.0).
    Complete { keep_alive: bool },
    /// The engine closed the connection.
    Closed,
}

/// Whether `raw` holds a whole answer (head and body by its framing), and
/// then whether its connection can carry another request.
fn complete(raw: &[u8]) -> Option<End> {
    let head_end = find(raw, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let body = &raw[head_end + 4..];
    let whole = match framing(&head) {
        Framing::Length(n) => body.len() >= n,
        Framing::Chunked => dechunk(body).is_ok(),
        Framing::Close => false,
    };
    whole.then(|| End::Complete {
        keep_alive: keep_alive(&head),
    })
}

/// The value of header `name` (lower case) in an answer's `head`.
fn header<'h>(head: &'h [u8], name: &str) -> Option<&'h str> {
    std::str::from_utf8(head)
        .ok()?
        .split("\r\n")
        .skip(1)
        .find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

/// An HTTP/1.1 answer without `Connection: close`.
fn keep_alive(head: &str) -> bool {
    head.starts_with("HTTP/1.1")
        && !head.split("\r\n").skip(1).any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case("connection")
                    && value.trim().eq_ignore_ascii_case("close")
            })
        })
}

enum Framing {
    Length(usize),
    Chunked,
    Close,
}

fn framing(head: &str) -> Framing {
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            return Framing::Chunked;
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    length.map_or(Framing::Close, Framing::Length)
}

/// The body of a complete answer read to its end, if its status is 200.
pub fn parse_response(raw: &[u8]) -> Result<Vec<u8>, Failure> {
    let head_end = find(raw, b"\r\n\r\n").ok_or_else(|| Failure::Garbage("no HTTP head".into()))?;
    let head = std::str::from_utf8(&raw[..head_end])
        .map_err(|_| Failure::Garbage("HTTP head is not text".into()))?;
    let status_line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(Failure::Garbage("not an HTTP/1 answer".into()));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::Garbage("no status code".into()))?;
    let body = &raw[head_end + 4..];
    let body = match framing(head) {
        Framing::Length(n) => body
            .get(..n)
            .ok_or_else(|| Failure::Garbage("body shorter than Content-Length".into()))?
            .to_vec(),
        Framing::Chunked => dechunk(body)?,
        Framing::Close => body.to_vec(),
    };
    if status != 200 {
        return Err(Failure::Status(status));
    }
    Ok(body)
}

/// Decodes a chunked body; an error when it is cut short or malformed.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, Failure> {
    let bad = |what: &str| Failure::Garbage(format!("chunked body: {what}"));
    let mut out = Vec::with_capacity(body.len());
    loop {
        let line_end = find(body, b"\r\n").ok_or_else(|| bad("cut short"))?;
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| bad("size"))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("size"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if size > MAX_BODY || out.len() + size > MAX_BODY {
            return Err(bad("too large"));
        }
        let chunk = body.get(..size).ok_or_else(|| bad("cut short"))?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or_else(|| bad("cut short"))?;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a JSON answer into `T`.
pub fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| Failure::Garbage(e.to_string()))
}

/// One entry of `GET /containers/json` (ContainerSummary), the fields read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    pub id: String,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub state: String,
    /// "Up 3 hours (healthy)", "Exited (0) 2 minutes ago".
    #[serde(default)]
    pub status: String,
    /// API 1.52 and later.
    #[serde(default)]
    pub health: Option<SummaryHealth>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHealth {
    #[serde(default)]
    pub status: String,
}

impl Summary {
    /// The name without Docker's leading `/`, or the short id without one.
    pub fn name(&self) -> &str {
        self.names
            .first()
            .map(|n| n.trim_start_matches('/'))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.id.get(..12).unwrap_or(&self.id))
    }

    /// `healthy`, `unhealthy` or `starting`; `None` without a health check.
    /// From the `Health` object (API ≥ 1.52), else from the status text
    /// every version writes: "(healthy)", "(unhealthy)", "(health: starting)".
    pub fn health(&self) -> Option<&'static str> {
        let known = |s: &str| match s {
            "healthy" => Some("healthy"),
            "unhealthy" => Some("unhealthy"),
            "starting" => Some("starting"),
            _ => None,
        };
        if let Some(h) = &self.health {
            return known(&h.status);
        }
        let s = self.status.as_str();
        if s.contains("(unhealthy)") {
            Some("unhealthy")
        } else if s.contains("(healthy)") {
            Some("healthy")
        } else if s.contains("(health: starting)") {
            Some("starting")
        } else {
            None
        }
    }

    /// Whether the status says it started within the last minute ("Up 3
    /// seconds", "Up Less than a second"): it may have been restarted.
    pub fn started_recently(&self) -> bool {
        self.status.starts_with("Up ")
            && (self.status.contains("second") || self.status.contains("Second"))
    }

    /// The seconds since it started when the status says them ("Up 12
    /// seconds", "Up 1 second", "Up Less than a second" = 0).
    pub fn up_seconds(&self) -> Option<u64> {
        let rest = self.status.strip_prefix("Up ")?;
        if rest.starts_with("Less than a second") {
            return Some(0);
        }
        let (n, unit) = rest.split_once(' ')?;
        unit.starts_with("second").then(|| n.parse().ok()).flatten()
    }
}

/// The part of `GET /containers/{id}/json` read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inspect {
    #[serde(default)]
    pub restart_count: Option<u32>,
}

/// The part of ContainerStatsResponse read.
#[derive(Debug, Default, Deserialize)]
pub struct Stats {
    #[serde(default)]
    pub cpu_stats: Option<CpuStats>,
    #[serde(default)]
    pub memory_stats: Option<MemoryStats>,
    #[serde(default)]
    pub networks: Option<HashMap<String, NetStats>>,
    #[serde(default)]
    pub blkio_stats: Option<BlkioStats>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CpuStats {
    #[serde(default)]
    pub cpu_usage: Option<CpuUsage>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CpuUsage {
    /// Nanoseconds of CPU time since the container started.
    #[serde(default)]
    pub total_usage: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MemoryStats {
    #[serde(default)]
    pub usage: Option<u64>,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub stats: Option<MemoryDetail>,
}

/// The two entries of `memory_stats.stats` read (of 30 to 40): the rest
/// are skipped by the parser, not collected into a map.
#[derive(Debug, Default, Deserialize)]
pub struct MemoryDetail {
    /// cgroup v2.
    #[serde(default)]
    pub inactive_file: Option<u64>,
    /// cgroup v1.
    #[serde(default)]
    pub total_inactive_file: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NetStats {
    #[serde(default)]
    pub rx_bytes: u64,
    #[serde(default)]
    pub tx_bytes: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct BlkioStats {
    #[serde(default)]
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct BlkioEntry {
    #[serde(default)]
    pub op: String,
    #[serde(default)]
    pub value: u64,
}

/// What the agent takes from one container's stats, whichever endpoint
/// gave them: memory as is, counters that become rates.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub mem_used: Option<u64>,
    pub mem_limit: Option<u64>,
    /// Nanoseconds of CPU time since the container started.
    pub cpu_ns: Option<u64>,
    /// Bytes received and sent.
    pub net: Option<[u64; 2]>,
    /// Bytes read and written on block devices.
    pub block: Option<[u64; 2]>,
}

/// Podman's own `GET /v4.0.0/libpod/containers/stats?stream=false`: the
/// stats of every running container in one answer (the Docker API has no
/// such call: one per container). Fields as in Podman's
/// `ContainerStats` (libpod `define/containerstate.go`); the rest skipped.
#[derive(Debug, Deserialize)]
pub struct PodmanStats {
    /// An error of the whole call (`null` when it worked).
    #[serde(rename = "Error", default)]
    pub error: Option<serde::de::IgnoredAny>,
    #[serde(rename = "Stats", default)]
    pub stats: Option<Vec<PodmanStat>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PodmanStat {
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    #[serde(rename = "CPUNano", default)]
    pub cpu_nano: Option<u64>,
    #[serde(default)]
    pub mem_usage: Option<u64>,
    #[serde(default)]
    pub mem_limit: Option<u64>,
    #[serde(default)]
    pub net_input: Option<u64>,
    #[serde(default)]
    pub net_output: Option<u64>,
    #[serde(default)]
    pub block_input: Option<u64>,
    #[serde(default)]
    pub block_output: Option<u64>,
}

/// The path of Podman's all-containers stats call.
pub const PODMAN_STATS: &str = "/v4.0.0/libpod/containers/stats?stream=false";

impl PodmanStat {
    pub fn reading(&self) -> Reading {
        let pair = |a: Option<u64>, b: Option<u64>| Some([a?, b?]);
        Reading {
            mem_used: self.mem_usage,
            mem_limit: self.mem_limit.filter(|l| *l > 0),
            cpu_ns: self.cpu_nano,
            net: pair(self.net_input, self.net_output),
            block: pair(self.block_input, self.block_output),
        }
    }
}

impl Stats {
    pub fn reading(&self) -> Reading {
        Reading {
            mem_used: self.mem_used(),
            mem_limit: self.mem_limit(),
            cpu_ns: self.cpu_ns(),
            net: self.net(),
            block: self.block(),
        }
    }

    /// Memory in use as `docker stats` shows it: usage less the inactive
    /// page cache (`inactive_file` on cgroup v2, `total_inactive_file` on
    /// v1).
    pub fn mem_used(&self) -> Option<u64> {
        let m = self.memory_stats.as_ref()?;
        let usage = m.usage?;
        let cache = m
            .stats
            .as_ref()
            .and_then(|s| s.inactive_file.or(s.total_inactive_file))
            .filter(|c| *c < usage)
            .unwrap_or(0);
        Some(usage - cache)
    }

    pub fn mem_limit(&self) -> Option<u64> {
        self.memory_stats.as_ref()?.limit.filter(|l| *l > 0)
    }

    pub fn cpu_ns(&self) -> Option<u64> {
        self.cpu_stats.as_ref()?.cpu_usage.as_ref()?.total_usage
    }

    /// Bytes received and sent over every interface; `None` without
    /// networking.
    pub fn net(&self) -> Option<[u64; 2]> {
        let nets = self.networks.as_ref()?;
        Some(nets.values().fold([0u64, 0], |[rx, tx], n| {
            [rx.saturating_add(n.rx_bytes), tx.saturating_add(n.tx_bytes)]
        }))
    }

    /// Bytes read and written on block devices (`op` is `read`/`write` on
    /// cgroup v2, `Read`/`Write` on v1).
    pub fn block(&self) -> Option<[u64; 2]> {
        let entries = self
            .blkio_stats
            .as_ref()?
            .io_service_bytes_recursive
            .as_ref()?;
        let mut out = [0u64; 2];
        for e in entries {
            if e.op.eq_ignore_ascii_case("read") {
                out[0] = out[0].saturating_add(e.value);
            } else if e.op.eq_ignore_ascii_case("write") {
                out[1] = out[1].saturating_add(e.value);
            }
        }
        Some(out)
    }
}

/// How long a whole collection may take: 40 % of the interval, at most 2 s.
pub fn budget(interval: Duration) -> Duration {
    (interval * 2 / 5).min(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers_framed_by_length_chunks_or_close() {
        let by_length = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]";
        assert_eq!(parse_response(by_length).unwrap(), b"[]");
        assert!(matches!(
            complete(by_length),
            Some(End::Complete { keep_alive: true })
        ));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2;x=y\r\n2]\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), b"[1,2]");
        assert!(complete(chunked).is_some());
        assert!(complete(&chunked[..chunked.len() - 7]).is_none());
        let closing = b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 2\r\n\r\n{}";
        assert!(matches!(
            complete(closing),
            Some(End::Complete { keep_alive: false })
        ));
        let close = b"HTTP/1.0 200 OK\r\n\r\n{}";
        assert_eq!(parse_response(close).unwrap(), b"{}");
        assert!(complete(close).is_none());
    }

    #[test]
    fn bad_answers_are_failures_not_panics() {
        let cases: [&[u8]; 7] = [
            b"",
            b"garbage",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffff\r\nx",
        ];
        for raw in cases {
            assert!(
                matches!(parse_response(raw), Err(Failure::Garbage(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let refused = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(refused), Err(Failure::Status(500)));
        assert!(json::<Vec<Summary>>(b"{\"not\": \"a list\"}").is_err());
    }

    #[test]
    fn health_comes_from_the_object_or_the_status_text() {
        let s = |status: &str| Summary {
            id: "0123456789abcdef".into(),
            names: vec![],
            image: String::new(),
            state: "running".into(),
            status: status.into(),
            health: None,
        };
        assert_eq!(s("Up 2 hours (healthy)").health(), Some("healthy"));
        assert_eq!(s("Up 2 hours (unhealthy)").health(), Some("unhealthy"));
        assert_eq!(
            s("Up 1 second (health: starting)").health(),
            Some("starting")
        );
        assert_eq!(s("Up 2 hours").health(), None);
        assert_eq!(s("Up 2 hours").name(), "0123456789ab");
        assert!(s("Up 3 seconds").started_recently());
        assert!(s("Up Less than a second").started_recently());
        assert!(!s("Up 2 minutes").started_recently());
        assert_eq!(s("Up 12 seconds (healthy)").up_seconds(), Some(12));
        assert_eq!(s("Up 1 second").up_seconds(), Some(1));
        assert_eq!(s("Up Less than a second").up_seconds(), Some(0));
        assert_eq!(s("Up About a minute").up_seconds(), None);
        assert_eq!(s("Exited (0) 3 seconds ago").up_seconds(), None);
        let mut with_object = s("Up 2 hours (healthy)");
        with_object.health = Some(SummaryHealth {
            status: "none".into(),
        });
        assert_eq!(with_object.health(), None);
    }

    /// Podman 4.3.1's all-containers stats answer, as captured from
    /// `podman system service` (one entry shown).
    #[test]
    fn podman_stats_give_the_same_reading() {
        let answer: PodmanStats = json(
            br#"{"Error":null,"Stats":[{"AvgCPU":0.03035145580763065,
                "ContainerID":"756c970dcfd2fb29426cddf070dde8c372c99622248109df7cc9a0ee17a391ec",
                "Name":"sm-bench-30","PerCPU":[9656868,15386749],"CPU":0.03035145580763065,
                "CPUNano":25043617,"CPUSystemNano":12000000,"SystemNano":1796596519944722088,
                "MemUsage":249856,"MemLimit":25276182528,"MemPerc":0.0009885037019463638,
                "NetInput":796,"NetOutput":7712,"BlockInput":0,"BlockOutput":4096,"PIDs":1,
                "UpTime":25043617,"Duration":25043617}]}"#,
        )
        .unwrap();
        assert!(answer.error.is_none());
        let stats = answer.stats.unwrap();
        assert_eq!(stats[0].container_id.len(), 64);
        assert_eq!(
            stats[0].reading(),
            Reading {
                mem_used: Some(249_856),
                mem_limit: Some(25_276_182_528),
                cpu_ns: Some(25_043_617),
                net: Some([796, 7712]),
                block: Some([0, 4096]),
            }
        );
        let failed: PodmanStats =
            json(br#"{"Error":{"Err":"no such container"},"Stats":null}"#).unwrap();
        assert!(failed.error.is_some() && failed.stats.is_none());
    }

    /// The documented cgroup v1 and v2 shapes give `docker stats`'s figures.
    #[test]
    fn stats_give_docker_stats_figures() {
        let v2: Stats = json(
            br#"{"cpu_stats":{"cpu_usage":{"total_usage":100000000},"online_cpus":2},
                 "memory_stats":{"usage":6537216,"limit":67108864,
                                 "stats":{"inactive_file":1000000,"anon":4000000}},
                 "networks":{"eth0":{"rx_bytes":5338,"tx_bytes":648},
                             "eth1":{"rx_bytes":2,"tx_bytes":2}},
                 "blkio_stats":{"io_service_bytes_recursive":[
                     {"major":8,"minor":0,"op":"read","value":4096},
                     {"major":8,"minor":0,"op":"write","value":8192},
                     {"major":8,"minor":16,"op":"read","value":4096}]}}"#,
        )
        .unwrap();
        assert_eq!(v2.cpu_ns(), Some(100_000_000));
        assert_eq!(v2.mem_used(), Some(5_537_216));
        assert_eq!(v2.mem_limit(), Some(67_108_864));
        assert_eq!(v2.net(), Some([5340, 650]));
        assert_eq!(v2.block(), Some([8192, 8192]));
        let v1: Stats = json(
            br#"{"memory_stats":{"usage":500,"limit":1000,"stats":{"total_inactive_file":100}},
                 "blkio_stats":{"io_service_bytes_recursive":[{"op":"Read","value":1},
                                {"op":"Write","value":2},{"op":"Total","value":3}]}}"#,
        )
        .unwrap();
        assert_eq!(v1.mem_used(), Some(400));
        assert_eq!(v1.block(), Some([1, 2]));
        assert_eq!(v1.net(), None, "no networking: not collected");
        // A stopped container's stats: everything empty or null.
        let stopped: Stats = json(
            br#"{"cpu_stats":{"cpu_usage":{"total_usage":0}},"memory_stats":{},
                 "blkio_stats":{"io_service_bytes_recursive":null}}"#,
        )
        .unwrap();
        assert_eq!(stopped.mem_used(), None);
        assert_eq!(stopped.block(), None);
    }
}
