//! Prometheus and friends against the real programs: `/metrics` checked by
//! `promtool check metrics`, remote write into a real VictoriaMetrics that is
//! stopped and started again mid-stream, the scrape token, the settings, and
//! the OpenAPI document against the real routes.
//!
//! `promtool` (Debian `prometheus`) and `victoria-metrics` are installed by
//! `make setup-ecosystem`, which `make test` runs first; without them these
//! tests fail and say so.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use server::config::{Config, ServeArgs};

use crate::common::TestApp;

const SCRAPE_TOKEN: &str = "scrape-token-0123456789";
const VICTORIA: &str = "/usr/bin/victoria-metrics";
const PROMTOOL: &str = "/usr/bin/promtool";

/// The path of a tool the Makefile installs, or a failure naming the target.
fn tool(path: &str) -> &str {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: run `make setup-ecosystem` (apt-get install victoria-metrics prometheus); `make test` does this first"
    );
    path
}

fn metrics_args() -> ServeArgs {
    ServeArgs {
        metrics: Some(true),
        metrics_token: Some(SCRAPE_TOKEN.into()),
        ..Default::default()
    }
}

/// A report at `ts` with CPU at `cpu` %.
fn report(ts: i64, cpu: f64) -> Value {
    json!({
        "ts_ms": ts,
        "interval_ms": 5000,
        "cpu": { "total_pct": cpu, "cores_pct": [cpu, cpu / 2.0], "cores_mhz": [3400, 3600] },
        "load": [0.5, 0.4, 0.3],
        "memory": { "total_bytes": 16_000_000_000u64, "used_bytes": 8_000_000_000u64,
                    "available_bytes": 8_000_000_000u64 },
        "disks": [ { "mount": "/", "total_bytes": 500_000_000_000u64, "used_bytes": 200_000_000_000u64,
                     "read_bps": 1024, "write_bps": 20480 } ],
        "networks": [ { "iface": "eth0", "rx_bps": 120000, "tx_bps": 64000 } ],
        "uptime_s": 86400,
        "temps": [ { "sensor": "k10temp Tctl", "celsius": 55.5 } ]
    })
}

/// One real HTTP request (ureq, on the blocking pool): status and body.
async fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, String) {
    let method = method.to_string();
    let url = url.to_string();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let response = match method.as_str() {
            "GET" => {
                let mut r = agent.get(&url);
                for (k, v) in &headers {
                    r = r.header(k, v);
                }
                r.call()
            }
            _ => {
                let mut r = agent.post(&url);
                for (k, v) in &headers {
                    r = r.header(k, v);
                }
                r.send_json(body.unwrap_or(Value::Null))
            }
        };
        match response {
            Ok(mut r) => (
                r.status().as_u16(),
                r.body_mut().read_to_string().unwrap_or_default(),
            ),
            Err(e) => (0, e.to_string()),
        }
    })
    .await
    .unwrap()
}

