//! History queries are bounded: ranges outside what can hold data are a 400
//! naming the parameter (or a `start` clamped to the data kept), no range
//! arithmetic overflows, a query past its time budget is a 503, and a user
//! running too many at once gets 429 with `Retry-After`.

use axum::http::{Method, StatusCode};
use server::config::ServeArgs;
use storage::model::SeriesKey;
use storage::tsdb::Row;

use crate::common::{Reply, Session, T0, TestApp};

async fn setup(args: ServeArgs) -> (TestApp, Session, u64) {
    let app = TestApp::with_args(ServeArgs {
        open_registration: Some(true),
        ..args
    });
    let alice = app.register_and_login("alice").await;
    let (agent, _) = app.create_agent(&alice, "nas").await;
    (app, alice, agent)
}

/// `hours` of CPU samples every 5 s up to now, written straight to the engine.
fn fill(app: &TestApp, agent: u64, hours: i64) {
    let rows: Vec<Row> = (0..hours * 720)
        .map(|i| {
            let ts = T0 - hours * 3_600_000 + i * 5_000;
            let samples = (0..8)
                .map(|c| {
                    let key = SeriesKey::with_labels("cpu.core_pct", [("core", c.to_string())]);
                    (key, (i % 100) as f64)
                })
                .chain([(SeriesKey::new("cpu.total_pct"), (i % 100) as f64)])
                .collect();
            Row::new(ts, samples)
        })
        .collect();
    app.state.engine().write(agent, &rows).unwrap();
}

async fn get(app: &TestApp, who: &Session, path: &str) -> Reply {
    app.call_as(who, Method::GET, path, None).await
}

/// The reproductions of unbounded or overflowing ranges, and of multi-byte
/// characters inside an RFC 3339 offset (a panic: no answer at all).
#[tokio::test]
async fn every_unbounded_range_is_a_400_naming_the_parameter() {
    let (app, alice, agent) = setup(ServeArgs::default()).await;
    for (query, param) in [
        ("start=0&stop=9223372036854775807", "stop"),
        ("start=-1h&stop=9999-12-31T23:59:59Z", "stop"),
        ("start=-25000y", "start"),
        ("start=-9223372036854775807ms", "start"),
        ("stop=9223372036854775807&start=9223372036854775806", "stop"),
        ("start=-1h&interval=9223372036854775807ms", ""),
        ("start=2026-01-01T00:00:00%C3%A91:00", "start"),
        ("start=2026-01-01T00:00:00%2B0%C3%A900", "start"),
        ("start=2026-01-01T00:00:00%2B01%C3%A90", "start"),
        ("start=2026-01-01T00:00:00.5%C3%A91:00", "start"),
        ("stop=2026-01-01T00:00:00%C3%A91:00", "stop"),
    ] {
        for kind in ["cpu", "summary"] {
            let r = get(
                &app,
                &alice,
                &format!("/api/history/{agent}/{kind}?{query}"),
            )
            .await;
            if param.is_empty() {
                // A bucket wider than any range: one bucket, no overflow.
                assert_eq!(r.status, StatusCode::OK, "{kind}?{query}: {}", r.text);
                continue;
            }
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{kind}?{query}: {}",
                r.text
            );
            assert_eq!(r.code(), "bad_request", "{kind}?{query}");
            let error = r.body["error"].as_str().unwrap();
            assert!(error.starts_with(param), "{kind}?{query}: {error}");
        }
    }
}

