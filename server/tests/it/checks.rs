//! Uptime checks: every kind against real servers this test starts on
//! loopback (HTTP with a 500, a slow path, a keyword, a redirect chain, a
//! self-signed HTTPS server; a TCP listener opened and closed; DNS; ping),
//! down after retries and back up with events, uptime from the engine, the
//! outbound guard for non-admins (directly, by a name, by a redirect), bad
//! input naming the field, per-user isolation and the limit, and the
//! format-3 upgrade. Runs are started with `POST /api/checks/{id}/run`,
//! after the first scheduled run has finished (a real barrier: its result).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use server::config::ServeArgs;
use storage::clock::Clock;

use crate::common::{Session, T0, TestApp};

const BODY_SECRET: &str = "INTERNAL-BODY-TEXT all systems go";

/// An HTTP server on `ip` (port 0): `/ok`, `/500`, `/slow` (3 s), a chain
/// `/r1` → `/r2` → `/ok`, and `/out?to=URL` redirecting anywhere.
async fn http_server(ip: &str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let redirect = |to: String| {
        let mut r = StatusCode::FOUND.into_response();
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_str(&to).unwrap());
        r
    };
    let app = axum::Router::new()
        .route("/ok", get(|| async { BODY_SECRET }))
        .route(
            "/500",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, BODY_SECRET) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                BODY_SECRET
            }),
        )
        .route("/r1", get(move || async move { redirect("/r2".into()) }))
        .route("/r2", get(move || async move { redirect("/ok".into()) }))
        .route(
            "/out",
            get(
                move |q: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                    redirect(q.get("to").cloned().unwrap_or_default())
                },
            ),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An HTTPS server on 127.0.0.1 with a self-signed certificate for
/// `localhost` / 127.0.0.1 that expires 2026-01-11 (ten days after the
/// test clock's start); answers every request with 200 `ok`.
fn https_server() -> SocketAddr {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2026, 1, 11);
    let cert = params.self_signed(&key).unwrap();
    let chain = vec![cert.der().clone()];
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut reader = BufReader::new(&mut tls);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
                let _ = tls.flush();
            });
        }
    });
    addr
}

async fn app() -> (TestApp, Session, Session) {
    app_with(|_| {}).await
}

/// `alice` is the admin, `bob` an ordinary user.
async fn app_with(tweak: impl FnOnce(&mut ServeArgs)) -> (TestApp, Session, Session) {
    let mut args = ServeArgs {
        open_registration: Some(true),
        ..Default::default()
    };
    tweak(&mut args);
    let app = TestApp::with_args(args);
    let alice = app.register_and_login("alice").await;
    let bob = app.register_and_login("bob").await;
    (app, alice, bob)
}

fn spec(kind: &str, target: &str) -> Value {
    json!({ "name": format!("{kind} check"), "kind": kind, "target": target, "interval_s": 3600, "timeout_ms": 2000 })
}

