//! The data paths end to end through the real router, engine and catalog:
//! ingest → history, backdated (spooled) batches, every kind of bad input
//! (status, and nothing stored), restart. The live WebSocket is in `live`.

use std::io::Write;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{Reply, Session, T0, TestApp, cpu_points, report};

async fn ingest_raw(app: &TestApp, token: &str, body: Vec<u8>, encoding: Option<&str>) -> Reply {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/ingest")
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string())
        .header("x-agent-token", token);
    if let Some(enc) = encoding {
        req = req.header("content-encoding", enc);
    }
    let response = app
        .router()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    Reply::read(response).await
}

async fn ingest(app: &TestApp, token: &str, batch: Value) -> Reply {
    ingest_raw(app, token, serde_json::to_vec(&batch).unwrap(), None).await
}

async fn setup() -> (TestApp, Session, u64, String) {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    (app, alice, agent, token)
}

#[tokio::test]
async fn ingested_reports_come_back_from_history() {
    let (app, alice, agent, token) = setup().await;
    let reports: Vec<Value> = (0..12)
        .map(|i| report(T0 - 60_000 + i * 5_000, 10.0 + i as f64))
        .collect();
    let r = ingest(
        &app,
        &token,
        json!({ "host": { "hostname": "nas", "cores": 2 }, "reports": reports }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["accepted"], 12);

    let points = cpu_points(&app, &alice, agent, "start=-5m&max_points=600").await;
    let values: Vec<f64> = points.iter().map(|p| p[1].as_f64().unwrap()).collect();
    assert_eq!(values, (0..12).map(|i| 10.0 + i as f64).collect::<Vec<_>>());
    let first = &points[0];
    assert_eq!(first[0].as_i64().unwrap(), T0 - 60_000);

    // The agent is now active, online, with its host facts.
    let a = app
        .call_as(&alice, Method::GET, &format!("/api/agents/{agent}"), None)
        .await;
    assert_eq!(a.body["token_state"], "active");
    assert_eq!(a.body["online"], true);
    assert_eq!(a.body["host"]["hostname"], "nas");

    // Memory, disk, network and the summary carry the same reports.
    for (kind, metric) in [
        ("memory", "mem.used_bytes"),
        ("disk", "disk.used_bytes"),
        ("network", "net.rx_bps"),
    ] {
        let r = app
            .call_as(
                &alice,
                Method::GET,
                &format!("/api/history/{agent}/{kind}?start=-5m"),
                None,
            )
            .await;
        let series = r.body["series"].as_array().unwrap();
        assert!(
            series
                .iter()
                .any(|s| s["metric"] == metric && !s["points"].as_array().unwrap().is_empty()),
            "{kind}: {}",
            r.text
        );
    }
    let s = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/history/{agent}/summary?start=-5m"),
            None,
        )
        .await;
    let cpu = s.body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "cpu.total_pct")
        .unwrap()
        .clone();
    assert_eq!(
        (
            cpu["min"].as_f64(),
            cpu["max"].as_f64(),
            cpu["last"].as_f64(),
            cpu["count"].as_u64()
        ),
        (Some(10.0), Some(21.0), Some(21.0), Some(12))
    );
    assert!((cpu["avg"].as_f64().unwrap() - 15.5).abs() < 1e-9);
}

#[tokio::test]
async fn compressed_bodies_are_accepted() {
    let (app, alice, agent, token) = setup().await;
    let body = serde_json::to_vec(&json!({ "reports": [report(T0 - 10_000, 42.0)] })).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    assert_eq!(
        ingest_raw(&app, &token, gz.finish().unwrap(), Some("gzip"))
            .await
            .status,
        StatusCode::OK
    );
    let body = serde_json::to_vec(&json!({ "reports": [report(T0 - 5_000, 43.0)] })).unwrap();
    let z = zstd::encode_all(&body[..], 3).unwrap();
    assert_eq!(
        ingest_raw(&app, &token, z, Some("zstd")).await.status,
        StatusCode::OK
    );
    assert_eq!(cpu_points(&app, &alice, agent, "start=-1m").await.len(), 2);
}

