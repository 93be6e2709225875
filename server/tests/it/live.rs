//! The live WebSocket (`/api/ws/{agent_id}`) over a real socket: snapshot then
//! each report, who may open it, what closes it, slow readers, and
//! subscribers joining while reports stream in.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{Value, json};
use storage::model::LiveMessage;
use tokio_tungstenite::tungstenite;
use tower::ServiceExt;

use crate::common::{Session, T0, TestApp, report};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn setup() -> (TestApp, Session, u64, String) {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    (app, alice, agent, token)
}

/// POSTs `reports` as one batch through `router`; the status.
async fn ingest(router: &axum::Router, token: &str, reports: Vec<Value>) -> StatusCode {
    let body = serde_json::to_vec(&json!({ "reports": reports })).unwrap();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/ingest")
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string())
        .header("x-agent-token", token)
        .body(Body::from(body))
        .unwrap();
    router.clone().oneshot(req).await.unwrap().status()
}

async fn connect(addr: std::net::SocketAddr, agent: u64, who: &Session) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/api/ws/{agent}?token={}",
        who.access
    ))
    .await
    .expect("upgrade");
    ws
}

async fn next_message(ws: &mut Ws) -> LiveMessage {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .unwrap()
            .unwrap();
        if let tungstenite::Message::Text(text) = msg {
            return serde_json::from_str(&text).expect("a LiveMessage");
        }
    }
}

/// What a dashboard keeps of a live stream: a snapshot replaces it, a report
/// is appended. Panics if a report is not newer than the last one kept (a
/// duplicate or out of order). Returns once a report at `until` is kept.
async fn follow(ws: &mut Ws, until: i64) -> Vec<i64> {
    let mut kept: Vec<i64> = Vec::new();
    while kept.last() != Some(&until) {
        match next_message(ws).await {
            LiveMessage::Snapshot { reports, .. } => {
                kept = reports.iter().map(|r| r.ts_ms).collect();
                assert!(kept.is_sorted(), "a snapshot is oldest first: {kept:?}");
            }
            LiveMessage::Report { report, .. } => {
                assert!(
                    kept.last().is_none_or(|&t| report.ts_ms > t),
                    "report {} after {:?}: a duplicate or out of order",
                    report.ts_ms,
                    kept.last()
                );
                kept.push(report.ts_ms);
            }
            LiveMessage::Closed { reason } => panic!("closed: {reason}"),
        }
    }
    kept
}

#[tokio::test]
async fn a_websocket_gets_a_snapshot_then_each_report_then_closes_on_delete() {
    let (app, alice, agent, token) = setup().await;
    let router = app.router();
    assert_eq!(
        ingest(&router, &token, vec![report(T0 - 5_000, 1.0)]).await,
        StatusCode::OK
    );
    let addr = app.serve().await;
    let mut ws = connect(addr, agent, &alice).await;
    match next_message(&mut ws).await {
        LiveMessage::Snapshot { agent_id, reports } => {
            assert_eq!(agent_id, agent);
            assert_eq!(reports.len(), 1);
        }
        other => panic!("snapshot first, got {other:?}"),
    }
    assert_eq!(
        ingest(&router, &token, vec![report(T0, 77.0)]).await,
        StatusCode::OK
    );
    match next_message(&mut ws).await {
        LiveMessage::Report { report, .. } => assert_eq!(report.cpu.unwrap().total_pct, 77.0),
        other => panic!("the new report, got {other:?}"),
    }
    let r = app
        .call_as(
            &alice,
            Method::DELETE,
            &format!("/api/agents/{agent}"),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    match next_message(&mut ws).await {
        LiveMessage::Closed { reason } => assert!(reason.contains("deleted"), "{reason}"),
        other => panic!("closed, got {other:?}"),
    }
    // Then the close frame, and the server ends the connection.
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                return true;
            }
        }
        false
    })
    .await
    .expect("closed in time");
    assert!(end, "a close frame");
    // The agent's data went with it.
    assert!(
        app.state
            .engine()
            .recent_reports(agent, T0 - 3_600_000)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_websocket_without_a_session_or_of_another_user_is_refused() {
    let (app, _, agent, _) = setup().await;
    let addr = app.serve().await;
    let err = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws/{agent}"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, tungstenite::Error::Http(ref r) if r.status() == 401),
        "{err:?}"
    );
    let app_bob = app.register("bob").await;
    assert_eq!(
        app_bob.status,
        StatusCode::FORBIDDEN,
        "registration is closed after the first account"
    );
}