/// Creates a check and waits until its first scheduled run has finished;
/// the next one is an hour away, so runs after that are the test's own.
async fn create(app: &TestApp, who: &Session, body: Value) -> u64 {
    let r = app
        .call_as(who, Method::POST, "/api/checks", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .call_as(who, Method::GET, &format!("/api/checks/{id}"), None)
            .await;
        if !r.body["last"].is_null() {
            return id;
        }
        assert!(Instant::now() < deadline, "the first run never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(app: &TestApp, who: &Session, id: u64) -> Value {
    let r = app
        .call_as(who, Method::POST, &format!("/api/checks/{id}/run"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains("INTERNAL-BODY-TEXT"), "{}", r.text);
    r.body
}

async fn get_check(app: &TestApp, who: &Session, id: u64) -> Value {
    app.call_as(who, Method::GET, &format!("/api/checks/{id}"), None)
        .await
        .body
}

async fn run_spec(app: &TestApp, who: &Session, body: Value) -> Value {
    let id = create(app, who, body).await;
    run(app, who, id).await
}

fn http(url: String, options: Value) -> Value {
    let mut s = spec("http", &url);
    s["http"] = options;
    s
}

#[tokio::test]
async fn http_checks_judge_status_keyword_timeout_and_redirects() {
    let (app, alice, _) = app().await;
    let addr = http_server("127.0.0.1").await;
    let url = |p: &str| format!("http://{addr}{p}");

    let ok = run_spec(
        &app,
        &alice,
        http(url("/ok"), json!({"keyword": "all systems go"})),
    )
    .await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(ok["latency_ms"].as_f64().unwrap() > 0.0);

    let r = run_spec(
        &app,
        &alice,
        http(url("/ok"), json!({"keyword": "maintenance"})),
    )
    .await;
    assert_eq!(r["error"], "keyword not found", "{r}");
    let r = run_spec(
        &app,
        &alice,
        http(
            url("/ok"),
            json!({"keyword": "systems", "keyword_absent": true}),
        ),
    )
    .await;
    assert_eq!(r["error"], "keyword found", "{r}");

    let r = run_spec(&app, &alice, http(url("/500"), json!({}))).await;
    assert_eq!(
        (r["ok"].clone(), r["error"].clone()),
        (json!(false), json!("HTTP 500"))
    );
    let r = run_spec(
        &app,
        &alice,
        http(url("/500"), json!({"status_min": 500, "status_max": 599})),
    )
    .await;
    assert_eq!(r["ok"], true, "an expected 500 is up: {r}");

    let mut slow = http(url("/slow"), json!({}));
    slow["timeout_ms"] = json!(300);
    let started = Instant::now();
    let r = run_spec(&app, &alice, slow).await;
    assert_eq!(r["error"], "timeout", "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout held"
    );

    let r = run_spec(&app, &alice, http(url("/r1"), json!({}))).await;
    assert_eq!(r["ok"], true, "redirects followed to /ok: {r}");
    let r = run_spec(
        &app,
        &alice,
        http(
            url("/r1"),
            json!({"follow_redirects": false, "status_max": 299}),
        ),
    )
    .await;
    assert_eq!(r["error"], "HTTP 302", "{r}");

    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = run_spec(&app, &alice, http(format!("http://{closed}/"), json!({}))).await;
    assert_eq!(r["error"], "connection refused", "{r}");
}

#[tokio::test]
async fn https_checks_read_days_to_expiry_and_ignore_tls_errors_only_when_asked() {
    let (app, alice, _) = app().await;
    let addr = https_server();
    let url = format!("https://127.0.0.1:{}/", addr.port());

    let r = run_spec(&app, &alice, http(url.clone(), json!({}))).await;
    assert_eq!(
        r["error"], "TLS error: certificate not trusted",
        "self-signed is refused: {r}"
    );
    let days = r["cert_days"].as_f64().expect("days read even so");
    assert!((days - 10.0).abs() < 0.01, "{days}");

    let id = create(&app, &alice, http(url, json!({"ignore_tls_errors": true}))).await;
    let r = run(&app, &alice, id).await;
    assert_eq!(r["ok"], true, "{r}");
    assert!((r["cert_days"].as_f64().unwrap() - 10.0).abs() < 0.01);
    // Stored as a series of the check.
    let engine = app.state.engine();
    let q = storage::tsdb::QueryRequest {
        agent: server::checks::series_id(id),
        metrics: vec![server::checks::SERIES_CERT_DAYS.into()],
        label_filter: None,
        start_ms: T0 - 60_000,
        stop_ms: T0 + 60_000,
        tier: None,
        interval_ms: None,
        max_points: 0,
    };
    let stored = engine.query(&q).unwrap();
    assert!(!stored.series.is_empty() && !stored.series[0].points.is_empty());
}

#[tokio::test]
async fn tcp_checks_see_a_listener_open_and_closed() {
    let (app, alice, _) = app().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let id = create(&app, &alice, spec("tcp", &format!("127.0.0.1:{port}"))).await;
    assert_eq!(run(&app, &alice, id).await["ok"], true);
    drop(listener);
    let r = run(&app, &alice, id).await;
    assert_eq!(r["error"], "connection refused", "{r}");
}

#[tokio::test]
async fn dns_checks_resolve_and_compare_the_expected_address() {
    let (app, alice, _) = app().await;
    let mut s = spec("dns", "localhost");
    s["dns_expected"] = json!("127.0.0.1");
    assert_eq!(run_spec(&app, &alice, s.clone()).await["ok"], true);
    s["dns_expected"] = json!("192.0.2.1");
    let r = run_spec(&app, &alice, s).await;
    assert_eq!(r["error"], "expected address not among the answers", "{r}");
}

#[tokio::test]
async fn ping_of_127_0_0_1_answers_or_says_which_setting_refuses_it() {
    let (app, alice, _) = app().await;
    let r = run_spec(&app, &alice, spec("ping", "127.0.0.1")).await;
    if r["ok"] == true {
        assert!(r["latency_ms"].as_f64().unwrap() >= 0.0);
    } else {
        eprintln!("ping not possible here (net.ipv4.ping_group_range): {r}");
        assert_eq!(r["error"], server::checks::ping::NOT_PERMITTED, "{r}");
    }
}

#[tokio::test]
async fn a_check_goes_down_after_its_retries_and_back_up_with_events() {
    let (app, alice, _) = app().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut s = spec("tcp", &addr.to_string());
    s["retries"] = json!(2);
    let id = create(&app, &alice, s).await;
    assert_eq!(get_check(&app, &alice, id).await["state"], "up");
    drop(listener);
    for failures in 1..=2 {
        app.clock.advance(60_000);
        run(&app, &alice, id).await;
        let c = get_check(&app, &alice, id).await;
        assert_eq!(
            (c["state"].clone(), c["failures"].clone()),
            (json!("up"), json!(failures))
        );
    }
    app.clock.advance(60_000);
    run(&app, &alice, id).await;
    let c = get_check(&app, &alice, id).await;
    assert_eq!(c["state"], "down", "{c}");
    let down_at = app.clock.now_ms();

    let _listener = TcpListener::bind(addr).unwrap();
    app.clock.advance(120_000);
    assert_eq!(run(&app, &alice, id).await["ok"], true);
    assert_eq!(get_check(&app, &alice, id).await["state"], "up");

    let events = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/checks/{id}/events"),
            None,
        )
        .await
        .body;
    let states: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["up", "down", "up"], "{events}");
    assert_eq!(events[0]["previous_ms"], 120_000, "down lasted two minutes");
    assert_eq!(events[1]["ts_ms"], down_at);
    assert_eq!(events[1]["error"], "connection refused");

    // After a restart the check is still down-then-up, with no new event.
    let mut app = app;
    app.restart();
    let alice = app.login("alice").await;
    let c = get_check(&app, &alice, id).await;
    assert_eq!(c["state"], "up", "{c}");
}

#[tokio::test]
async fn uptime_over_ranges_and_days_comes_from_the_engine() {
    let (app, alice, _) = app().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let id = create(&app, &alice, spec("tcp", &addr.to_string())).await;
    for _ in 0..2 {
        app.clock.advance(60_000);
        run(&app, &alice, id).await;
    }
    drop(listener);
    app.clock.advance(60_000);
    run(&app, &alice, id).await;
    // 3 up (the first scheduled run and two), 1 down.
    let u = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/checks/{id}/uptime"),
            None,
        )
        .await
        .body;
    assert_eq!(u["h24"], 75.0, "{u}");
    assert_eq!(u["y1"], 75.0, "{u}");
    let days = u["days"].as_array().unwrap();
    assert_eq!(days.len(), 90);
    assert_eq!(days[89], 75.0, "{u}");
    assert!(days[..89].iter().all(Value::is_null));
    let h = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/checks/{id}/history?start=-1h&interval=1m"),
            None,
        )
        .await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    let points = h.body["points"].as_array().unwrap();
    assert_eq!(
        points.iter().filter(|p| p["up_pct"] == 100.0).count(),
        3,
        "{}",
        h.text
    );
    assert_eq!(points.iter().filter(|p| p["up_pct"] == 0.0).count(), 1);
    let list = app.call_as(&alice, Method::GET, "/api/checks", None).await;
    assert_eq!(list.body[0]["uptime_24h"], 75.0, "{}", list.text);
}