#[tokio::test]
async fn bad_input_gets_its_status_and_stores_nothing() {
    let (app, alice, agent, token) = setup().await;
    let good = report(T0 - 5_000, 50.0);
    let with = |path: &[&str], value: Value| {
        let mut r = good.clone();
        let mut at = &mut r;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        serde_json::to_vec(&json!({ "reports": [report(T0 - 10_000, 1.0), r] })).unwrap()
    };
    let nan = br#"{"reports":[{"ts_ms":1767225595000,"cpu":{"total_pct":NaN}}]}"#.to_vec();
    let bomb = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(b"{\"reports\":[").unwrap();
        gz.write_all(&vec![b' '; 8 << 20]).unwrap();
        gz.write_all(b"]}").unwrap();
        gz.finish().unwrap()
    };
    // (name, body, Content-Encoding, status, text the error must contain)
    type Case = (
        &'static str,
        Vec<u8>,
        Option<&'static str>,
        StatusCode,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            b"{\"reports\": [".to_vec(),
            None,
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "NaN",
            nan,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "reports[0].cpu.total_pct",
        ),
        (
            "infinite load",
            br#"{"reports":[{"ts_ms":1767225595000,"load":[1e999,0,0]}]}"#.to_vec(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "reports[0].load",
        ),
        (
            "negative bytes",
            with(&["memory", "used_bytes"], json!(-1)),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "reports[1].memory.used_bytes",
        ),
        (
            "percent far out",
            with(&["cpu", "total_pct"], json!(250.0)),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "reports[1].cpu.total_pct",
        ),
        (
            "future",
            with(&["ts_ms"], json!(T0 + 6 * 60_000)),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "reports[1].ts_ms",
        ),
        (
            "too old",
            with(&["ts_ms"], json!(T0 - 25 * 3_600_000)),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "reports[1].ts_ms",
        ),
        (
            "oversized",
            vec![b' '; 2 << 20],
            None,
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
        (
            "decompression bomb",
            bomb,
            Some("gzip"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "decodes to more than",
        ),
        (
            "unknown encoding",
            b"x".to_vec(),
            Some("br"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "",
        ),
    ];
    for (name, body, encoding, status, needle) in cases {
        let r = ingest_raw(&app, &token, body, encoding).await;
        assert_eq!(r.status, status, "{name}: {}", r.text);
        assert!(
            r.body["error"].as_str().unwrap_or("").contains(needle),
            "{name}: {}",
            r.text
        );
        assert!(r.body["code"].is_string(), "{name}: JSON error body");
    }
    assert!(
        cpu_points(&app, &alice, agent, "start=-1h")
            .await
            .is_empty(),
        "nothing of any refused batch stored"
    );

    // Tokens: missing, unknown, expired pending.
    let body = serde_json::to_vec(&json!({ "reports": [good] })).unwrap();
    let r = app
        .router()
        .oneshot(
            Request::post("/api/ingest")
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        ingest_raw(&app, "sma_nope", body.clone(), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let (_, late) = app.create_agent(&alice, "late").await;
    app.clock.advance(5 * 60_000 + 1_000);
    let r = ingest_raw(
        &app,
        &late,
        serde_json::to_vec(&json!({ "reports": [report(T0, 1.0)] })).unwrap(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("Regenerate"), "{}", r.text);
}

#[tokio::test]
async fn a_backdated_batch_lands_in_history_and_the_minute_tier() {
    let (app, alice, agent, token) = setup().await;
    // Live data now, then a spool replay of two hours ago arrives late.
    assert_eq!(
        ingest(&app, &token, json!({ "reports": [report(T0, 5.0)] }))
            .await
            .status,
        StatusCode::OK
    );
    let old: Vec<Value> = (0..24)
        .map(|i| report(T0 - 2 * 3_600_000 + i * 5_000, 30.0 + (i % 12) as f64))
        .collect();
    assert_eq!(
        ingest(&app, &token, json!({ "reports": old })).await.status,
        StatusCode::OK
    );
    let raw = cpu_points(&app, &alice, agent, "start=-3h&tier=5s&max_points=5000").await;
    assert_eq!(raw.len(), 25);

    // Move on past the grace period and let the compactor roll it up.
    app.clock.advance(10 * 60_000);
    app.state.engine().run_maintenance().unwrap();
    let minutes = cpu_points(&app, &alice, agent, "start=-3h&tier=1m").await;
    let m0 = minutes
        .iter()
        .find(|p| p[0].as_i64() == Some(T0 - 2 * 3_600_000))
        .expect("first minute rolled up");
    assert_eq!(
        (m0[2].as_f64(), m0[3].as_f64()),
        (Some(30.0), Some(41.0)),
        "min and max of the minute"
    );
    assert!(
        (m0[1].as_f64().unwrap() - 35.5).abs() < 1e-9,
        "avg of the minute: {m0:?}"
    );

    // The replay did not go out as live news: the ring's latest is the live report.
    assert_eq!(app.state.ring.latest(agent).unwrap().ts_ms, T0);
}

#[tokio::test]
async fn acknowledged_reports_survive_a_restart() {
    let (mut app, alice, agent, token) = setup().await;
    let (other, other_token) = app.create_agent(&alice, "pi").await;
    let reports: Vec<Value> = (0..10)
        .map(|i| report(T0 - 50_000 + i * 5_000, i as f64))
        .collect();
    // Two mounts and two interfaces: their order must come back too.
    let others: Vec<Value> = (0..7)
        .map(|i| {
            let mut r = report(T0 - 600_000 + i * 60_000, 50.0 + i as f64);
            r["disks"].as_array_mut().unwrap().push(json!({ "mount": "/data",
                "total_bytes": 4_000_000_000_000u64, "used_bytes": 1_000_000 + i, "read_bps": 0, "write_bps": 7 }));
            r["networks"].as_array_mut().unwrap().push(json!({ "iface": "wg0", "rx_bps": 5, "tx_bps": 6 + i }));
            r
        })
        .collect();
    for (token, batch) in [(&token, &reports), (&other_token, &others)] {
        assert_eq!(
            ingest(&app, token, json!({ "reports": batch }))
                .await
                .status,
            StatusCode::OK
        );
    }
    app.restart();
    let alice = app.login("alice").await;
    assert_eq!(cpu_points(&app, &alice, agent, "start=-5m").await.len(), 10);
    // Each agent's ring is rebuilt from the store with the reports as sent
    // (`interval_ms` is no sample, so it does not come back).
    for (id, sent) in [(agent, &reports), (other, &others)] {
        let expected: Vec<storage::model::Report> = sent
            .iter()
            .map(|r| {
                let mut r: storage::model::Report = serde_json::from_value(r.clone()).unwrap();
                r.interval_ms = None;
                r
            })
            .collect();
        let rebuilt: Vec<storage::model::Report> = app
            .state
            .ring
            .snapshot(id, T0 - 3_600_000)
            .iter()
            .map(|r| (**r).clone())
            .collect();
        assert_eq!(
            rebuilt, expected,
            "ring of agent {id} rebuilt from the store"
        );
    }
    // The active token still works after the restart.
    assert_eq!(
        ingest(&app, &token, json!({ "reports": [report(T0, 1.0)] }))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_history_parameters_are_400_naming_the_parameter() {
    let (app, alice, agent, _) = setup().await;
    for (query, param) in [
        ("start=yesterday", "start"),
        ("max_points=0", "max_points"),
        ("interval=1s", "interval"),
        ("tier=2m", "tier"),
        ("stop=-2h&start=-1h", "start"),
    ] {
        let r = app
            .call_as(
                &alice,
                Method::GET,
                &format!("/api/history/{agent}/cpu?{query}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text);
        assert!(
            r.body["error"].as_str().unwrap().starts_with(param),
            "{query}: {}",
            r.text
        );
    }
    let r = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/history/{agent}/gpu"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_bundle_is_compressed_as_accept_encoding_prefers() {
    let app = TestApp::new();
    let path = format!("/pkg/{}/ui.js", assets::BUNDLE_HASH);
    for (accept, expected) in [
        ("gzip, br", Some("br")),
        // Coding names are case-insensitive.
        ("GZIP", Some("gzip")),
        ("Br", Some("br")),
        // q=0 in any spelling refuses.
        ("br;q=0, gzip", Some("gzip")),
        ("br; q=0.0, gzip", Some("gzip")),
        ("br;Q=0.000", None),
        ("*;q=0", None),
        ("*", Some("br")),
        ("identity", None),
    ] {
        let r = app.get(&path, &[("accept-encoding", accept)]).await;
        assert_eq!(r.status, StatusCode::OK, "{accept}");
        assert_eq!(
            r.headers
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            expected,
            "{accept}"
        );
    }
}

#[tokio::test]
async fn small_answers_are_not_compressed_and_large_ones_are() {
    let (app, _alice, _agent, token) = setup().await;
    // An agent asks for gzip on every request; its ingest answer is a few
    // dozen bytes, which gzip cannot shrink, so it goes out as it is.
    let body = serde_json::to_vec(&json!({ "reports": [report(T0, 1.0)] })).unwrap();
    let response = app
        .router()
        .oneshot(
            Request::post("/api/ingest")
                .header("content-type", "application/json")
                .header("x-agent-token", &token)
                .header("accept-encoding", "gzip")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let r = Reply::read(response).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.len() < server::MIN_COMPRESSED_BYTES as usize);
    assert_eq!(r.headers.get("content-encoding"), None, "{}", r.text);
    // The API description is tens of kilobytes: compressed.
    let r = app
        .get("/api/openapi.json", &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
}
