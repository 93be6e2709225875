//! Slow and idle clients against the real accept loop
//! (`server::serve::serve`): the request-head timeout closes silent,
//! dripping and idle connections, a keep-alive client that sends requests
//! more often keeps its connection, and an address's unauthenticated
//! connections are limited while authenticated ones do not count.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use server::serve::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::TestApp;

/// The head timeout of these tests: short, so they take seconds.
const HEAD_TIMEOUT: Duration = Duration::from_secs(1);

async fn serve(app: &TestApp, limits: ConnectionLimits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve::serve(
        listener,
        app.router(),
        limits,
        std::future::pending(),
    ));
    addr
}

/// When the server closed `stream` (EOF or reset), measured from `since`;
/// `None` if it is still open at `since + limit`. What the server sends
/// before closing is returned too.
async fn closed_after(
    stream: &mut TcpStream,
    since: Instant,
    limit: Duration,
) -> (Option<Duration>, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((since + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return (None, got),
            Ok(Ok(0)) | Ok(Err(_)) => return (Some(since.elapsed()), got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends one request on `stream` and reads its answer: (status, body).
async fn request(stream: &mut TcpStream, head: &str) -> (u16, String) {
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("a content-length");
            if got.len() >= end + 4 + len {
                let status = head[9..12].parse().unwrap();
                let body = String::from_utf8_lossy(&got[end + 4..end + 4 + len]).to_string();
                return (status, body);
            }
        }
        let n = tokio::time::timeout_at(deadline.into(), stream.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(
            n > 0,
            "closed before the answer: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

const HEALTH: &str = "GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[tokio::test]
async fn silent_dripping_and_idle_connections_are_closed_but_a_busy_keep_alive_one_is_not() {
    let app = TestApp::new();
    let addr = serve(
        &app,
        ConnectionLimits {
            header_timeout: HEAD_TIMEOUT,
            max_unauthenticated_per_ip: 0,
        },
    )
    .await;
    let limit = HEAD_TIMEOUT * 3;

    let silent = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let since = Instant::now();
        closed_after(&mut s, since, limit).await.0
    };
    let dripping = async {
        let s = TcpStream::connect(addr).await.unwrap();
        let since = Instant::now();
        let (mut read, mut write) = s.into_split();
        let drip = tokio::spawn(async move {
            write
                .write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n")
                .await
                .unwrap();
            // A header line every 200 ms, never the blank line that ends the head.
            for i in 0..30 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if write
                    .write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let mut buf = [0u8; 1024];
        let closed = loop {
            match tokio::time::timeout_at((since + limit).into(), read.read(&mut buf)).await {
                Err(_) => break None,
                Ok(Ok(0)) | Ok(Err(_)) => break Some(since.elapsed()),
                Ok(Ok(_)) => {}
            }
        };
        drip.abort();
        closed
    };
    // An agent's connection: a request every 400 ms (more often than the
    // timeout) for three timeouts, all on one connection; then it goes quiet
    // and is closed as idle.
    let busy = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let start = Instant::now();
        let mut answered = 0;
        let idle_since = loop {
            let (status, _) = request(&mut s, HEALTH).await;
            assert_eq!(status, 200);
            answered += 1;
            let answer = Instant::now();
            if start.elapsed() >= HEAD_TIMEOUT * 3 {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        };
        let (closed, _) = closed_after(&mut s, idle_since, limit).await;
        (answered, closed)
    };
    let (silent, dripping, (answered, idle)) = tokio::join!(silent, dripping, busy);

    for (what, closed) in [("silent", silent), ("dripping", dripping), ("idle", idle)] {
        let closed =
            closed.unwrap_or_else(|| panic!("{what} connection still open after {limit:?}"));
        assert!(
            closed >= HEAD_TIMEOUT - Duration::from_millis(100) && closed < HEAD_TIMEOUT * 2,
            "{what} connection closed after {closed:?}, not at the timeout"
        );
    }
    assert!(answered >= 7, "one connection carried {answered} requests");
}

#[tokio::test]
async fn unauthenticated_connections_per_address_are_limited_but_logged_in_ones_do_not_count() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let addr = serve(
        &app,
        ConnectionLimits {
            header_timeout: Duration::from_secs(30),
            max_unauthenticated_per_ip: 2,
        },
    )
    .await;
    // Three logged-in connections: they count only until their first
    // authenticated request.
    let mut logged_in = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let (status, body) = request(
            &mut s,
            &format!(
                "GET /api/users/me HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\n\r\n",
                alice.bearer()
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        logged_in.push(s);
    }
    // Two that say nothing fill the address's allowance...
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    // ...so the next is answered 429 with the usual JSON, and closed.
    let mut refused = TcpStream::connect(addr).await.unwrap();
    let (closed, got) = closed_after(&mut refused, Instant::now(), Duration::from_secs(3)).await;
    assert!(closed.is_some(), "the refused connection is closed");
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 429 "), "{got}");
    let body: serde_json::Value =
        serde_json::from_str(got.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert!(body["error"].as_str().unwrap().contains("not logged in"));
    // The logged-in connections still work.
    let (status, _) = request(&mut logged_in[0], HEALTH).await;
    assert_eq!(status, 200);
    // One closes: a new connection is accepted again (once the server has
    // seen the close; bounded wait).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(HEALTH.as_bytes()).await.unwrap();
        let (_, got) = closed_after(&mut s, Instant::now(), Duration::from_millis(300)).await;
        if String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused: {}",
            String::from_utf8_lossy(&got)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
