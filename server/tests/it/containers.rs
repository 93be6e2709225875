//! What runs on a machine: containers stored as series by name (a
//! recreated container continues its history), the newest list with its
//! counts, processes and services live only, and hostile reports refused
//! whole.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Session, T0, TestApp, report};

async fn setup() -> (TestApp, Session, u64, String) {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    (app, alice, agent, token)
}

fn container(id: &str, name: &str, state: &str, health: Option<&str>, cpu: f64) -> Value {
    let mut c = json!({
        "id": id, "name": name, "image": "nginx:1.27", "state": state, "restarts": 0,
        "mem_used_bytes": 50_000_000u64, "mem_limit_bytes": 200_000_000u64
    });
    if state == "running" {
        c["cpu_pct"] = json!(cpu);
        c["net_rx_bps"] = json!(1200);
    }
    if let Some(h) = health {
        c["health"] = json!(h);
    }
    c
}

fn with_running(ts: i64, containers: Vec<Value>) -> Value {
    let mut r = report(ts, 10.0);
    r["containers"] = Value::Array(containers);
    r["processes"] = json!([{ "pid": 42, "name": "postgres", "user": "postgres",
                              "cpu_pct": 12.5, "rss_bytes": 104857600u64 }]);
    r["services"] = json!([{ "unit": "a.service", "active": "active", "sub": "running" },
                           { "unit": "nginx.service", "active": "failed", "sub": "failed" }]);
    r
}

async fn ingest(app: &TestApp, token: &str, reports: Vec<Value>) -> crate::common::Reply {
    app.post(
        "/api/ingest",
        json!({ "reports": reports }),
        &[("x-agent-token", token)],
    )
    .await
}