#[tokio::test]
async fn a_websocket_closes_when_its_session_ends_and_others_stay_open() {
    let (app, alice, agent, token) = setup().await;
    let router = app.router();
    let other_session = app.login("alice").await;
    let addr = app.serve().await;
    let mut ending = connect(addr, agent, &alice).await;
    let mut staying = connect(addr, agent, &other_session).await;
    assert!(matches!(
        next_message(&mut ending).await,
        LiveMessage::Snapshot { .. }
    ));
    assert!(matches!(
        next_message(&mut staying).await,
        LiveMessage::Snapshot { .. }
    ));
    // What `/metrics` reports as open WebSockets: sockets, not writer tasks.
    assert_eq!(app.state.fanout.subscribers(), 2);
    let r = app
        .call_as(&alice, Method::POST, "/api/auth/logout", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    match next_message(&mut ending).await {
        LiveMessage::Closed { reason } => assert!(reason.contains("session"), "{reason}"),
        other => panic!("closed, got {other:?}"),
    }
    assert_eq!(app.state.fanout.subscribers(), 1);
    // The other session's socket still gets reports.
    assert_eq!(
        ingest(&router, &token, vec![report(T0, 5.0)]).await,
        StatusCode::OK
    );
    assert_eq!(follow(&mut staying, T0).await, vec![T0]);
}

/// Reports every 100 ms over the 15 minutes before `T0` (all in the ring's
/// window), oldest first.
fn timeline(n: i64) -> Vec<i64> {
    (0..n).map(|i| T0 - (n - 1 - i) * 100).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_holds_up_nobody_and_catches_up_with_a_snapshot() {
    let (app, alice, agent, token) = setup().await;
    let router = app.router();
    let addr = app.serve().await;
    // A client whose socket takes a few KiB and which reads nothing: the
    // server's send buffer to it fills up long before the reports end.
    let slow = {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let url = format!("ws://{addr}/api/ws/{agent}?token={}", alice.access);
        let (ws, _) =
            tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
                .await
                .expect("upgrade");
        ws
    };
    // Three that read: with the sockets spread over the runtime's workers,
    // at least one shares the slow one's writer.
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut fast = connect(addr, agent, &alice).await;
        assert!(matches!(
            next_message(&mut fast).await,
            LiveMessage::Snapshot { .. }
        ));
        readers.push(fast);
    }
    // About 10 MB of frames (64 cores each), 20 reports per request: more
    // than the kernel's largest send buffer (tcp_wmem, 4 MiB by default).
    let times = timeline(8_000);
    let last = *times.last().unwrap();
    let big = |t: i64| {
        let mut r = report(t, 10.0);
        r["cpu"]["cores_pct"] = json!(vec![10.0; 64]);
        r["cpu"]["cores_mhz"] = json!(vec![3400; 64]);
        r
    };
    let readers: Vec<_> = readers
        .into_iter()
        .map(|mut fast| tokio::spawn(async move { follow(&mut fast, last).await }))
        .collect();
    for chunk in times.chunks(20) {
        let reports = chunk.iter().map(|&t| big(t)).collect();
        let status =
            tokio::time::timeout(Duration::from_secs(10), ingest(&router, &token, reports))
                .await
                .expect("ingest is never held up by a reader");
        assert_eq!(status, StatusCode::OK);
    }
    for reader in readers {
        let kept = tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("a reading client got every report in time")
            .unwrap();
        assert_eq!(kept, times, "a reading client has every report, in order");
    }

    // The slow one now reads: what it was sent before its socket filled,
    // then a fresh snapshot that ends at the newest report.
    let mut slow = slow;
    let mut snapshots = 0;
    let mut newest = i64::MIN;
    while newest != last {
        match next_message(&mut slow).await {
            LiveMessage::Snapshot { reports, .. } => {
                snapshots += 1;
                newest = reports.last().map_or(i64::MIN, |r| r.ts_ms);
            }
            LiveMessage::Report { report, .. } => {
                assert!(report.ts_ms > newest, "in order");
                newest = report.ts_ms;
            }
            LiveMessage::Closed { reason } => panic!("closed: {reason}"),
        }
    }
    assert!(
        snapshots >= 2,
        "the slow reader was resynchronised with a snapshot ({snapshots} snapshots)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_joining_while_reports_arrive_see_each_report_once_in_order() {
    let (app, alice, agent, token) = setup().await;
    let router = app.router();
    let addr = app.serve().await;
    // Back to back, so joins often find reports queued for the shards.
    let times = timeline(1_500);
    let last = *times.last().unwrap();
    let sender = {
        let times = times.clone();
        tokio::spawn(async move {
            for &t in &times {
                assert_eq!(
                    ingest(&router, &token, vec![report(t, 10.0)]).await,
                    StatusCode::OK
                );
            }
        })
    };
    let mut followers = Vec::new();
    for _ in 0..40 {
        let mut ws = connect(addr, agent, &alice).await;
        followers.push(tokio::spawn(async move { follow(&mut ws, last).await }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sender.await.unwrap();
    for f in followers {
        let kept = tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("in time")
            .unwrap();
        assert_eq!(
            kept, times,
            "snapshot plus live reports: each once, in order"
        );
    }
}