/// `start` older than the data kept is clamped to the oldest hour kept
/// (365 days by default); the data is there.
#[tokio::test]
async fn an_old_start_is_clamped_to_the_data_kept() {
    let (app, alice, agent) = setup(ServeArgs::default()).await;
    fill(&app, agent, 1);
    for start in ["0", "-50y", "1970-01-01T00:00:00Z"] {
        let r = get(
            &app,
            &alice,
            &format!("/api/history/{agent}/cpu?start={start}"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{start}: {}", r.text);
        let start_ms = r.body["start_ms"].as_i64().unwrap();
        let interval = r.body["interval_ms"].as_i64().unwrap();
        let oldest = T0 - 365 * 86_400_000;
        assert!(
            start_ms <= oldest && start_ms > oldest - interval,
            "{start}: {start_ms}"
        );
        let count = crate::common::cpu_series_points(&r.body);
        assert!(count > 0, "{start}");
    }
}

/// A query that runs past its budget stops with 503 and says why.
#[tokio::test]
async fn a_query_past_its_time_budget_is_a_503_with_a_message() {
    let (app, alice, agent) = setup(ServeArgs {
        history_query_timeout: Some("1ms".into()),
        ..Default::default()
    })
    .await;
    // A day of unsealed rows: tens of milliseconds to read.
    fill(&app, agent, 24);
    let r = get(
        &app,
        &alice,
        &format!("/api/history/{agent}/cpu?start=-24h&tier=5s&max_points=5000"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.code(), "unavailable");
    assert!(
        r.body["error"].as_str().unwrap().contains("budget"),
        "{}",
        r.text
    );
}

/// Beyond the per-user limit of queries running at once: 429 with
/// `Retry-After`, for that user only, until one finishes.
#[tokio::test]
async fn queries_beyond_the_per_user_limit_are_429_with_retry_after() {
    let (app, alice, agent) = setup(ServeArgs {
        history_queries_per_user: Some(2),
        ..Default::default()
    })
    .await;
    let bob = app.register_and_login("bob").await;
    let (bobs, _) = app.create_agent(&bob, "pi").await;
    // Two of alice's queries in flight.
    let running = [
        app.state.history.start(alice.user_id).unwrap(),
        app.state.history.start(alice.user_id).unwrap(),
    ];
    for kind in ["cpu", "summary"] {
        let r = get(&app, &alice, &format!("/api/history/{agent}/{kind}")).await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{kind}: {}",
            r.text
        );
        assert_eq!(r.code(), "rate_limited");
        assert_eq!(r.headers["retry-after"], "1");
    }
    // The limit is checked before the agent is looked up: no catalog work
    // for a user over it.
    let r = get(&app, &alice, "/api/history/999999/cpu").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let r = get(&app, &bob, &format!("/api/history/{bobs}/cpu")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    drop(running);
    let r = get(&app, &alice, &format!("/api/history/{agent}/cpu")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Every request gave its slot back.
    assert_eq!(app.state.history.running_of(alice.user_id), 0);
    assert_eq!(app.state.history.running_of(bob.user_id), 0);
}

/// A client that sends a slow history request over a real socket and then
/// closes the connection gets its query cancelled: the engine stops it at
/// its next block (counted as cancelled) and both its slots, per user and
/// server-wide, come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_query_cancels_it() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;

    let (app, alice, agent) = setup(ServeArgs {
        history_query_timeout: Some("60s".into()),
        ..Default::default()
    })
    .await;
    // A day of raw rows: the engine reads for tens of milliseconds.
    fill(&app, agent, 24);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve::serve(
        listener,
        app.router(),
        app.state.config.connection_limits(),
        std::future::pending(),
    ));
    let queries = app.state.history.clone();
    // The query must still be running when the connection closes; under a
    // loaded machine a round may lose that race, so a few rounds are
    // allowed. Without cancellation no round counts one.
    for _round in 0..5 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "GET /api/history/{agent}/cpu?start=-24h&tier=5s&max_points=5000 HTTP/1.1\r\n\
             Host: 127.0.0.1\r\nAuthorization: {}\r\n\r\n",
            alice.bearer()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        while queries.working() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the query started"
            );
            tokio::task::yield_now().await;
        }
        drop(stream);
        let deadline = Instant::now() + Duration::from_secs(10);
        while queries.working() != 0 || queries.running_of(alice.user_id) != 0 {
            assert!(
                Instant::now() < deadline,
                "the query stopped and freed its slots"
            );
            tokio::task::yield_now().await;
        }
        if queries.cancelled() > 0 {
            break;
        }
    }
    assert_eq!(queries.cancelled(), 1, "the engine stopped the query early");
}