#[tokio::test]
async fn containers_are_kept_by_name_live_and_in_history() {
    let (app, alice, agent, token) = setup().await;
    let reports = vec![
        with_running(
            T0 - 10_000,
            vec![
                container("aaa1", "web", "running", Some("healthy"), 1.0),
                container("ddd1", "db", "running", None, 5.0),
            ],
        ),
        // `docker compose up` recreated web: a new id, the same name.
        with_running(
            T0 - 5_000,
            vec![
                container("aaa2", "web", "running", Some("unhealthy"), 2.0),
                container("ddd1", "db", "running", None, 6.0),
            ],
        ),
        with_running(
            T0,
            vec![
                container("aaa2", "web", "running", Some("unhealthy"), 3.0),
                container("ddd1", "db", "exited", None, 0.0),
            ],
        ),
    ];
    let r = ingest(&app, &token, reports).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let now = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/agents/{agent}/containers"),
            None,
        )
        .await;
    assert_eq!(now.status, StatusCode::OK, "{}", now.text);
    assert_eq!(now.body["ts_ms"], json!(T0));
    assert_eq!(
        now.body["counts"],
        json!({ "total": 2, "running": 1, "unhealthy": 1, "stopped": 1 })
    );
    assert_eq!(now.body["containers"][1]["name"], "web");
    assert_eq!(now.body["containers"][1]["id"], "aaa2");
    assert_eq!(now.body["containers"][1]["health"], "unhealthy");
    assert_eq!(now.body["processes"][0]["name"], "postgres");
    assert_eq!(
        now.body["services"][0]["unit"], "nginx.service",
        "failed first"
    );
    assert_eq!(now.body["failed_services"], 1);

    let range = format!("start={}&stop={}", T0 - 60_000, T0 + 1);
    let web = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/history/{agent}/containers?name=web&{range}"),
            None,
        )
        .await;
    assert_eq!(web.status, StatusCode::OK, "{}", web.text);
    let series = web.body["series"].as_array().unwrap();
    assert!(series.iter().all(|s| s["labels"]["name"] == "web"));
    let cpu = series
        .iter()
        .find(|s| s["metric"] == "container.cpu_pct")
        .expect("web's CPU");
    let values: Vec<f64> = cpu["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .collect();
    assert_eq!(values, [1.0, 2.0, 3.0], "one history across the recreation");

    let all = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/history/{agent}/containers?{range}"),
            None,
        )
        .await;
    let running: Vec<(String, Vec<f64>)> = all.body["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["metric"] == "container.running")
        .map(|s| {
            (
                s["labels"]["name"].as_str().unwrap().to_owned(),
                s["points"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p[1].as_f64().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert!(
        running.contains(&("db".into(), vec![1.0, 1.0, 0.0])),
        "{running:?}"
    );
    assert!(
        running.contains(&("web".into(), vec![1.0, 1.0, 1.0])),
        "{running:?}"
    );

    // Processes and services are not series.
    let cpu_hist = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/history/{agent}/cpu?{range}"),
            None,
        )
        .await;
    assert!(!cpu_hist.text.contains("postgres"));
}

#[tokio::test]
async fn bad_container_queries_are_400_with_the_parameter() {
    let (app, alice, agent, _) = setup().await;
    for (query, param) in [
        ("name=", "name"),
        ("name=a%07b", "name"),
        ("start=yesterday", "start"),
        ("colour=red", "colour"),
    ] {
        let r = app
            .call_as(
                &alice,
                Method::GET,
                &format!("/api/history/{agent}/containers?{query}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text);
        assert!(
            r.body["error"].as_str().unwrap().contains(param),
            "{}",
            r.text
        );
    }
    // An agent that reports no containers: none, not zero.
    let r = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/agents/{agent}/containers"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["containers"], Value::Null);
    assert_eq!(r.body["ts_ms"], Value::Null);
}

/// 10,000 containers, an over-long name, a name with control characters:
/// 422 naming the field, and nothing of the batch stored. (A 1 MB name is
/// past the 1 MiB body limit: 413 before any parsing.)
#[tokio::test]
async fn hostile_reports_are_refused_whole() {
    let (app, alice, agent, token) = setup().await;
    let many: Vec<Value> = (0..10_000)
        .map(|i| json!({ "id": "", "name": format!("c{i}"), "state": "running" }))
        .collect();
    let long = container("x", &"n".repeat(300_000), "running", None, 1.0);
    let control = container("x", "web\u{1b}[31m", "running", None, 1.0);
    for (containers, field) in [
        (many, "reports[1].containers"),
        (vec![long], "reports[1].containers[0].name"),
        (vec![control], "reports[1].containers[0].name"),
    ] {
        let good = with_running(T0 - 5_000, vec![]);
        let bad = with_running(T0, containers);
        let r = ingest(&app, &token, vec![good, bad]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(
            r.body["error"].as_str().unwrap().starts_with(field),
            "{field}: {}",
            r.body["error"]
        );
    }
    let huge = container("x", &"n".repeat(1 << 20), "running", None, 1.0);
    let r = ingest(&app, &token, vec![with_running(T0, vec![huge])]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/agents/{agent}/containers"),
            None,
        )
        .await;
    assert_eq!(r.body["ts_ms"], Value::Null, "nothing stored");
}

/// The live WebSocket's frames carry containers, processes and services.
#[tokio::test]
async fn live_frames_carry_what_runs() {
    use futures_util::StreamExt;
    use storage::model::LiveMessage;

    let (app, alice, agent, token) = setup().await;
    let r = ingest(
        &app,
        &token,
        vec![with_running(
            T0,
            vec![container("a", "web", "running", None, 4.0)],
        )],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let addr = app.serve().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/api/ws/{agent}?token={}",
        alice.access
    ))
    .await
    .expect("upgrade");
    let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .expect("a snapshot in time")
        .unwrap()
        .unwrap();
    let text = msg.into_text().unwrap();
    let LiveMessage::Snapshot { reports, .. } = serde_json::from_str(&text).unwrap() else {
        panic!("a snapshot first: {text}");
    };
    let r = &reports[0];
    assert_eq!(r.containers.as_ref().unwrap()[0].cpu_pct, Some(4.0));
    assert_eq!(r.processes.as_ref().unwrap()[0].pid, 42);
    assert!(r.services.as_ref().unwrap().iter().any(|s| s.is_failed()));
}

/// A container stops: its `container_down` rule fires, and resolves when it
/// runs again; `any container` rules watch each container apart; restarts
/// in a window, unhealthy, memory of the limit and a failed unit too.
#[tokio::test]
async fn container_and_service_rules_fire_and_resolve() {
    use storage::clock::Clock;

    let (app, alice, agent, token) = setup().await;
    let rule = |body: Value| {
        let app = &app;
        let alice = &alice;
        async move {
            let r = app
                .call_as(alice, Method::POST, "/api/rules", Some(body))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.body["id"].as_u64().unwrap()
        }
    };
    let down = rule(json!({ "agent_id": agent, "metric": "container_down", "label": "web" })).await;
    let any_down = rule(json!({ "agent_id": agent, "metric": "container_down" })).await;
    let unhealthy = rule(json!({ "agent_id": agent, "metric": "container_unhealthy" })).await;
    let restarts = rule(json!({ "agent_id": agent, "metric": "container_restarts",
                                "comparison": "gt", "threshold": 2, "duration_s": 600 }))
    .await;
    let mem = rule(json!({ "agent_id": agent, "metric": "container_memory_pct",
                           "comparison": "gt", "threshold": 90 }))
    .await;
    let failed = rule(json!({ "agent_id": agent, "metric": "service_failed" })).await;

    let send = |containers: Vec<Value>| {
        let app = &app;
        let token = &token;
        async move {
            app.clock.advance(5_000);
            let r = ingest(
                app,
                token,
                vec![with_running(app.clock.now_ms(), containers)],
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            app.state.alerting.settled().await;
        }
    };
    let firing = |id: u64| {
        let app = &app;
        let alice = &alice;
        async move {
            let r = app
                .call_as(alice, Method::GET, &format!("/api/rules/{id}"), None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            let mut labels: Vec<String> = r.body["firing"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["label"].as_str().unwrap_or("").to_owned())
                .collect();
            labels.sort();
            labels
        }
    };
    let web = |state: &str, restarts: u32| {
        let mut c = container("w1", "web", state, None, 1.0);
        c["restarts"] = json!(restarts);
        c
    };
    let db = |health: &str, used: u64| {
        let mut c = container("d1", "db", "running", Some(health), 1.0);
        c["mem_used_bytes"] = json!(used);
        c
    };

    send(vec![web("running", 0), db("healthy", 1)]).await;
    assert!(firing(down).await.is_empty());
    // The failed unit of every report (nginx.service) fires at once.
    assert_eq!(firing(failed).await, ["nginx.service"]);

    // web stops; db turns unhealthy and nearly fills its limit.
    send(vec![web("exited", 0), db("unhealthy", 195_000_000)]).await;
    assert_eq!(firing(down).await, ["web"]);
    assert_eq!(firing(any_down).await, ["web"]);
    assert_eq!(firing(unhealthy).await, ["db"]);
    assert_eq!(firing(mem).await, ["db"]);

    // web runs again after 3 restarts within the window.
    send(vec![web("running", 3), db("healthy", 1)]).await;
    assert!(firing(down).await.is_empty(), "resolved");
    assert!(firing(any_down).await.is_empty());
    assert!(firing(unhealthy).await.is_empty());
    assert!(firing(mem).await.is_empty());
    assert_eq!(firing(restarts).await, ["web"]);

    let r = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/alerts?agent_id={agent}&order=asc&limit=100"),
            None,
        )
        .await;
    let events: Vec<(String, String, String)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["metric"].as_str().unwrap().to_owned(),
                e["label"].as_str().unwrap_or("").to_owned(),
                e["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        ("container_down", "web", "firing"),
        ("container_down", "web", "resolved"),
        ("container_unhealthy", "db", "firing"),
        ("container_unhealthy", "db", "resolved"),
        ("container_restarts", "web", "firing"),
        ("service_failed", "nginx.service", "firing"),
    ] {
        let want = (want.0.to_owned(), want.1.to_owned(), want.2.to_owned());
        assert!(events.contains(&want), "{want:?} in {events:?}");
    }

    // Condition rules take no threshold; restarts need their window.
    for (body, field) in [
        (
            json!({ "agent_id": agent, "metric": "container_down", "threshold": 1 }),
            "threshold",
        ),
        (
            json!({ "agent_id": agent, "metric": "container_down", "comparison": "gt" }),
            "comparison",
        ),
        (
            json!({ "agent_id": agent, "metric": "container_restarts", "comparison": "gt",
                 "threshold": 2 }),
            "duration_s",
        ),
        (
            json!({ "agent_id": agent, "metric": "container_memory_pct", "comparison": "gt",
                 "threshold": 120 }),
            "threshold",
        ),
    ] {
        let r = app
            .call_as(&alice, Method::POST, "/api/rules", Some(body))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert!(
            r.body["error"].as_str().unwrap().starts_with(field),
            "{}",
            r.text
        );
    }
}

/// A container removed while its rules fire: after
/// `GONE_AFTER_REPORTS` (3) container lists without it, the `any
/// container` rules and the rules naming it resolve, instead of firing for
/// ever; reports that read no list do not count; a named `container_down`
/// rule keeps firing (its container missing is what it watches). A failed
/// unit that leaves the list (reset, or restarted and not watched) resolves
/// the same way.
#[tokio::test]
async fn firing_rules_of_a_removed_container_resolve_after_three_lists() {
    use storage::clock::Clock;

    let (app, alice, agent, token) = setup().await;
    let rule = |body: Value| {
        let app = &app;
        let alice = &alice;
        async move {
            let r = app
                .call_as(alice, Method::POST, "/api/rules", Some(body))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.body["id"].as_u64().unwrap()
        }
    };
    let named_down =
        rule(json!({ "agent_id": agent, "metric": "container_down", "label": "old" })).await;
    let any_down = rule(json!({ "agent_id": agent, "metric": "container_down" })).await;
    let unhealthy =
        rule(json!({ "agent_id": agent, "metric": "container_unhealthy", "label": "sick" })).await;
    let cpu = rule(json!({ "agent_id": agent, "metric": "container_cpu_pct",
                           "comparison": "gt", "threshold": 50 }))
    .await;
    let failed = rule(json!({ "agent_id": agent, "metric": "service_failed" })).await;

    // `containers: None` is a report whose lists (containers and units)
    // were not read.
    let send = |containers: Option<Vec<Value>>, failed_unit: bool| {
        let app = &app;
        let token = &token;
        async move {
            app.clock.advance(5_000);
            let mut r = report(app.clock.now_ms(), 10.0);
            if let Some(list) = containers {
                r["containers"] = Value::Array(list);
                r["services"] = if failed_unit {
                    json!([{ "unit": "backup.service", "active": "failed", "sub": "failed" }])
                } else {
                    json!([])
                };
            }
            let r = ingest(app, token, vec![r]).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            app.state.alerting.settled().await;
        }
    };
    let firing = |id: u64| {
        let app = &app;
        let alice = &alice;
        async move {
            let r = app
                .call_as(alice, Method::GET, &format!("/api/rules/{id}"), None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            let mut labels: Vec<String> = r.body["firing"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["label"].as_str().unwrap_or("").to_owned())
                .collect();
            labels.sort();
            labels
        }
    };
    let keep = || container("k1", "keep", "running", None, 1.0);
    let all = || {
        vec![
            keep(),
            container("o1", "old", "exited", None, 0.0),
            container("s1", "sick", "running", Some("unhealthy"), 1.0),
            container("h1", "hot", "running", None, 95.0),
        ]
    };

    send(Some(all()), true).await;
    assert_eq!(firing(named_down).await, ["old"]);
    assert_eq!(firing(any_down).await, ["old"]);
    assert_eq!(firing(unhealthy).await, ["sick"]);
    assert_eq!(firing(cpu).await, ["hot"]);
    assert_eq!(firing(failed).await, ["backup.service"]);

    // Removed (`docker rm`), and the unit reset: two lists without them
    // and one report that read no list are not enough.
    send(Some(vec![keep()]), false).await;
    send(None, false).await;
    send(Some(vec![keep()]), false).await;
    assert_eq!(firing(any_down).await, ["old"]);
    assert_eq!(firing(unhealthy).await, ["sick"]);
    assert_eq!(firing(cpu).await, ["hot"]);
    assert_eq!(firing(failed).await, ["backup.service"]);

    // The third list without them: resolved.
    send(Some(vec![keep()]), false).await;
    assert!(firing(any_down).await.is_empty());
    assert!(firing(unhealthy).await.is_empty());
    assert!(firing(cpu).await.is_empty());
    assert!(firing(failed).await.is_empty());
    assert_eq!(
        firing(named_down).await,
        ["old"],
        "a named container missing is down"
    );

    let r = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/alerts?agent_id={agent}&order=asc&limit=100"),
            None,
        )
        .await;
    let resolved: Vec<(String, String)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] == "resolved")
        .map(|e| {
            (
                e["metric"].as_str().unwrap().to_owned(),
                e["label"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut resolved = resolved;
    resolved.sort();
    assert_eq!(
        resolved,
        [
            ("container_cpu_pct".to_owned(), "hot".to_owned()),
            ("container_down".to_owned(), "old".to_owned()),
            ("container_unhealthy".to_owned(), "sick".to_owned()),
            ("service_failed".to_owned(), "backup.service".to_owned()),
        ]
    );

    // The same name back and stopped again fires again.
    send(
        Some(vec![keep(), container("o2", "old", "exited", None, 0.0)]),
        false,
    )
    .await;
    assert_eq!(firing(any_down).await, ["old"]);
}

/// `container_restarts` over windows longer than the live ring (15 min):
/// the restarts of the last hour are read from the stored restart counts,
/// so a rule made 40 minutes after three restarts still sees them, while a
/// 15-minute window does not; windows up to 24 h are accepted.
#[tokio::test]
async fn restart_windows_longer_than_the_ring_read_stored_counts() {
    use storage::clock::Clock;

    let (app, _, agent, token) = setup().await;
    // A report a minute for 40 minutes: web restarts at minutes 5, 10, 12,
    // db is recreated (new id, count back to 0) at minute 20.
    for minute in 0..=40i64 {
        app.clock.advance(60_000);
        let restarts = match minute {
            0..5 => 0,
            5..10 => 1,
            10..12 => 2,
            _ => 3,
        };
        let mut web = container("w1", "web", "running", None, 1.0);
        web["restarts"] = json!(restarts);
        let mut db = container(
            if minute < 20 { "d1" } else { "d2" },
            "db",
            "running",
            None,
            1.0,
        );
        db["restarts"] = json!(if minute < 20 { 4 } else { 0 });
        let r = ingest(
            &app,
            &token,
            vec![with_running(app.clock.now_ms(), vec![web, db])],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    app.state.alerting.settled().await;
    // A session idle for 40 minutes has expired.
    let alice = app.login("alice").await;

    let rule = |duration_s: u32| {
        let app = &app;
        let alice = &alice;
        async move {
            let r = app
                .call_as(
                    alice,
                    Method::POST,
                    "/api/rules",
                    Some(json!({ "agent_id": agent, "metric": "container_restarts",
                                 "comparison": "gt", "threshold": 2, "duration_s": duration_s })),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            // Created rules are evaluated at once.
            let mut labels: Vec<(String, f64)> = r.body["firing"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["label"].as_str().unwrap().to_owned(),
                        f["value"].as_f64().unwrap(),
                    )
                })
                .collect();
            labels.sort_by(|a, b| a.0.cmp(&b.0));
            labels
        }
    };
    assert_eq!(rule(3_600).await, [("web".to_owned(), 3.0)]);
    assert_eq!(rule(86_400).await, [("web".to_owned(), 3.0)]);
    assert!(
        rule(900).await.is_empty(),
        "no restart in the last 15 minutes"
    );

    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/rules",
            Some(json!({ "agent_id": agent, "metric": "container_restarts",
                         "comparison": "gt", "threshold": 2, "duration_s": 86_401 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.body["error"].as_str().unwrap().starts_with("duration_s"),
        "{}",
        r.text
    );
}
