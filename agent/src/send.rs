//! Sending: POST batches to `{server}/api/ingest` and drain the spool.
//!
//! One `ureq` agent (rustls, keep-alive pool, timeouts) posts gzip-compressed
//! JSON with `X-Agent-Token`. What the server answers decides what happens to
//! the batch:
//!
//! | answer | batch | agent |
//! | --- | --- | --- |
//! | 2xx | delivered, removed from the spool | carries on |
//! | 401, 403 | kept | stops: the token is wrong, expired or revoked |
//! | 429, 5xx, no connection | kept | retries with backoff (429: `Retry-After`) |
//! | other 4xx | dropped after logging the server's error | carries on |
//!
//! A refused batch of several reports is re-sent one by one, so only the
//! report the server objects to is dropped.
//!
//! Retries use the shared [`Backoff`] with full jitter: the first wait after
//! a failure is drawn from `[0, interval]`, later ones from up to
//! [`AGENT_RETRY_MAX_INTERVALS`] intervals, never more while reports wait in
//! the spool. So agents whose server restarts come back spread over an
//! interval rather than in lockstep, and each is back within two intervals
//! of the server (which waits that long before it counts them offline).

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use storage::model::ErrorBody;
use storage::model::retry::{AGENT_RETRY_MAX_INTERVALS, Backoff, worth_retrying};
use storage::model::wire::HostFacts;
use ureq::tls::{RootCerts, TlsConfig};

use crate::config::{CaCert, Token};
use crate::error::AgentError;
use crate::spool::SharedSpool;

/// Most reports in one request (replay of the spool).
pub const MAX_BATCH: usize = 500;
/// Most uncompressed report bytes in one request: half the server's default
/// body limit (1 MiB decoded), so big machines' backlogs are not refused (413).
pub const MAX_BATCH_BYTES: usize = 512 * 1024;

/// What the server made of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// 401 or 403.
    TokenRejected {
        status: u16,
    },
    /// Another 4xx: the batch is wrong and retrying will not help.
    Refused {
        status: u16,
        error: String,
    },
    /// 429, 5xx or a transport error: try again later.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

/// The HTTP side: one keep-alive client for one server and token.
pub struct Sender {
    agent: ureq::Agent,
    url: String,
    token: Token,
}

impl Sender {
    pub fn new(server: &str, token: Token, timeout: Duration, ca_cert: Option<&CaCert>) -> Self {
        Self::with_agent(http_agent(timeout, ca_cert), server, token)
    }

    /// Shares one client (connection pool) among several tokens (`simulate`).
    pub fn with_agent(agent: ureq::Agent, server: &str, token: Token) -> Self {
        Self {
            agent,
            url: format!("{server}/api/ingest"),
            token,
        }
    }

    /// POSTs one JSON body (compressed here).
    pub fn post(&self, json: &[u8]) -> Outcome {
        self.post_answered(json).0
    }

    /// [`Sender::post`] and, when accepted, the server's answer.
    pub fn post_answered(&self, json: &[u8]) -> (Outcome, String) {
        let body = match gzip(json) {
            Ok(b) => b,
            Err(e) => {
                let retry = Outcome::Retry {
                    reason: format!("compressing the batch: {e}"),
                    after: None,
                };
                return (retry, String::new());
            }
        };
        let result = self
            .agent
            .post(&self.url)
            .header("X-Agent-Token", self.token.expose())
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .send(&body[..]);
        match result {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                // Read the body so the connection can be reused.
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                (classify(status, &text, retry_after), text)
            }
            Err(e) => (
                Outcome::Retry {
                    reason: transport_error(&e),
                    after: None,
                },
                String::new(),
            ),
        }
    }
}

/// A failed request as people read it; a server certificate the agent does
/// not trust gets the way out.
pub fn transport_error(e: &ureq::Error) -> String {
    let text = e.to_string();
    if text.contains("invalid peer certificate") {
        format!(
            "{text} (for a server whose certificate a private CA signed, or a \
             self-signed one, pass that CA or certificate with --ca-cert FILE)"
        )
    } else {
        text
    }
}

