//! The fake server: HTTP/1.1 with keep-alive, just enough for ureq, on
//! 127.0.0.1:0; also over TLS (rustls) with the test certificates of
//! `tests/tls/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storage::model::wire::IngestBatch;

#[derive(Default)]
pub struct State {
    /// What `/api/ingest` answers.
    pub status: u16,
    /// Batches answered with 2xx, in arrival order.
    pub accepted: Vec<IngestBatch>,
    /// Every ingest request, whatever the answer.
    pub attempts: usize,
    pub tokens: Vec<String>,
    /// When each ingest request arrived, with its token.
    pub arrivals: Vec<(String, Instant)>,
}

pub struct FakeServer {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

impl FakeServer {
    pub fn start(status: u16) -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap(), status)
    }

    /// Serves on an existing listener (to take over a port that was down).
    pub fn on(listener: TcpListener, status: u16) -> Self {
        Self::serving(listener, status, None)
    }

    /// HTTPS with `tests/tls/server.pem` (for `localhost` and 127.0.0.1),
    /// signed by the test CA `tests/tls/ca.pem`.
    pub fn start_tls(status: u16) -> Self {
        Self::serving(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            status,
            Some(tls_config()),
        )
    }

    fn serving(listener: TcpListener, status: u16, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            status,
            ..Default::default()
        }));
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    None => serve(stream, &s),
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config).unwrap();
                        // A handshake the client refuses ends in an I/O error
                        // inside `serve`, which then returns.
                        serve(rustls::StreamOwned::new(conn, stream), &s);
                    }
                });
            }
        });
        Self { url, state }
    }

    pub fn set_status(&self, status: u16) {
        self.state.lock().unwrap().status = status;
    }

    pub fn accepted_reports(&self) -> Vec<i64> {
        let s = self.state.lock().unwrap();
        s.accepted
            .iter()
            .flat_map(|b| b.reports.iter().map(|r| r.ts_ms))
            .collect()
    }

    /// Waits until `cond` holds on the state, or panics after `timeout`.
    pub fn wait_for(&self, timeout: Duration, what: &str, cond: impl Fn(&State) -> bool) {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if cond(&self.state.lock().unwrap()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}");
    }
}

/// The path of a file in `tests/tls/`.
pub fn tls_file(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(tls_file("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(tls_file("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    Arc::new(config)
}

/// One keep-alive connection: requests until the client closes it.
fn serve(stream: impl Read + Write, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let (mut len, mut gzip, mut token) = (0usize, false, String::new());
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "content-encoding" => gzip = v.trim() == "gzip",
                "x-agent-token" => token = v.trim().to_owned(),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        if gzip {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut plain)
                .unwrap();
            body = plain;
        }
        let (status, answer) = match (method.as_str(), path.as_str()) {
            ("GET", "/api/health") => (200, r#"{"status":"ok"}"#.to_owned()),
            ("POST", "/api/ingest") => {
                let mut s = state.lock().unwrap();
                s.attempts += 1;
                s.arrivals.push((token.clone(), Instant::now()));
                s.tokens.push(token);
                let status = s.status;
                if (200..300).contains(&status) {
                    s.accepted
                        .push(serde_json::from_slice(&body).expect("body is an IngestBatch"));
                }
                (
                    status,
                    format!(r#"{{"error":"fake says {status}","code":"fake"}}"#),
                )
            }
            _ => (
                404,
                r#"{"error":"not found","code":"not_found"}"#.to_owned(),
            ),
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        let out = reader.get_mut();
        if out
            .write_all(head.as_bytes())
            .and_then(|_| out.write_all(answer.as_bytes()))
            .and_then(|_| out.flush())
            .is_err()
        {
            return;
        }
    }
}
