//! One run of a check, blocking (the scheduler runs it on the blocking pool
//! under its own timeout). Every connection goes through the outbound guard:
//! HTTP through the guarded agent (each redirect hop too), TCP, ping and the
//! certificate probe through [`OutboundGuard::resolve`]. The outcome is a
//! [`Probe`]: up or a fixed phrase, never text the target sent.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::model::{CheckKind, CheckSpec};

use super::validate::{Host, parse_host, parse_host_port};
use crate::outbound::{Caller, OutboundGuard, ResolveError, describe};

/// How much of a body is searched for the keyword.
pub const KEYWORD_SCAN_BYTES: u64 = 1 << 20;

/// What one run found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub ok: bool,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
}

impl Probe {
    fn up(started: Instant) -> Probe {
        Probe {
            ok: true,
            latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
            error: None,
        }
    }

    fn down(started: Option<Instant>, error: impl Into<String>) -> Probe {
        Probe {
            ok: false,
            latency_ms: started.map(|s| s.elapsed().as_secs_f64() * 1000.0),
            error: Some(error.into()),
        }
    }
}

/// The HTTP agent of an HTTP check: its redirect, TLS and timeout settings,
/// resolving through the guard for `caller`. Built once per check version
/// (it keeps the connection pool between runs).
pub fn http_agent(guard: &Arc<OutboundGuard>, spec: &CheckSpec, caller: Caller) -> ureq::Agent {
    let http = spec.http.clone().unwrap_or_default();
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(u64::from(spec.timeout_ms))))
        .http_status_as_error(false)
        .max_redirects(if http.follow_redirects { 10 } else { 0 })
        .user_agent(concat!("StatusMonitor-check/", env!("CARGO_PKG_VERSION")))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(http.ignore_tls_errors)
                .build(),
        );
    guard.http_agent(caller, config)
}

/// Runs `spec` once. `agent` is [`http_agent`]'s for HTTP checks.
pub fn run(
    guard: &OutboundGuard,
    spec: &CheckSpec,
    caller: Caller,
    agent: Option<&ureq::Agent>,
) -> Probe {
    let timeout = Duration::from_millis(u64::from(spec.timeout_ms));
    match spec.kind {
        CheckKind::Http => match agent {
            Some(agent) => http(agent, spec),
            None => Probe::down(None, "no HTTP client"),
        },
        CheckKind::Tcp => match parse_host_port(&spec.target) {
            Some((host, port)) => tcp(guard, &host, port, caller, timeout),
            None => Probe::down(None, "invalid target"),
        },
        CheckKind::Dns => dns(spec),
        CheckKind::Ping => match parse_host(&spec.target) {
            Some(host) => super::ping::ping(guard, &host, caller, timeout),
            None => Probe::down(None, "invalid target"),
        },
    }
}

fn http(agent: &ureq::Agent, spec: &CheckSpec) -> Probe {
    let options = spec.http.clone().unwrap_or_default();
    let mut request = ureq::http::Request::builder()
        .method(options.method.as_str())
        .uri(spec.target.as_str());
    for h in &options.headers {
        if let Some(value) = &h.value {
            request = request.header(h.name.as_str(), value.as_str());
        }
    }
    let Ok(request) = request.body(()) else {
        return Probe::down(None, "invalid request");
    };
    let started = Instant::now();
    let mut response = match agent.run(request) {
        Ok(r) => r,
        Err(e) => return Probe::down(Some(started), http_failure(&e)),
    };
    let status = response.status().as_u16();
    if !(options.status_min..=options.status_max).contains(&status) {
        return Probe::down(Some(started), format!("HTTP {status}"));
    }
    if let Some(keyword) = &options.keyword {
        let mut body = Vec::new();
        let read = response
            .body_mut()
            .as_reader()
            .take(KEYWORD_SCAN_BYTES)
            .read_to_end(&mut body);
        if read.is_err() {
            return Probe::down(Some(started), "body not readable");
        }
        let found = String::from_utf8_lossy(&body).contains(keyword.as_str());
        if found == options.keyword_absent {
            return Probe::down(
                Some(started),
                if found {
                    "keyword found"
                } else {
                    "keyword not found"
                },
            );
        }
    }
    Probe::up(started)
}

/// [`describe`]'s phrase, except that a certificate the client refused
/// (which ureq reports as an I/O error carrying rustls' error) says so.
fn http_failure(e: &ureq::Error) -> String {
    if let ureq::Error::Io(io) = e
        && let Some(inner) = io.get_ref()
        && let Some(tls) = inner.downcast_ref::<rustls::Error>()
    {
        return match tls {
            rustls::Error::InvalidCertificate(_) => "TLS error: certificate not trusted".into(),
            _ => "TLS error".into(),
        };
    }
    describe(e).phrase
}

/// The addresses `host` may be reached at by `caller`, or why not.
pub fn resolve(
    guard: &OutboundGuard,
    host: &Host,
    port: u16,
    caller: Caller,
) -> Result<Vec<SocketAddr>, String> {
    guard
        .resolve(&host.as_text(), port, caller)
        .map_err(|e| match e {
            ResolveError::NotFound => "host not found".to_string(),
            ResolveError::Refused(r) => r.to_string(),
        })
}

fn tcp(guard: &OutboundGuard, host: &Host, port: u16, caller: Caller, timeout: Duration) -> Probe {
    let addrs = match resolve(guard, host, port, caller) {
        Ok(a) => a,
        Err(e) => return Probe::down(None, e),
    };
    let started = Instant::now();
    let mut last = "connection failed";
    for addr in addrs {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            last = "timeout";
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(_) => return Probe::up(started),
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
    Probe::down(Some(started), last)
}

fn dns(spec: &CheckSpec) -> Probe {
    use std::net::ToSocketAddrs;
    let started = Instant::now();
    let addrs: Vec<SocketAddr> = match (spec.target.as_str(), 0).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return Probe::down(Some(started), "name not resolved"),
    };
    if addrs.is_empty() {
        return Probe::down(Some(started), "name not resolved");
    }
    if let Some(expected) = &spec.dns_expected
        && !addrs.iter().any(|a| a.ip().to_string() == *expected)
    {
        return Probe::down(Some(started), "expected address not among the answers");
    }
    Probe::up(started)
}
