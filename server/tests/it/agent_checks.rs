//! Checks run by an agent: assigning one to an agent (only the owner's),
//! the list the agent fetches with its token and the version in the ingest
//! answer, results in reports stored as the check's own (state, events,
//! uptime, alerts), refusals naming the field, unknown while the agent is
//! silent, reassigning both ways, the agent deleted (its checks fall back to
//! the server), and the real agent running an HTTP check against a server
//! this test starts on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};
use server::config::ServeArgs;
use storage::clock::Clock;

use crate::common::{Reply, Session, TestApp};

fn now(app: &TestApp) -> i64 {
    app.clock.now_ms()
}

async fn ingest(app: &TestApp, token: &str, results: Value) -> Reply {
    let body = json!({
        "reports": [{ "ts_ms": now(app), "interval_ms": 5000, "cpu": { "total_pct": 1.0 } }],
        "check_results": results,
    });
    app.post("/api/ingest", body, &[("x-agent-token", token)])
        .await
}

async fn agent_list(app: &TestApp, token: &str) -> Reply {
    app.call(
        Method::GET,
        "/api/agent/checks",
        None,
        &[("x-agent-token", token)],
    )
    .await
}

async fn check(app: &TestApp, who: &Session, id: u64) -> Value {
    let r = app
        .call_as(who, Method::GET, &format!("/api/checks/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn alert_events(app: &TestApp, who: &Session) -> Vec<(String, String)> {
    let r = app
        .call_as(who, Method::GET, "/api/alerts?order=asc&limit=100", None)
        .await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["metric"].as_str().unwrap().to_string(),
                e["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_agent_runs_its_owners_check_and_its_results_are_the_checks() {
    let app = TestApp::with_args(ServeArgs {
        open_registration: Some(true),
        ..Default::default()
    });
    let alice = app.register_and_login("alice").await;
    let bob = app.register_and_login("bob").await;
    let (alices_agent, _) = app.create_agent(&alice, "alice-pc").await;
    let (agent, token) = app.create_agent(&bob, "nas").await;
    // A loopback target is fine for a non-admin: the agent connects, not the server.
    let body = |runner: Value| {
        json!({ "name": "router ui", "kind": "http", "target": "http://127.0.0.1:8080/",
                "interval_s": 60, "timeout_ms": 1000, "retries": 1, "runner": runner })
    };

    // Refused: another user's agent, an unknown one (404 like a rule's
    // agent), not an id (422), unknown fields still refused.
    for (runner, status) in [
        (json!(alices_agent), StatusCode::NOT_FOUND),
        (json!(999_999), StatusCode::NOT_FOUND),
        (json!("nas"), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let r = app
            .call_as(&bob, Method::POST, "/api/checks", Some(body(runner)))
            .await;
        assert_eq!(r.status, status, "{}", r.text);
        assert!(
            r.body["error"].as_str().unwrap().starts_with("runner:"),
            "{}",
            r.text
        );
    }
    let mut extra = body(json!(agent));
    extra["runs_on"] = json!(1);
    let r = app
        .call_as(&bob, Method::POST, "/api/checks", Some(extra))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app.call_as(&bob, Method::GET, "/api/checks", None).await;
    assert_eq!(r.body, json!([]), "nothing half-saved");
    // The server still refuses loopback for a check it runs itself.
    let r = app
        .call_as(&bob, Method::POST, "/api/checks", Some(body(Value::Null)))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    let r = app
        .call_as(&bob, Method::POST, "/api/checks", Some(body(json!(agent))))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_u64().unwrap();
    assert_eq!(r.body["runner"], agent);
    assert_eq!(r.body["state"], "pending");
    let r = app
        .call_as(
            &bob,
            Method::POST,
            &format!("/api/checks/{id}/rules"),
            Some(json!({ "metric": "check_down" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The server does not run it: a forced run is refused.
    let r = app
        .call_as(&bob, Method::POST, &format!("/api/checks/{id}/run"), None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    // The agent learns its list: the version in the answer, then the list.
    let r = ingest(&app, &token, json!([])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let version = r.body["checks_version"].as_str().unwrap().to_string();
    let list = agent_list(&app, &token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["version"], version.as_str());
    assert_eq!(list.body["checks"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["checks"][0]["id"], id);
    assert_eq!(
        list.body["checks"][0]["spec"]["target"],
        "http://127.0.0.1:8080/"
    );
    let r = agent_list(&app, "sm_agent_not-a-token").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = app.call(Method::GET, "/api/agent/checks", None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // Bad results: a 422 naming the field, nothing stored.
    let result = |check: u64, ok: bool, latency: Value, error: Value| json!({ "check_id": check, "ts_ms": now(&app), "ok": ok, "latency_ms": latency, "error": error });
    let (_, alices_token) = app.create_agent(&alice, "alice-nas").await;
    let cases = [
        (
            json!([result(id + 1000, true, json!(3), Value::Null)]),
            "check_results[0].check_id",
        ),
        (
            json!([result(id, true, json!(-1), Value::Null)]),
            "check_results[0].latency_ms",
        ),
        (
            json!([
                result(id, false, Value::Null, json!("HTTP 500")),
                result(id, false, Value::Null, json!("bad\u{7}"))
            ]),
            "check_results[1].error",
        ),
        (
            Value::Array(vec![result(id, true, json!(1), Value::Null); 257]),
            "check_results:",
        ),
    ];
    for (results, field) in cases {
        let r = ingest(&app, &token, results).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert!(r.text.contains(field), "{field}: {}", r.text);
    }
    // Another agent of someone else cannot report for it.
    let r = ingest(
        &app,
        &alices_token,
        json!([result(id, true, json!(1), Value::Null)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("check_results[0].check_id"), "{}", r.text);
    assert!(check(&app, &bob, id).await["last"].is_null());

    // Down after its retries (1): the second failure, then back up.
    for _ in 0..2 {
        app.clock.advance(60_000);
        let r = ingest(
            &app,
            &token,
            json!([result(id, false, json!(4.5), json!("HTTP 500"))]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let c = check(&app, &bob, id).await;
    assert_eq!(c["state"], "down", "{c}");
    assert_eq!(c["last"]["error"], "HTTP 500");
    assert_eq!(
        alert_events(&app, &bob).await,
        [("check_down".to_string(), "firing".to_string())]
    );
    app.clock.advance(60_000);
    let r = ingest(
        &app,
        &token,
        json!([result(id, true, json!(12.0), Value::Null)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let c = check(&app, &bob, id).await;
    assert_eq!(c["state"], "up", "{c}");
    assert_eq!(c["last"]["latency_ms"], 12.0);
    let uptime = c["uptime_24h"].as_f64().unwrap();
    assert!((uptime - 100.0 / 3.0).abs() < 1e-6, "{uptime}");
    assert_eq!(alert_events(&app, &bob).await.last().unwrap().1, "resolved");
    let r = app
        .call_as(&bob, Method::GET, &format!("/api/checks/{id}/events"), None)
        .await;
    let states: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["up", "down"]);

    // A silent agent: the state is unknown (pending), not down, no event.
    app.clock.advance(10 * 60_000);
    assert_eq!(check(&app, &bob, id).await["state"], "pending");
    let r = app
        .call_as(&bob, Method::GET, &format!("/api/checks/{id}/events"), None)
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = ingest(
        &app,
        &token,
        json!([result(id, true, json!(10.0), Value::Null)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(check(&app, &bob, id).await["state"], "up");

    // Back to the server (no runner), then to the agent again.
    let mut spec = body(Value::Null);
    spec["target"] = json!("http://192.0.2.10/");
    spec.as_object_mut().unwrap().remove("runner");
    let r = app
        .call_as(
            &bob,
            Method::PUT,
            &format!("/api/checks/{id}"),
            Some(spec.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["runner"], Value::Null);
    let r = ingest(&app, &token, json!([])).await;
    assert_ne!(r.body["checks_version"], version.as_str());
    assert_eq!(agent_list(&app, &token).await.body["checks"], json!([]));
    let r = ingest(
        &app,
        &token,
        json!([result(id, true, json!(1), Value::Null)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    spec["runner"] = json!(agent);
    let r = app
        .call_as(&bob, Method::PUT, &format!("/api/checks/{id}"), Some(spec))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["runner"], agent);
    assert_eq!(agent_list(&app, &token).await.body["checks"][0]["id"], id);
    assert_eq!(app.state.catalog.check_runner(id).unwrap(), Some(agent));

    // The agent deleted: the check stays and falls back to the server.
    let r = app
        .call_as(&bob, Method::DELETE, &format!("/api/agents/{agent}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(check(&app, &bob, id).await["runner"], Value::Null);
    assert_eq!(app.state.catalog.check_runner(id).unwrap(), None);

    // The check deleted: its assignment goes with it.
    let (agent2, _) = app.create_agent(&bob, "nas2").await;
    let r = app
        .call_as(&bob, Method::POST, "/api/checks", Some(body(json!(agent2))))
        .await;
    let id2 = r.body["id"].as_u64().unwrap();
    assert_eq!(app.state.catalog.check_runner(id2).unwrap(), Some(agent2));
    let r = app
        .call_as(&bob, Method::DELETE, &format!("/api/checks/{id2}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.state.catalog.check_runner(id2).unwrap(), None);
}

/// An HTTP server on 127.0.0.1: `/health` answers a page with `all good`.
async fn health_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/health", get(|| async { "<p>all good</p>" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_agent_runs_its_http_check_and_the_result_comes_with_its_reports() {
    let dir = tempfile::tempdir().unwrap();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let app = TestApp::on_dir(dir, wall);
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    let target = health_server().await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/checks",
            Some(json!({ "name": "nas ui", "kind": "http",
                         "target": format!("http://{target}/health"),
                         "interval_s": 20, "timeout_ms": 2000, "runner": agent,
                         "http": { "keyword": "all good" } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_u64().unwrap();
    let server = app.serve().await;

    let spool = tempfile::tempdir().unwrap();
    let args = agent::config::AgentArgs {
        config: Some(spool.path().join("none.toml")),
        server: Some(format!("http://{server}")),
        token: Some(agent::config::parse_token(&token).unwrap()),
        interval: Some(Duration::from_secs(1)),
        spool_dir: Some(spool.path().join("spool")),
        no_containers: Some(true),
        no_processes: Some(true),
        no_services: Some(true),
        ..Default::default()
    };
    let config = agent::config::Config::resolve(&args).unwrap();
    let halt = Arc::new(AtomicBool::new(false));
    let agent_thread = {
        let halt = halt.clone();
        std::thread::spawn(move || agent::run::run(&config, halt))
    };

    // A real barrier: the agent's result, as the checks API shows it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = loop {
        let c = check(&app, &alice, id).await;
        if !c["last"].is_null() {
            break c;
        }
        assert!(Instant::now() < deadline, "no result from the agent: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    halt.store(true, Ordering::Relaxed);
    assert_eq!(c["state"], "up", "{c}");
    assert_eq!(c["runner"], agent);
    assert!(c["last"]["latency_ms"].as_f64().unwrap() > 0.0, "{c}");
    assert!(!c.to_string().contains("<p>"), "no body comes back: {c}");
    tokio::task::spawn_blocking(move || agent_thread.join().unwrap().unwrap())
        .await
        .unwrap();
}
