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

/// `GET path` on the socket, the body of a 200 answer, all before `deadline`.
pub fn get(socket: &Path, path: &str, deadline: Instant) -> Result<Vec<u8>, Failure> {
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Failure::Timeout)
    };
    left()?;
    let mut stream = UnixStream::connect(socket).map_err(io_failure)?;
    stream
        .set_write_timeout(Some(left()?))
        .map_err(io_failure)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: statusmonitor-agent\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io_failure)?;
    let mut raw = Vec::with_capacity(16 << 10);
    let mut buf = [0u8; 16 << 10];
    loop {
        stream.set_read_timeout(Some(left()?)).map_err(io_failure)?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_failure(e)),
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_BODY + (64 << 10) {
            return Err(Failure::Garbage(format!("more than {MAX_BODY} bytes")));
        }
        // A complete answer ends the read early even if the engine keeps
        // the connection open despite `Connection: close`.
        if complete(&raw) {
            break;
        }
    }
    parse_response(&raw)
}

/// Whether `raw` holds a whole answer (head and body by its framing).
fn complete(raw: &[u8]) -> bool {
    let Some(head_end) = find(raw, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let body = &raw[head_end + 4..];
    match framing(&head) {
        Framing::Length(n) => body.len() >= n,
        Framing::Chunked => dechunk(body).is_ok(),
        Framing::Close => false,
    }
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
    pub stats: Option<HashMap<String, u64>>,
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

impl Stats {
    /// Memory in use as `docker stats` shows it: usage less the inactive
    /// page cache (`inactive_file` on cgroup v2, `total_inactive_file` on
    /// v1).
    pub fn mem_used(&self) -> Option<u64> {
        let m = self.memory_stats.as_ref()?;
        let usage = m.usage?;
        let cache = m
            .stats
            .as_ref()
            .and_then(|s| {
                s.get("inactive_file")
                    .or_else(|| s.get("total_inactive_file"))
            })
            .copied()
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
        assert!(complete(by_length));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2;x=y\r\n2]\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), b"[1,2]");
        assert!(complete(chunked));
        assert!(!complete(&chunked[..chunked.len() - 7]));
        let close = b"HTTP/1.0 200 OK\r\n\r\n{}";
        assert_eq!(parse_response(close).unwrap(), b"{}");
        assert!(!complete(close));
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
