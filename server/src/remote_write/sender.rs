//! The sender of remote write: one thread per endpoint posts the oldest
//! queued batches and retries failures with the shared backoff.

use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use storage::model::retry::{Backoff, worth_retrying};

use crate::remote_write::lifecycle::Endpoint;

/// Largest uncompressed body of one request.
const MAX_REQUEST_BYTES: usize = 1 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often an idle sender looks at its queue.
const POLL: Duration = Duration::from_millis(200);

/// Tells the senders to stop, and wakes them from their sleep.
#[derive(Default)]
pub(super) struct Stopper {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stopper {
    /// Sleeps `d`; false when the server is stopping.
    pub(super) fn sleep(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        !*guard
    }

    pub(super) fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }
}

/// Sends the queue's oldest batches until told to stop.
pub(super) fn sender(
    endpoint: &Endpoint,
    http: &ureq::Agent,
    bearer: Option<&str>,
    stop: &Stopper,
) {
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    // After a refusal of several batches at once, this many are sent one by
    // one, so only the batch the endpoint refuses is dropped.
    let mut one_by_one = 0usize;
    loop {
        let limit = if one_by_one > 0 { 0 } else { MAX_REQUEST_BYTES };
        let entries = match endpoint.queue.peek(limit) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(endpoint = %endpoint.label, error = %e, "cannot read the remote-write queue");
                if !stop.sleep(BACKOFF_MAX) {
                    return;
                }
                continue;
            }
        };
        if entries.is_empty() {
            if !stop.sleep(POLL) {
                return;
            }
            continue;
        }
        let mut body = Vec::with_capacity(entries.iter().map(|(_, v)| v.len()).sum());
        for (_, v) in &entries {
            body.extend_from_slice(v);
        }
        let outcome = match snap::raw::Encoder::new().compress_vec(&body) {
            Ok(compressed) => post(http, &endpoint.url, bearer, &compressed),
            Err(e) => Outcome::Reject(format!("snappy: {e}")),
        };
        if !matches!(outcome, Outcome::Retry(_)) {
            one_by_one = one_by_one.saturating_sub(1);
        }
        match outcome {
            Outcome::Sent => {
                endpoint
                    .sent_batches
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                *endpoint
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
                backoff.reset();
                if let Err(e) = endpoint.queue.ack(&entries) {
                    tracing::error!(endpoint = %endpoint.label, error = %e, "cannot remove sent batches from the remote-write queue");
                }
            }
            Outcome::Reject(_) if entries.len() > 1 => {
                one_by_one = entries.len();
                continue;
            }
            Outcome::Reject(error) => {
                tracing::warn!(endpoint = %endpoint.label, batches = entries.len(), %error, "remote_write endpoint refused the samples for good; dropping them");
                endpoint
                    .rejected_batches
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                if let Err(e) = endpoint.queue.ack(&entries) {
                    tracing::error!(endpoint = %endpoint.label, error = %e, "cannot remove refused batches from the remote-write queue");
                }
            }
            Outcome::Retry(error) => {
                endpoint.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let wait = backoff.next_delay();
                tracing::debug!(endpoint = %endpoint.label, %error, ?wait, "remote_write failed; retrying");
                let mut last = endpoint
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if last.is_none() {
                    tracing::warn!(endpoint = %endpoint.label, %error, "remote_write endpoint unreachable; samples wait in the queue");
                }
                *last = Some(error);
                drop(last);
                if !stop.sleep(wait) {
                    return;
                }
            }
        }
    }
}

enum Outcome {
    Sent,
    Retry(String),
    Reject(String),
}

fn post(http: &ureq::Agent, url: &str, bearer: Option<&str>, body: &[u8]) -> Outcome {
    let mut request = http
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    if let Some(token) = bearer {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    match request.send(body) {
        Ok(response) => {
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return Outcome::Sent;
            }
            let detail: String = response
                .into_body()
                .with_config()
                .limit(4096)
                .read_to_string()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            let error = format!("HTTP {status}: {}", detail.trim());
            if worth_retrying(status) {
                Outcome::Retry(error)
            } else {
                Outcome::Reject(error)
            }
        }
        Err(ureq::Error::BadUri(e)) => Outcome::Reject(format!("invalid URL: {e}")),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}