/// A name of this machine (other than `localhost`) that resolves only to
/// loopback, if `/etc/hosts` has one.
fn loopback_name() -> Option<String> {
    use std::net::ToSocketAddrs;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    [
        hostname.trim(),
        "vm",
        "runsc",
        "localhost.localdomain",
        "ip6-localhost",
    ]
    .into_iter()
    .filter(|n| !n.is_empty())
    .find(|n| {
        (*n, 80)
            .to_socket_addrs()
            .map(|a| {
                let a: Vec<_> = a.collect();
                !a.is_empty() && a.iter().all(|a| a.ip().is_loopback())
            })
            .unwrap_or(false)
    })
    .map(str::to_string)
}

#[tokio::test]
async fn a_non_admin_cannot_reach_loopback_directly_by_name_or_by_redirect() {
    // 127.0.0.2 is opened to everyone by the allow-list; 127.0.0.1 is not.
    let (app, alice, bob) = app_with(|a| a.outbound_allow = vec!["127.0.0.2/32".into()]).await;
    let inner = http_server("127.0.0.1").await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = listener.local_addr().unwrap().port();
    let mut refused = vec![
        spec("http", &format!("http://{inner}/ok")),
        spec("http", &format!("http://localhost:{}/ok", inner.port())),
        spec("http", &format!("http://2130706433:{}/ok", inner.port())),
        spec("tcp", &format!("127.0.0.1:{tcp_port}")),
        spec("tcp", &format!("localhost:{tcp_port}")),
        spec("ping", "127.0.0.1"),
        spec("http", "http://169.254.169.254/latest/meta-data/"),
    ];
    match loopback_name() {
        Some(name) => {
            refused.push(spec("http", &format!("http://{name}:{}/ok", inner.port())));
            refused.push(spec("tcp", &format!("{name}:{tcp_port}")));
        }
        None => eprintln!("no name of this machine resolves to loopback: DNS case not tried"),
    }
    for body in refused {
        let r = app
            .call_as(&bob, Method::POST, "/api/checks", Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        let error = r.body["error"].as_str().unwrap();
        assert!(
            error.starts_with("target: refused by the outbound guard:"),
            "{body}: {error}"
        );
    }
    assert_eq!(
        app.call_as(&bob, Method::GET, "/api/checks", None)
            .await
            .body,
        json!([]),
        "nothing half-saved"
    );

    // Through a redirect: the hop to 127.0.0.1 fails the check, unfollowed.
    let outer = http_server("127.0.0.2").await;
    let to = format!("http://{inner}/ok");
    let url = format!("http://{outer}/out?to={to}");
    let r = run_spec(&app, &bob, http(url.clone(), json!({}))).await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(
        r["error"], "refused by the outbound guard: loopback address",
        "{r}"
    );
    // The admin may.
    assert_eq!(
        run_spec(&app, &alice, http(url, json!({}))).await["ok"],
        true
    );
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_saved() {
    let (app, _alice, bob) = app_with(|a| a.max_checks_per_user = Some(2)).await;
    let good = spec("http", "https://example.com/health");
    let with = |field: &str, value: Value| {
        let mut s = good.clone();
        s[field] = value;
        s
    };
    let cases = [
        (with("target", json!("not a url")), "target:"),
        (with("target", json!("ftp://example.com/")), "target:"),
        (
            with(
                "target",
                json!(format!("https://example.com/{}", "a".repeat(3000))),
            ),
            "target:",
        ),
        (with("interval_s", json!(10)), "interval_s:"),
        (with("interval_s", json!(3601)), "interval_s:"),
        (with("timeout_ms", json!(50)), "timeout_ms:"),
        (with("retries", json!(11)), "retries:"),
        (with("name", json!("")), "name:"),
        (with("name", json!("bad\u{202e}name")), "name:"),
        (
            with("http", json!({"keyword": "k".repeat(1_000_000)})),
            "http.keyword:",
        ),
        (with("http", json!({"method": "BREW"})), "http.method:"),
        (
            with("http", json!({"status_min": 400, "status_max": 200})),
            "http.status_max:",
        ),
        (
            with("http", json!({"headers": [{"name": "X-Token"}]})),
            "http.headers[0].value:",
        ),
        (
            with(
                "http",
                json!({"headers": [{"name": "bad header", "value": "x"}]}),
            ),
            "http.headers[0].name:",
        ),
        (with("dns_expected", json!("1.2.3.4")), "dns_expected:"),
        (spec("tcp", "example.com"), "target:"),
        (spec("tcp", "example.com:0"), "target:"),
        (spec("dns", "1.2.3.4"), "target:"),
        (spec("ping", "exa mple.com"), "target:"),
    ];
    for (body, field) in cases {
        let r = app
            .call_as(&bob, Method::POST, "/api/checks", Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field} {}",
            r.text
        );
        assert!(
            r.body["error"].as_str().unwrap().starts_with(field),
            "{field}: {}",
            r.text
        );
        assert_eq!(r.body["code"], "invalid");
    }
    let r = app
        .call_as(
            &bob,
            Method::POST,
            "/api/checks",
            Some(with("kind", json!("smtp"))),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("kind: unknown variant"), "{}", r.text);
    assert_eq!(
        app.call_as(&bob, Method::GET, "/api/checks", None)
            .await
            .body,
        json!([])
    );

    // The per-user limit (a DNS check needs no network to be saved).
    for _ in 0..2 {
        let r = app
            .call_as(
                &bob,
                Method::POST,
                "/api/checks",
                Some(spec("dns", "example.com")),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app
        .call_as(
            &bob,
            Method::POST,
            "/api/checks",
            Some(spec("dns", "example.com")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("max_checks_per_user"), "{}", r.text);
}

#[tokio::test]
async fn someone_elses_check_is_a_404_and_header_values_are_never_shown() {
    let (app, alice, bob) = app().await;
    let mut s = spec("dns", "example.com");
    s["enabled"] = json!(false);
    let r = app
        .call_as(&bob, Method::POST, "/api/checks", Some(s))
        .await;
    let id = r.body["id"].as_u64().unwrap();
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::PUT, "", Some(spec("dns", "example.org"))),
        (Method::DELETE, "", None),
        (Method::POST, "/run", None),
        (Method::GET, "/uptime", None),
        (Method::GET, "/history", None),
        (Method::GET, "/events", None),
    ] {
        let path = format!("/api/checks/{id}{suffix}");
        let r = app.call_as(&alice, method.clone(), &path, body).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            r.text
        );
    }
    assert_eq!(
        app.call_as(&alice, Method::GET, "/api/checks/x", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Header values: stored, never shown, kept by `null` on replace.
    let mut h = http(
        "https://example.com/".into(),
        json!({"headers": [{"name": "Authorization", "value": "Bearer s3cret-token"}]}),
    );
    h["enabled"] = json!(false);
    let r = app
        .call_as(&bob, Method::POST, "/api/checks", Some(h.clone()))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(!r.text.contains("s3cret"), "{}", r.text);
    let hid = r.body["id"].as_u64().unwrap();
    h["http"]["headers"][0]["value"] = Value::Null;
    h["name"] = json!("renamed");
    let r = app
        .call_as(&bob, Method::PUT, &format!("/api/checks/{hid}"), Some(h))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["spec"]["http"]["headers"][0]["name"],
        "authorization"
    );
    assert!(r.body["spec"]["http"]["headers"][0]["value"].is_null());
    let stored = app.state.catalog.check(hid).unwrap().unwrap();
    assert_eq!(
        stored.spec.http.unwrap().headers[0].value.as_deref(),
        Some("Bearer s3cret-token")
    );
    let list = app.call_as(&bob, Method::GET, "/api/checks", None).await;
    assert!(!list.text.contains("s3cret"));

    let r = app
        .call_as(&bob, Method::DELETE, &format!("/api/checks/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(app.state.checks.status(id).is_none());
}

/// A format-3 directory (the format-1 fixture, made before checks existed,
/// marked 3) is upgraded to the current format and takes checks.
#[tokio::test]
async fn a_format_3_directory_is_upgraded_and_takes_checks() {
    let dir = tempfile::tempdir().unwrap();
    crate::ops::unpack(
        std::path::Path::new(crate::ops::FORMAT_1_FIXTURE),
        dir.path(),
    );
    std::fs::write(dir.path().join("FORMAT"), "statusmonitor-data 3\n").unwrap();
    let clock = Arc::new(storage::clock::ManualClock::new(T0));
    let state = TestApp::open_state(dir.path(), ServeArgs::default(), clock);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("FORMAT")).unwrap(),
        format!(
            "statusmonitor-data {}\n",
            server::ops::format::DATA_FORMAT_VERSION
        )
    );
    assert_eq!(state.catalog.all_checks().unwrap(), vec![]);
    let record = state
        .catalog
        .create_check(
            1,
            &serde_json::from_value(spec("dns", "example.com")).unwrap(),
            T0,
            None,
        )
        .unwrap()
        .unwrap();
    assert_eq!(state.catalog.check(record.id).unwrap(), Some(record));
}

async fn alert_events(app: &TestApp, who: &Session) -> Vec<Value> {
    let r = app
        .call_as(who, Method::GET, "/api/alerts?order=asc&limit=1000", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn check_rules_fire_on_down_slow_and_expiring_and_resolve_when_up() {
    let (app, alice, bob) = app().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut s = spec("tcp", &addr.to_string());
    s["name"] = json!("nas ssh");
    let id = create(&app, &alice, s).await;
    let rules = format!("/api/checks/{id}/rules");
    let r = app
        .call_as(
            &alice,
            Method::POST,
            &rules,
            Some(json!({"metric": "check_down"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Slower than 0 ms: any up run breaches.
    let r = app
        .call_as(
            &alice,
            Method::POST,
            &rules,
            Some(json!({"metric": "check_latency_ms", "threshold": 0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let latency_rule = r.body["id"].as_u64().unwrap();
    // Refusals: an agent metric here, a check metric on /api/rules, not mine.
    let r = app
        .call_as(
            &alice,
            Method::POST,
            &rules,
            Some(json!({"metric": "cpu_pct", "threshold": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let (agent, _) = app.create_agent(&alice, "nas").await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/rules",
            Some(json!({"agent_id": agent, "metric": "check_down"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("metric:"), "{}", r.text);
    let r = app
        .call_as(
            &bob,
            Method::POST,
            &rules,
            Some(json!({"metric": "check_down"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    app.clock.advance(60_000);
    run(&app, &alice, id).await;
    let events = alert_events(&app, &alice).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["metric"], "check_latency_ms");
    assert_eq!(events[0]["state"], "firing");
    assert_eq!(events[0]["rule_id"], latency_rule);

    drop(listener);
    app.clock.advance(60_000);
    run(&app, &alice, id).await;
    let events = alert_events(&app, &alice).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last["metric"].clone(), last["state"].clone()),
        (json!("check_down"), json!("firing"))
    );
    assert_eq!(last["agent_name"], "nas ssh");

    let _listener = TcpListener::bind(addr).unwrap();
    app.clock.advance(60_000);
    run(&app, &alice, id).await;
    let events = alert_events(&app, &alice).await;
    let down: Vec<&str> = events
        .iter()
        .filter(|e| e["metric"] == "check_down")
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(down, ["firing", "resolved"], "{events:?}");

    // A certificate ten days from expiry and a rule at 14 days.
    let tls = https_server();
    let mut h = http(
        format!("https://127.0.0.1:{}/", tls.port()),
        json!({"ignore_tls_errors": true}),
    );
    h["name"] = json!("web");
    let web = create(&app, &alice, h).await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            &format!("/api/checks/{web}/rules"),
            Some(json!({"metric": "check_cert_days", "threshold": 14})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    run(&app, &alice, web).await;
    let events = alert_events(&app, &alice).await;
    let cert = events
        .iter()
        .find(|e| e["metric"] == "check_cert_days")
        .expect("cert alert");
    assert_eq!(cert["state"], "firing");
    assert!(
        (cert["value"].as_f64().unwrap() - 10.0).abs() < 0.01,
        "{cert}"
    );

    // Deleting the check deletes its rules and their history.
    let r = app
        .call_as(&alice, Method::DELETE, &format!("/api/checks/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let left = app.call_as(&alice, Method::GET, "/api/rules", None).await;
    assert_eq!(left.body.as_array().unwrap().len(), 1, "{}", left.text);
    assert!(
        alert_events(&app, &alice)
            .await
            .iter()
            .all(|e| e["metric"] == "check_cert_days")
    );
}

/// A status page with a check (target not shown) and an agent: the page,
/// its JSON and its badges show the chosen names and states only.
#[tokio::test]
async fn a_status_page_shows_only_what_was_ticked() {
    let (app, alice, bob) = app().await;
    let addr = http_server("127.0.0.1").await;
    let secret_url = format!("http://{addr}/ok?very-secret-path");
    let mut s = http(secret_url.clone(), json!({}));
    s["name"] = json!("internal-name-of-check");
    let check = create(&app, &alice, s).await;
    let (agent, token) = app.create_agent(&alice, "internal-agent-name").await;
    let report = json!({
        "host": { "hostname": "secret-hostname.lan", "os": "Debian" },
        "reports": [crate::common::report(T0, 42.0)],
    });
    let r = app
        .post("/api/ingest", report, &[("x-agent-token", &token)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let page = json!({
        "slug": "home-lab",
        "title": "Home <lab>",
        "description": "Our services & more",
        "sections": [{"title": "Web", "items": [
            {"kind": "check", "id": check, "label": "Website"},
            {"kind": "agent", "id": agent, "label": "NAS", "show_metrics": true}
        ]}]
    });
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/status-pages",
            Some(page.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let page_id = r.body["id"].as_u64().unwrap();

    // Taken, unsafe, someone else's items: refused naming the field.
    let r = app
        .call_as(&bob, Method::POST, "/api/status-pages", Some(page.clone()))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bob cannot show alice's check: {}",
        r.text
    );
    assert!(r.text.contains("sections[0].items[0].id"), "{}", r.text);
    let mut other = page.clone();
    other["sections"] = json!([]);
    let r = app
        .call_as(&bob, Method::POST, "/api/status-pages", Some(other.clone()))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("slug"), "{}", r.text);
    for bad in ["Home", "a/b", "-x", "", "x.json", &"a".repeat(49)] {
        other["slug"] = json!(bad);
        let r = app
            .call_as(&bob, Method::POST, "/api/status-pages", Some(other.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
        assert!(
            r.body["error"].as_str().unwrap().starts_with("slug:"),
            "{}",
            r.text
        );
    }
    let r = app
        .call_as(
            &bob,
            Method::GET,
            &format!("/api/status-pages/{page_id}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let html = app.get("/status/home-lab", &[]).await;
    assert_eq!(html.status, StatusCode::OK);
    assert_eq!(html.headers["cache-control"], "public, max-age=5");
    assert!(
        html.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert!(
        html.text.contains("Home &lt;lab&gt;") && html.text.contains("Website"),
        "{}",
        html.text
    );
    assert!(
        html.text.contains("NAS") && html.text.contains("CPU 42"),
        "{}",
        html.text
    );
    assert!(!html.text.contains("<script"), "no script");
    let json_page = app.get("/status/home-lab.json", &[]).await;
    assert_eq!(json_page.status, StatusCode::OK, "{}", json_page.text);
    assert_eq!(json_page.body["sections"][0]["items"][0]["state"], "up");
    let badge = app.get("/status/home-lab/badge/1.svg", &[]).await;
    assert_eq!(badge.headers["content-type"], "image/svg+xml");
    assert!(
        badge.text.contains("Website") && badge.text.contains("up"),
        "{}",
        badge.text
    );
    assert_eq!(
        app.get("/status/home-lab/badge/3.svg", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/status/nope", &[]).await.status,
        StatusCode::NOT_FOUND
    );

    for text in [&html.text, &json_page.text, &badge.text] {
        for secret in [
            secret_url.as_str(),
            "very-secret-path",
            &addr.to_string(),
            "secret-hostname",
            "internal-name-of-check",
            "internal-agent-name",
            "Debian",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(
            !text.contains(&format!("\"id\":{check}")) && !text.contains("\"id\""),
            "{text}"
        );
    }

    // "Show target" ticked: now the URL is shown (escaped in HTML).
    let mut shown = page.clone();
    shown["sections"][0]["items"][0]["show_target"] = json!(true);
    let r = app
        .call_as(
            &alice,
            Method::PUT,
            &format!("/api/status-pages/{page_id}"),
            Some(shown),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let json_page = app.get("/status/home-lab.json", &[]).await;
    assert_eq!(
        json_page.body["sections"][0]["items"][0]["target"],
        secret_url
    );

    // Incidents with updates, resolved.
    let r = app
        .call_as(
            &alice,
            Method::POST,
            &format!("/api/status-pages/{page_id}/incidents"),
            Some(json!({"title": "Disk <full>", "message": "Looking into it"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let incident = r.body["incidents"][0]["id"].as_u64().unwrap();
    let r = app
        .call_as(
            &alice,
            Method::POST,
            &format!("/api/status-pages/{page_id}/incidents/{incident}"),
            Some(json!({"message": "Fixed", "resolved": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let html = app.get("/status/home-lab", &[]).await.text;
    assert!(
        html.contains("Disk &lt;full&gt;") && html.contains("Fixed") && html.contains("Resolved"),
        "{html}"
    );
}

#[tokio::test]
async fn a_private_status_page_needs_its_key_and_is_never_cached() {
    let (app, alice, _) = app().await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/status-pages",
            Some(json!({"slug": "family", "title": "Family", "private": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_string();
    let id = r.body["id"].as_u64().unwrap();
    let again = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/status-pages/{id}"),
            None,
        )
        .await;
    assert!(again.body["key"].is_null() && !again.text.contains(&key));
    let r = app.get("/status/family", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.text.contains("name=\"key\"") && !r.text.contains("Family</h1>"),
        "{}",
        r.text
    );
    assert_eq!(
        app.get("/status/family.json?key=wrong", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app.get(&format!("/status/family?key={key}"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["cache-control"], "private, no-store");
    assert!(r.text.contains("Family"));
}

#[tokio::test]
async fn maintenance_mutes_a_checks_alerts_and_the_page_says_so() {
    let (app, alice, _) = app().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let id = create(&app, &alice, spec("tcp", &addr.to_string())).await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            &format!("/api/checks/{id}/rules"),
            Some(json!({"metric": "check_down"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let now = app.clock.now_ms();
    let page = json!({
        "slug": "lab", "title": "Lab",
        "sections": [{"title": "", "items": [{"kind": "check", "id": id}]}],
        "maintenance": [{"title": "Disk swap", "start_ms": now, "end_ms": now + 120_000}]
    });
    let r = app
        .call_as(&alice, Method::POST, "/api/status-pages", Some(page))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    drop(listener);
    app.clock.advance(60_000);
    run(&app, &alice, id).await;
    assert_eq!(get_check(&app, &alice, id).await["state"], "down");
    assert!(
        alert_events(&app, &alice).await.is_empty(),
        "muted by the window"
    );
    let html = app.get("/status/lab", &[]).await.text;
    assert!(
        html.contains("Ongoing maintenance: Disk swap")
            && html.contains("Alerts for these services are paused"),
        "{html}"
    );
    assert!(html.contains(">Maintenance<"), "{html}");

    // After the window the same failure fires.
    app.clock.advance(120_000);
    run(&app, &alice, id).await;
    let events = alert_events(&app, &alice).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["state"], "firing");
}
