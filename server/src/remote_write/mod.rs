//! Remote write: every ingested sample is copied, with Prometheus remote_write
//! 1.0 (snappy-compressed protobuf `WriteRequest`), to each configured
//! endpoint (VictoriaMetrics, Mimir, Thanos receive, Prometheus with
//! `--web.enable-remote-write-receiver`).
//!
//! Ingest only hands the accepted batch over ([`AppState::ingested`](crate::state::AppState::ingested): a
//! non-blocking channel send), so an endpoint never slows it. One encoder
//! thread turns batches into `WriteRequest`s (names and labels as in
//! [`crate::metrics::names`]) and appends them to each endpoint's on-disk
//! [`queue::Queue`]; one sender thread per endpoint sends the oldest queued
//! batches (up to 1 MiB per request) and removes them once the endpoint
//! answered 2xx. Failures (connection, timeout, 5xx, 429) are retried with
//! the shared backoff (full jitter under a ceiling of 0.25 s doubling to
//! 30 s, [`storage::model::retry`]) for as long as it takes; a
//! 4xx other than 429 means the endpoint will never take that data (the
//! protocol says not to retry), so it is logged, counted and dropped (after a
//! refusal of several batches sent together, they are sent again one by one,
//! so only the refused batch is dropped).
//!
//! The queue lives in `DATA_DIR/remote_write/` and survives restarts; each
//! endpoint's queue is named by a hash of its URL, so the backlog stays with
//! its endpoint when the list changes, and queues of endpoints no longer
//! configured are deleted at start.
//!
//! The parts: [`encode`](mod@encode) turns reports into `WriteRequest`s
//! (pure), [`sender`] posts the queued batches with backoff, [`lifecycle`]
//! starts and stops the threads and reports their health; [`queue`] is the
//! on-disk queue.

pub mod encode;
pub mod lifecycle;
pub mod proto;
pub mod queue;
pub mod sender;

use crate::config::Config;

pub use encode::encode;
pub use lifecycle::{Endpoint, RemoteWrite};

/// Checks the remote-write settings: URLs must parse as http(s) URLs with a
/// host, the queue bound sensible.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    for url in &config.remote_write_urls {
        let parsed = url::Url::parse(url).map_err(|e| {
            anyhow::anyhow!(
                "remote_write_url {:?} is not a valid URL: {e}",
                redact_url(url)
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            anyhow::bail!(
                "remote_write_url {:?} must be an http:// or https:// URL with a host",
                redact_url(url)
            );
        }
    }
    if config.remote_write_queue_bytes < (1 << 20) {
        anyhow::bail!("remote_write_queue_bytes must be at least 1048576 (1 MiB)");
    }
    Ok(())
}

/// The URL without `user:password@`, query or fragment (which may hold a
/// token); a string that is not a URL at all is shown as `<invalid URL>`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            // Only URLs that cannot have credentials refuse these, and they
            // have none to hide.
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            let s = u.to_string();
            // `Url` adds a `/` path to a bare origin; keep what was written.
            if u.path() == "/" && !url.trim_end_matches(['?', '#']).ends_with('/') {
                s.trim_end_matches('/').to_string()
            } else {
                s
            }
        }
        Err(_) => "<invalid URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_query() {
        assert_eq!(
            redact_url("https://user:pw@vm.example:8428/api/v1/write?token=x"),
            "https://vm.example:8428/api/v1/write"
        );
        assert_eq!(redact_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(
            redact_url("https://tok@vm.example/write#frag"),
            "https://vm.example/write"
        );
        // An `@` in the query is not taken for credentials.
        assert_eq!(
            redact_url("http://vm.example/api/v1/write?u=a@b"),
            "http://vm.example/api/v1/write"
        );
        assert_eq!(redact_url("not a url user:pw@x"), "<invalid URL>");
    }

    #[test]
    fn remote_write_urls_are_checked_without_showing_credentials() {
        let mut config = Config::resolve(crate::config::ServeArgs::default()).unwrap();
        for bad in [
            "ftp://vm.example/write",
            "http//vm.example",
            "https://user:secret@",
            "vm.example:8428/api/v1/write",
            "file:///etc/passwd",
        ] {
            config.remote_write_urls = vec![bad.to_string()];
            let e = check_config(&config).unwrap_err().to_string();
            assert!(e.contains("remote_write_url"), "{bad}: {e}");
            assert!(!e.contains("secret"), "{bad}: {e}");
        }
        config.remote_write_urls = vec!["https://u:p@vm.example:8428/api/v1/write".into()];
        check_config(&config).unwrap();
    }
}