/// An app whose clock is the real one (VictoriaMetrics refuses samples far
/// from its own now), served on loopback, with a user and an agent.
async fn real_time_app(args: ServeArgs) -> (TestApp, String, String) {
    let app = TestApp::with_args(args);
    app.clock.set(now_ms());
    let alice = app.register_and_login("alice").await;
    let (_, token) = app.create_agent(&alice, "nas").await;
    let addr = app.serve().await;
    (app, format!("http://{addr}"), token)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn scrape(base: &str) -> String {
    let auth = format!("Bearer {SCRAPE_TOKEN}");
    let (status, text) = http(
        "GET",
        &format!("{base}/metrics"),
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    text
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let app = TestApp::new();
    let r = app.get("/metrics", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.text.contains("--metrics"), "{}", r.text);
}

#[tokio::test]
async fn metrics_need_the_scrape_token() {
    let app = TestApp::with_args(metrics_args());
    let r = app.get("/metrics", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = app
        .get(
            "/metrics",
            &[("authorization", "Bearer scrape-token-0123456780")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    // A user's session does not open it either.
    let alice = app.register_and_login("alice").await;
    let r = app.call_as(&alice, Method::GET, "/metrics", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let auth = format!("Bearer {SCRAPE_TOKEN}");
    let r = app.get("/metrics", &[("authorization", &auth)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        r.headers
    );
}

#[test]
fn metrics_settings_are_checked() {
    let no_token = ServeArgs {
        metrics: Some(true),
        ..Default::default()
    };
    let err = format!("{:#}", Config::resolve(no_token).unwrap_err());
    assert!(err.starts_with("metrics_token"), "{err}");
    let short = ServeArgs {
        metrics: Some(true),
        metrics_token: Some("short".into()),
        ..Default::default()
    };
    assert!(Config::resolve(short).is_err());
    let bad_url = ServeArgs {
        remote_write_url: vec!["vm:8428/api/v1/write".into()],
        ..Default::default()
    };
    let err = format!("{:#}", Config::resolve(bad_url).unwrap_err());
    assert!(err.starts_with("remote_write_url"), "{err}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "metrics = true\nmetrics_token = \"0123456789abcdef\"\nremote_write_url = [\"http://a:1/w\", \"https://b/w\"]\n",
    )
    .unwrap();
    let c = Config::resolve(ServeArgs {
        config: Some(file.path().to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    assert!(c.metrics);
    assert_eq!(c.remote_write_urls, ["http://a:1/w", "https://b/w"]);
    assert_eq!(c.remote_write_queue_bytes, 256 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_carry_the_latest_values() {
    let promtool = tool(PROMTOOL);
    let (_app, base, token) = real_time_app(metrics_args()).await;
    let t = now_ms() - 10_000;
    for (i, cpu) in [12.5, 42.25].into_iter().enumerate() {
        let batch = json!({
            "host": { "hostname": "nas.lan" },
            "reports": [report(t + i as i64 * 5000, cpu)]
        });
        let (status, text) = http(
            "POST",
            &format!("{base}/api/ingest"),
            &[("x-agent-token", &token)],
            Some(batch),
        )
        .await;
        assert_eq!(status, 200, "{text}");
    }
    // A refused request is counted under its own code.
    let (status, _) = http(
        "POST",
        &format!("{base}/api/ingest"),
        &[("x-agent-token", "not-a-token")],
        Some(json!({ "reports": [report(t, 1.0)] })),
    )
    .await;
    assert_eq!(status, 401);
    let text = scrape(&base).await;

    // The newest report's values, in base units, labelled.
    // Labels sorted by name, as the exposition writes them.
    let who = "agent=\"nas\",agent_id=\"1\"";
    let host = "host=\"nas.lan\"";
    assert_eq!(
        sample(
            &text,
            &format!("statusmonitor_cpu_usage_percent{{{who},{host}}}")
        ),
        Some(42.25),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("statusmonitor_cpu_core_frequency_hertz{{{who},core=\"1\",{host}}}")
        ),
        Some(3.6e9),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("statusmonitor_disk_used_bytes{{{who},{host},mount=\"/\"}}")
        ),
        Some(2e11),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("statusmonitor_temperature_celsius{{{who},{host},sensor=\"k10temp Tctl\"}}")
        ),
        Some(55.5),
        "{text}"
    );
    // The server's own.
    assert_eq!(
        sample(&text, "statusmonitor_server_ingest_reports_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "statusmonitor_server_ingest_requests_total{code=\"200\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "statusmonitor_server_ingest_requests_total{code=\"401\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "statusmonitor_server_ingest_duration_seconds_count"),
        Some(3.0),
        "{text}"
    );
    for family in [
        "statusmonitor_server_websocket_clients",
        "statusmonitor_server_storage_bytes{tier=\"raw\"}",
        "statusmonitor_server_compactor_lag_seconds",
        "statusmonitor_server_alert_deliveries_total{status=\"sent\"}",
        "statusmonitor_server_remote_write_overflow_batches_total",
    ] {
        assert!(sample(&text, family).is_some(), "{family} missing:\n{text}");
    }

    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A VictoriaMetrics on a loopback port with its own storage directory.
struct Victoria {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Victoria {
    fn new() -> Victoria {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Victoria {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let child = Command::new(tool(VICTORIA))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!("-storageDataPath={}", self.dir.path().display()))
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, _) = http("GET", &format!("{}/health", self.url()), &[], None).await;
            if status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "VictoriaMetrics did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops it the way a service manager does (SIGTERM) and waits.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// `(timestamp ms, value)` of every stored sample of the series matching
    /// `selector`, flushed first so recent samples are visible.
    async fn export(&self, selector: &str) -> Vec<(i64, f64)> {
        let _ = http(
            "GET",
            &format!("{}/internal/force_flush", self.url()),
            &[],
            None,
        )
        .await;
        let url = format!(
            "{}/api/v1/export?match[]={}",
            self.url(),
            urlencode(selector)
        );
        let (status, text) = http("GET", &url, &[], None).await;
        assert_eq!(status, 200, "{text}");
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap();
            let ts = v["timestamps"].as_array().unwrap();
            let vals = v["values"].as_array().unwrap();
            for (t, x) in ts.iter().zip(vals) {
                out.push((t.as_i64().unwrap(), x.as_f64().unwrap()));
            }
        }
        out.sort_by_key(|(t, _)| *t);
        out
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        self.stop();
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_reaches_victoria_metrics_and_survives_its_restart() {
    let mut vm = Victoria::new();
    vm.start().await;
    let mut args = metrics_args();
    args.remote_write_url = vec![format!("{}/api/v1/write", vm.url())];
    let (app, base, token) = real_time_app(args).await;
    let ingest_url = format!("{base}/api/ingest");

    // 12 reports, one per batch, 5 s apart, ending now; VictoriaMetrics is
    // stopped after the 4th and started again after the 8th.
    let t0 = now_ms() - 60_000;
    let cpu = |i: i64| 10.0 + i as f64 * 1.5;
    let selector = r#"statusmonitor_cpu_usage_percent{agent="nas",host="nas.lan"}"#;
    let mut slowest = Duration::ZERO;
    for i in 0..12i64 {
        if i == 4 {
            // Everything so far arrives while it is up.
            wait_for(&vm, selector, 4).await;
            vm.stop();
        }
        if i == 8 {
            // The sender has tried and failed; the batches wait on disk.
            let deadline = Instant::now() + Duration::from_secs(10);
            let health = loop {
                let health = app.get("/api/health", &[]).await;
                if health.body["remote_write"][0]["status"]
                    .as_str()
                    .unwrap()
                    .starts_with("retrying")
                {
                    break health;
                }
                assert!(Instant::now() < deadline, "{}", health.text);
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let rw = &health.body["remote_write"][0];
            assert_eq!(rw["queued_batches"], 4, "{}", health.text);
            let text = scrape(&base).await;
            let backlog =
                sample(&text, "statusmonitor_server_remote_write_backlog_batches{").unwrap();
            assert!(backlog >= 4.0, "{text}");
            vm.start().await;
        }
        let batch = json!({ "host": { "hostname": "nas.lan" }, "reports": [report(t0 + i * 5000, cpu(i))] });
        let start = Instant::now();
        let (status, text) = http(
            "POST",
            &ingest_url,
            &[("x-agent-token", &token)],
            Some(batch),
        )
        .await;
        slowest = slowest.max(start.elapsed());
        assert_eq!(status, 200, "{text}");
    }
    // An endpoint outage never slows ingest.
    assert!(
        slowest < Duration::from_secs(2),
        "slowest ingest took {slowest:?}"
    );

    let got = wait_for(&vm, selector, 12).await;
    let want: Vec<(i64, f64)> = (0..12).map(|i| (t0 + i * 5000, cpu(i))).collect();
    assert_eq!(got, want, "every sample, once, with its own timestamp");

    // Other metrics arrive too, in base units, with their labels.
    let mhz = vm
        .export(r#"statusmonitor_cpu_core_frequency_hertz{agent="nas",core="1"}"#)
        .await;
    assert_eq!(mhz.len(), 12);
    assert!(mhz.iter().all(|(_, v)| *v == 3.6e9), "{mhz:?}");

    // The backlog drains to nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = app.get("/api/health", &[]).await;
        let rw = &health.body["remote_write"][0];
        if rw["queued_batches"] == 0 && rw["status"] == "ok" {
            assert_eq!(rw["dropped_batches"], 0, "{}", health.text);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backlog did not drain: {}",
            health.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls VictoriaMetrics until `selector` has `n` samples (60 s at most).
async fn wait_for(vm: &Victoria, selector: &str, n: usize) -> Vec<(i64, f64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = vm.export(selector).await;
        if got.len() >= n || Instant::now() > deadline {
            assert_eq!(got.len(), n, "samples in VictoriaMetrics: {got:?}");
            return got;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn health_asks_the_stores() {
    let app = TestApp::new();
    let r = app.get("/api/health", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "ok", "{}", r.text);
    assert_eq!(r.body["storage"]["catalog"], "ok", "{}", r.text);
    assert_eq!(r.body["storage"]["engine"], "ok", "{}", r.text);
    assert!(r.body["storage"]["compactor_lag_s"].is_u64(), "{}", r.text);
    assert!(r.body.get("remote_write").is_none(), "{}", r.text);
}

/// Methods of an OpenAPI path item.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Requests that end sessions or delete things run last, in this order, so
/// the others still find what they address.
fn destructive_rank(method: &str, path: &str) -> usize {
    match (method, path) {
        ("delete", "/api/channels/{id}") => 1,
        ("delete", "/api/rules/{id}") => 1,
        ("delete", "/api/checks/{id}") => 1,
        ("delete", "/api/status-pages/{id}") => 1,
        ("delete", "/api/alerts") => 2,
        ("delete", "/api/agents/{id}") => 3,
        ("delete", "/api/auth/sessions/{id}") => 4,
        ("post", "/api/auth/logout") => 5,
        ("post", "/api/auth/logout-all") => 6,
        _ => 0,
    }
}

#[tokio::test]
async fn unknown_api_paths_are_json_404s_and_known_ones_keep_their_methods() {
    let app = TestApp::new();
    for path in [
        "/api",
        "/api/",
        "/api/no-such-endpoint",
        "/api/agents/1/nope",
    ] {
        let r = app.get(path, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_eq!(r.body["code"], "not_found", "{path}: {}", r.text);
    }
    let r = app.get("/api/ingest", &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);
    // Outside the API, the dashboard answers (its own 404 page).
    let r = app.get("/no/such/page", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text.contains("Page not found"), "{}", r.text);
}

#[tokio::test]
async fn openapi_document_matches_the_real_routes() {
    let app = TestApp::new();
    let r = app.get("/api/openapi.json", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let doc = r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");

    // Every `$ref` resolves.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in &refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("odd $ref {r}"));
        assert!(schemas.contains_key(name), "$ref {r} has no schema");
    }

    // Something for every path parameter to address.
    let alice = app.register_and_login("alice").await;
    let (agent, _) = app.create_agent(&alice, "nas").await;
    let rule = app
        .call_as(
            &alice,
            Method::POST,
            "/api/rules",
            Some(json!({ "agent_id": agent, "metric": "cpu_pct", "comparison": "gt", "threshold": 90 })),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.text);
    let rule_id = rule.body["id"].as_u64().unwrap();
    let sessions = app
        .call_as(&alice, Method::GET, "/api/auth/sessions", None)
        .await;
    let session_id = sessions.body[0]["id"].as_u64().unwrap();
    let check = app
        .call_as(
            &alice,
            Method::POST,
            "/api/checks",
            Some(
                json!({ "name": "dns", "kind": "dns", "target": "example.com", "enabled": false }),
            ),
        )
        .await;
    assert_eq!(check.status, StatusCode::CREATED, "{}", check.text);
    let check_id = check.body["id"].as_u64().unwrap();
    let page = app
        .call_as(
            &alice,
            Method::POST,
            "/api/status-pages",
            Some(json!({ "slug": "lab", "title": "Lab" })),
        )
        .await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.text);
    let page_id = page.body["id"].as_u64().unwrap();
    let incident = app
        .call_as(
            &alice,
            Method::POST,
            &format!("/api/status-pages/{page_id}/incidents"),
            Some(json!({ "title": "Down", "message": "Looking" })),
        )
        .await;
    assert_eq!(incident.status, StatusCode::CREATED, "{}", incident.text);
    let channel = app
        .call_as(
            &alice,
            Method::POST,
            "/api/channels",
            Some(json!({ "name": "n", "kind": "ntfy",
                         "config": { "server_url": "http://127.0.0.1:9", "topic": "t" } })),
        )
        .await;
    assert_eq!(channel.status, StatusCode::CREATED, "{}", channel.text);
    let channel_id = channel.body["id"].as_u64().unwrap();
    let invitation = app
        .call_as(
            &alice,
            Method::POST,
            "/api/admin/users",
            Some(json!({ "username": "invitee", "access": "invitation" })),
        )
        .await;
    assert_eq!(
        invitation.status,
        StatusCode::CREATED,
        "{}",
        invitation.text
    );

    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with("/api/"), "{path} is outside the API");
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            // Described: a summary, a tag, an answer, and each `{param}`.
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{method} {path}: no summary"
            );
            assert!(op["tags"][0].is_string(), "{method} {path}: no tag");
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(['{', '}']);
                assert!(
                    declared.contains(&name),
                    "{method} {path}: path parameter {name} not described"
                );
            }
            ops.push((destructive_rank(method, path), method, path.clone()));
        }
    }
    assert!(ops.len() >= 30, "only {} operations described", ops.len());
    ops.sort();

    // Every described operation exists on the real router: whatever it
    // answers, it is not "no such route" (404) or "no such method" (405).
    for (_, method, path) in &ops {
        let url = path
            .replace("/agents/{id}", &format!("/agents/{agent}"))
            .replace("/rules/{id}", &format!("/rules/{rule_id}"))
            .replace("/checks/{id}", &format!("/checks/{check_id}"))
            .replace("/status-pages/{id}", &format!("/status-pages/{page_id}"))
            .replace("{incident}", "1")
            .replace("/sessions/{id}", &format!("/sessions/{session_id}"))
            .replace("/channels/{id}", &format!("/channels/{channel_id}"))
            .replace("{agent_id}", &agent.to_string())
            .replace("{username}", "invitee")
            .replace("{kind}", "cpu");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
        let r = app.call_as(&alice, method.clone(), &url, body).await;
        assert!(
            r.status != StatusCode::NOT_FOUND && r.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {url} (described as {path}) answered {}: {}",
            r.status,
            r.text
        );
    }

    // And no route bypasses the description: API modules register routes
    // only through `routes!`, which takes method and path from the handler's
    // `#[utoipa::path]`.
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api")];
    let mut files = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains(".route(") && !text.contains("routing::"),
                "{} adds a route outside routes!(...): it would be missing from /api/openapi.json",
                path.display()
            );
        }
    }
    assert!(files > 10, "read the API modules ({files} files)");
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap_or_default().to_string());
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// What the fake receiver below got.
#[derive(Default)]
struct Received {
    requests: usize,
    bad_headers: Vec<String>,
    cpu: Vec<(i64, f64)>,
}

/// A remote_write receiver for what a real one will not do on demand: it
/// answers 503 to the first two requests, and 400 to any request holding a
/// CPU sample of 66 %; otherwise it decodes and keeps the CPU samples.
async fn fake_receiver(
    state: axum::extract::State<std::sync::Arc<std::sync::Mutex<Received>>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    use prost::Message;
    let mut got = state.lock().unwrap();
    got.requests += 1;
    for (name, want) in [
        ("content-encoding", "snappy"),
        ("content-type", "application/x-protobuf"),
        ("x-prometheus-remote-write-version", "0.1.0"),
    ] {
        if headers.get(name).and_then(|v| v.to_str().ok()) != Some(want) {
            got.bad_headers
                .push(format!("{name}: {:?}", headers.get(name)));
        }
    }
    if got.requests <= 2 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
    let req = server::remote_write::proto::WriteRequest::decode(&raw[..]).unwrap();
    let cpu: Vec<(i64, f64)> = req
        .timeseries
        .iter()
        .filter(|ts| {
            ts.labels
                .iter()
                .any(|l| l.name == "__name__" && l.value == "statusmonitor_cpu_usage_percent")
        })
        .flat_map(|ts| ts.samples.iter().map(|s| (s.timestamp, s.value)))
        .collect();
    if cpu.iter().any(|(_, v)| *v == 66.0) {
        return StatusCode::BAD_REQUEST;
    }
    got.cpu.extend(cpu);
    StatusCode::NO_CONTENT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_retries_5xx_and_drops_only_what_a_4xx_refuses() {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Received::default()));
    let receiver = axum::Router::new()
        .route("/write", axum::routing::post(fake_receiver))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/write", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let args = ServeArgs {
        remote_write_url: vec![url],
        ..metrics_args()
    };
    let (app, base, token) = real_time_app(args).await;
    let t0 = now_ms() - 30_000;
    for (i, cpu) in [10.0, 66.0, 20.0].into_iter().enumerate() {
        let batch = json!({ "reports": [report(t0 + i as i64 * 5000, cpu)] });
        let (status, text) = http(
            "POST",
            &format!("{base}/api/ingest"),
            &[("x-agent-token", &token)],
            Some(batch),
        )
        .await;
        assert_eq!(status, 200, "{text}");
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        let health = app.get("/api/health", &[]).await;
        if health.body["remote_write"][0]["queued_batches"] == 0 {
            break health;
        }
        assert!(
            Instant::now() < deadline,
            "queue did not drain: {}",
            health.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        health.body["remote_write"][0]["dropped_batches"], 1,
        "{}",
        health.text
    );
    let (bad_headers, mut cpu) = {
        let got = got.lock().unwrap();
        (got.bad_headers.clone(), got.cpu.clone())
    };
    assert!(bad_headers.is_empty(), "{bad_headers:?}");
    cpu.sort_by_key(|(t, _)| *t);
    assert_eq!(
        cpu,
        [(t0, 10.0), (t0 + 10_000, 20.0)],
        "the refused batch alone is dropped"
    );

    let text = scrape(&base).await;
    assert!(
        sample(
            &text,
            "statusmonitor_server_remote_write_failed_attempts_total{"
        )
        .unwrap()
            >= 2.0,
        "{text}"
    );
    assert!(text.contains("reason=\"rejected\"} 1"), "{text}");
}

#[tokio::test]
async fn remote_write_queue_survives_a_server_restart() {
    // An endpoint nobody listens on: everything waits in the queue.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args = ServeArgs {
        remote_write_url: vec![format!("http://127.0.0.1:{port}/api/v1/write")],
        ..Default::default()
    };
    let mut app = TestApp::with_args(args);
    let alice = app.register_and_login("alice").await;
    let (_, token) = app.create_agent(&alice, "nas").await;
    let t = crate::common::T0;
    for i in 0..3 {
        let batch = json!({ "reports": [report(t - 10_000 + i * 5000, 5.0)] });
        let r = app
            .post("/api/ingest", batch, &[("x-agent-token", &token)])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let queued = |app: &TestApp| app.state.remote_write.health()[0].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while queued(&app).queued_batches < 3 {
        assert!(Instant::now() < deadline, "{:?}", queued(&app));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = queued(&app);
    app.restart();
    let after = queued(&app);
    assert_eq!(after.queued_batches, 3, "{after:?}");
    assert_eq!(after.queued_bytes, before.queued_bytes);
    assert!(app.dir.path().join("remote_write").is_dir());

    // Without endpoints nothing is created.
    let plain = TestApp::new();
    assert!(!plain.dir.path().join("remote_write").exists());
}