/// The shared HTTP client configuration: rustls (trusting `ca_cert` when
/// given, the public web roots otherwise), timeouts, keep-alive, and
/// statuses returned as responses rather than errors.
pub fn http_agent(timeout: Duration, ca_cert: Option<&CaCert>) -> ureq::Agent {
    let mut tls = TlsConfig::builder();
    if let Some(ca) = ca_cert {
        tls = tls.root_certs(RootCerts::new_with_certs(&ca.certs));
    }
    ureq::Agent::config_builder()
        .tls_config(tls.build())
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
        .http_status_as_error(false)
        .user_agent(concat!("statusmonitor-agent/", env!("CARGO_PKG_VERSION")))
        .max_idle_age(Duration::from_secs(120))
        .build()
        .into()
}

/// Maps a status and body to what the agent does next.
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Accepted,
        401 | 403 => Outcome::TokenRejected { status },
        s if worth_retrying(s) => Outcome::Retry {
            reason: format!("server answered {status}"),
            after: retry_after.filter(|_| status == 429),
        },
        _ => Outcome::Refused {
            status,
            error: server_error(body),
        },
    }
}

/// The server's `{"error","code"}` body, or the start of whatever it sent.
fn server_error(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { error, code }) => format!("{error} ({code})"),
        Err(_) => body.chars().take(200).collect(),
    }
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), Compression::fast());
    enc.write_all(data)?;
    enc.finish()
}

/// An `IngestBatch` body spliced from reports already serialised in the spool.
pub fn batch_body(host: Option<&HostFacts>, reports: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::with_capacity(reports.iter().map(|r| r.len() + 1).sum::<usize>() + 512);
    body.push(b'{');
    if let Some(h) = host
        && let Ok(json) = serde_json::to_vec(h)
    {
        body.extend_from_slice(b"\"host\":");
        body.extend_from_slice(&json);
        body.push(b',');
    }
    body.extend_from_slice(b"\"reports\":[");
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(r);
    }
    body.extend_from_slice(b"]}");
    body
}

/// Host facts waiting to be sent: set on start and when they change, cleared
/// once a batch carrying them is accepted.
#[derive(Debug, Default)]
pub struct HostSlot {
    state: Mutex<(Option<HostFacts>, Option<HostFacts>)>, // (pending, last sent)
}

impl HostSlot {
    /// Offers the current facts; they are queued if they differ from the last sent.
    pub fn offer(&self, facts: HostFacts) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.1.as_ref() != Some(&facts) && s.0.as_ref() != Some(&facts) {
            if s.1.is_some() {
                tracing::info!(hostname = %facts.hostname, "host facts changed");
            }
            s.0 = Some(facts);
        }
    }

    fn pending(&self) -> Option<HostFacts> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    fn delivered(&self, facts: HostFacts) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0.as_ref() == Some(&facts) {
            s.0 = None;
        }
        s.1 = Some(facts);
    }
}

/// The agent's retry policy at collection interval `interval`: the first
/// wait within one interval, none longer than [`AGENT_RETRY_MAX_INTERVALS`].
pub fn retry_policy(interval: Duration) -> Backoff {
    Backoff::new(interval, interval * AGENT_RETRY_MAX_INTERVALS)
}

/// Drains the spool into the server until `stop` is set or the token is
/// refused. Runs on its own thread: collection never waits for the network.
pub fn drain(
    spool: &SharedSpool,
    sender: &Sender,
    host: &HostSlot,
    checks: Option<&crate::checks::Link>,
    stop: &AtomicBool,
    interval: Duration,
) -> Result<(), AgentError> {
    let mut backoff = retry_policy(interval);
    let mut probing = 0usize; // reports left to send one by one after a refused batch
    let mut away_since: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if !spool.wait_nonempty(Duration::from_secs(2)) {
            continue;
        }
        let limit = if probing > 0 { 1 } else { MAX_BATCH };
        let batch = match spool.lock().peek_bounded(limit, MAX_BATCH_BYTES) {
            Ok(b) => b,
            Err(e) => {
                let dropped = spool.lock().drop_oldest_segment();
                tracing::error!(error = %e, dropped, "unreadable spool segment: dropped");
                continue;
            }
        };
        let n = batch.records.len();
        if n == 0 {
            continue;
        }
        let facts = host.pending();
        let body = batch_body(facts.as_ref(), &batch.records);
        let results = checks.map(|c| c.take()).unwrap_or_default();
        let body = crate::checks::splice_results(body, &results);
        let (outcome, answer) = sender.post_answered(&body);
        if let Some(link) = checks {
            match &outcome {
                Outcome::Accepted => link.acked(&answer),
                // A server that refuses the results would refuse every
                // batch carrying them: they go, the reports are sent again.
                Outcome::Refused { status, error } if !results.is_empty() => {
                    tracing::warn!(status, %error, results = results.len(), "server refused check results: dropped");
                    continue;
                }
                Outcome::Refused { .. } => {}
                _ => link.put_back(results),
            }
        }
        match outcome {
            Outcome::Accepted => {
                spool.lock().ack(batch.end)?;
                if let Some(f) = facts {
                    host.delivered(f);
                }
                probing = probing.saturating_sub(1);
                backoff.reset();
                if let Some(since) = away_since.take() {
                    tracing::info!(
                        away_s = since.elapsed().as_secs(),
                        "server is back: replaying spooled reports"
                    );
                }
                let left = spool.lock().len();
                tracing::debug!(sent = n, spooled = left, "batch accepted");
            }
            Outcome::TokenRejected { status } => {
                return Err(AgentError::TokenRejected { status });
            }
            Outcome::Refused { status, error } if n > 1 => {
                tracing::warn!(status, %error, reports = n, "server refused a batch: re-sending one by one");
                probing = n;
            }
            Outcome::Refused { status, error } => {
                tracing::error!(status, %error, "server refused a report: dropped");
                spool.lock().ack(batch.end)?;
                probing = probing.saturating_sub(1);
            }
            Outcome::Retry { reason, after } => {
                let spooled = spool.lock().len();
                if away_since.is_none() {
                    away_since = Some(Instant::now());
                    tracing::warn!(%reason, spooled, "server unavailable: spooling reports");
                } else {
                    tracing::debug!(%reason, spooled, "server still unavailable");
                }
                let wait = after.unwrap_or_else(|| backoff.next_delay());
                tracing::debug!(wait_ms = wait.as_millis() as u64, "retrying after");
                sleep_unless(stop, wait);
            }
        }
    }
    Ok(())
}

/// Sleeps `d`, waking early when `stop` is set.
pub(crate) fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_secs(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_actions() {
        assert_eq!(classify(204, "", None), Outcome::Accepted);
        assert_eq!(
            classify(401, "", None),
            Outcome::TokenRejected { status: 401 }
        );
        assert_eq!(
            classify(403, "", None),
            Outcome::TokenRejected { status: 403 }
        );
        assert!(matches!(
            classify(503, "", None),
            Outcome::Retry { after: None, .. }
        ));
        assert!(matches!(
            classify(429, "", Some(Duration::from_secs(7))),
            Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert_eq!(
            classify(
                422,
                r#"{"error":"ts_ms too far in the future","code":"invalid"}"#,
                None
            ),
            Outcome::Refused {
                status: 422,
                error: "ts_ms too far in the future (invalid)".into()
            }
        );
    }

    #[test]
    fn retries_come_within_two_intervals_the_first_within_one() {
        let interval = Duration::from_secs(5);
        for _ in 0..50 {
            let mut b = retry_policy(interval);
            assert!(b.next_delay() <= interval);
            for _ in 0..20 {
                assert!(b.next_delay() <= 2 * interval);
            }
        }
    }

    #[test]
    fn spliced_body_is_an_ingest_batch() {
        let host = HostFacts {
            hostname: "h".into(),
            ..Default::default()
        };
        let body = batch_body(
            Some(&host),
            &[br#"{"ts_ms":1}"#.to_vec(), br#"{"ts_ms":2}"#.to_vec()],
        );
        let b: storage::model::wire::IngestBatch = serde_json::from_slice(&body).unwrap();
        assert_eq!(b.host, Some(host));
        assert_eq!(
            b.reports.iter().map(|r| r.ts_ms).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let b: storage::model::wire::IngestBatch =
            serde_json::from_slice(&batch_body(None, &[br#"{"ts_ms":3}"#.to_vec()])).unwrap();
        assert!(b.host.is_none());
    }

    #[test]
    fn host_facts_are_resent_only_after_a_change() {
        let slot = HostSlot::default();
        let a = HostFacts {
            hostname: "a".into(),
            ..Default::default()
        };
        slot.offer(a.clone());
        let p = slot.pending().unwrap();
        slot.delivered(p);
        slot.offer(a.clone());
        assert!(slot.pending().is_none());
        slot.offer(HostFacts {
            kernel: Some("6.2".into()),
            ..a
        });
        assert!(slot.pending().is_some());
    }
}
