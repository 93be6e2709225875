//! Alerting end to end: rules API, evaluation on ingest (cooldown, resolve,
//! duration, per-mount), offline detection on the manual clock, history,
//! delivery to a local fake Telegram Bot API and a local webhook receiver
//! (retries, failures), restart, isolation and validation.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use server::config::ServeArgs;
use storage::catalog::AlertRecord;
use storage::clock::Clock;
use storage::model::{AlertMetric, AlertState, Comparison};

use crate::common::{Reply, Session, TestApp};

/// One request a fake received.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: HeaderMap,
    raw: Vec<u8>,
    body: Value,
}

/// A local HTTP receiver that records every request and answers `status`.
#[derive(Clone)]
struct Fake {
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<AtomicU16>,
    addr: SocketAddr,
}

impl Fake {
    async fn start(status: u16) -> Fake {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(status));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (h, s) = (hits.clone(), status.clone());
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
                let (h, s) = (h.clone(), s.clone());
                async move {
                    h.lock().unwrap().push(Hit {
                        path: uri.path().to_string(),
                        headers,
                        raw: body.to_vec(),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    let code = StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap();
                    (code, axum::Json(json!({ "ok": code.is_success() })))
                }
            },
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { hits, status, addr }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A loopback port nothing listens on.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/hook")
}

/// Polls `cond` every 10 ms for up to 5 s.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Env {
    app: TestApp,
    alice: Session,
    agent: u64,
    token: String,
    telegram: Fake,
    hook: Fake,
}

const BOT_TOKEN: &str = "123456:TEST-TOKEN";

fn args(telegram: &Fake, tweak: impl FnOnce(&mut ServeArgs)) -> ServeArgs {
    let mut args = ServeArgs {
        open_registration: Some(true),
        telegram_bot_token: Some(BOT_TOKEN.into()),
        telegram_api_base: Some(telegram.url()),
        public_url: Some("https://mon.example".into()),
        notify_retry_delays: Some("10ms,20ms".into()),
        notify_timeout: Some("2s".into()),
        // Tests drive the offline check with `tick`.
        offline_check_interval: Some("1h".into()),
        ..Default::default()
    };
    tweak(&mut args);
    args
}

/// An app wired to a fake Telegram and a webhook receiver (both answering
/// 200), user alice with agent "nas" and both channels configured.
async fn env_with(tweak: impl FnOnce(&mut ServeArgs)) -> Env {
    let telegram = Fake::start(200).await;
    let hook = Fake::start(200).await;
    let app = TestApp::with_args(args(&telegram, tweak));
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/recipient",
            Some(
                json!({ "telegram_chat_id": "4242", "webhook_url": format!("{}/hook", hook.url()),
                         "webhook_secret": "s3cret" }),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    Env {
        app,
        alice,
        agent,
        token,
        telegram,
        hook,
    }
}

async fn env() -> Env {
    env_with(|_| {}).await
}

/// A report at the current (manual) time.
fn report(ts: i64, cpu: f64, root_pct: u64, data_pct: u64) -> Value {
    json!({
        "ts_ms": ts,
        "interval_ms": 5000,
        "cpu": { "total_pct": cpu },
        "load": [0.5, 0.4, 0.3],
        "memory": { "total_bytes": 1000, "used_bytes": 500 },
        "disks": [ { "mount": "/", "total_bytes": 100, "used_bytes": root_pct },
                   { "mount": "/data", "total_bytes": 100, "used_bytes": data_pct } ],
        "networks": [ { "iface": "eth0", "rx_bps": 1000, "tx_bps": 2000 } ]
    })
}

impl Env {
    fn now(&self) -> i64 {
        self.app.clock.now_ms()
    }

    /// Moves the clock by `ms`, ingests a report then and waits until it is
    /// evaluated.
    async fn send_after(&self, ms: i64, cpu: f64, root_pct: u64, data_pct: u64) {
        self.app.clock.advance(ms);
        let r = self
            .app
            .post(
                "/api/ingest",
                json!({ "reports": [report(self.now(), cpu, root_pct, data_pct)] }),
                &[("x-agent-token", &self.token)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        self.app.state.alerting.settled().await;
    }

    async fn cpu(&self, ms: i64, cpu: f64) {
        self.send_after(ms, cpu, 50, 50).await;
    }

    async fn as_alice(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.app.call_as(&self.alice, method, path, body).await
    }

    async fn create_rule(&self, body: Value) -> Value {
        let r = self.as_alice(Method::POST, "/api/rules", Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body
    }

    async fn history(&self, query: &str) -> Value {
        let r = self
            .as_alice(Method::GET, &format!("/api/alerts?{query}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
    }

    /// Oldest first.
    async fn events(&self) -> Vec<Value> {
        self.history("order=asc&limit=1000").await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits until no delivery of any event is pending.
    async fn deliveries_settled(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let events = self.events().await;
            let pending = events.iter().any(|e| {
                e["deliveries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["status"] == "pending")
            });
            if !pending {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "deliveries still pending: {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn cpu_rule(&self) -> Value {
        json!({ "agent_id": self.agent, "metric": "cpu_pct", "comparison": "gt", "threshold": 90,
                "name": "CPU hot" })
    }
}

fn delivery<'a>(event: &'a Value, channel: &str) -> &'a Value {
    event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == channel)
        .unwrap()
}

/// The text of a Telegram message with its MarkdownV2 escapes removed.
fn telegram_text(hit: &Hit) -> String {
    assert_eq!(hit.body["parse_mode"], "MarkdownV2");
    let text = hit.body["text"].as_str().unwrap();
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '*' => {}
            c => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn a_breach_notifies_once_per_cooldown_and_the_resolution_is_sent_and_recorded() {
    let env = env().await;
    env.create_rule(env.cpu_rule()).await;
    env.cpu(5_000, 20.0).await;
    assert!(env.events().await.is_empty());

    env.cpu(5_000, 95.0).await;
    wait_for("the first message", || {
        env.telegram.count() == 1 && env.hook.count() == 1
    })
    .await;
    let tg = &env.telegram.hits()[0];
    assert_eq!(tg.path, format!("/bot{BOT_TOKEN}/sendMessage"));
    assert_eq!(tg.body["chat_id"], 4242);
    let text = telegram_text(tg);
    for needle in ["nas", "CPU", "95.0%", "> 90.0%", "CPU hot"] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    assert!(
        text.contains(&format!("https://mon.example/agents/{}", env.agent)),
        "{text}"
    );

    // Still breached within the cooldown: nothing new.
    for _ in 0..5 {
        env.cpu(5_000, 96.0).await;
    }
    env.cpu(250_000, 97.0).await; // 280 s after the firing
    // Evaluated (`cpu` waits for that), and every message of every recorded
    // event delivered: nothing more can arrive.
    env.deliveries_settled().await;
    assert_eq!(env.telegram.count(), 1);
    assert_eq!(env.events().await.len(), 1);

    // The cooldown is over and it is still breached: one more.
    env.cpu(25_000, 98.0).await;
    wait_for("the renotification", || env.telegram.count() == 2).await;
    assert!(telegram_text(&env.telegram.hits()[1]).contains("98.0%"));

    // Clears: a resolution, sent on both channels.
    env.cpu(5_000, 12.0).await;
    wait_for("the resolution", || {
        env.telegram.count() == 3 && env.hook.count() == 3
    })
    .await;
    let resolved = telegram_text(&env.telegram.hits()[2]);
    assert!(resolved.contains("back to 12.0%"), "{resolved}");
    let hook = &env.hook.hits()[2];
    assert_eq!(hook.body["event"], "resolved");
    assert_eq!(hook.body["agent"]["name"], "nas");
    assert_eq!(hook.body["metric"], "cpu_pct");
    assert_eq!(hook.body["value"], 12.0);
    assert_eq!(hook.body["threshold"], 90.0);
    assert_eq!(hook.body["comparison"], "gt");

    let events = env.deliveries_settled().await;
    let states: Vec<&str> = events
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["firing", "firing", "resolved"]);
    assert_eq!(events[0]["value"], 95.0);
    assert_eq!(events[0]["agent_name"], "nas");
    assert_eq!(events[0]["rule_name"], "CPU hot");
    for e in &events {
        for channel in ["telegram", "webhook"] {
            let d = delivery(e, channel);
            assert_eq!(d["status"], "sent", "{e}");
            assert_eq!(d["attempts"], 1);
        }
    }
    // Quiet again: nothing more.
    env.cpu(400_000, 10.0).await;
    // Evaluated (`cpu` waits for that), and every message of every recorded
    // event delivered: nothing more can arrive.
    env.deliveries_settled().await;
    assert_eq!(env.telegram.count(), 3);
}

#[tokio::test]
async fn webhook_bodies_are_signed_with_the_users_secret() {
    let env = env().await;
    env.cpu(5_000, 95.0).await;
    env.create_rule(env.cpu_rule()).await;
    wait_for("the webhook", || env.hook.count() == 1).await;
    let hit = &env.hook.hits()[0];
    let sig = hit.headers["x-statusmonitor-signature"].to_str().unwrap();
    assert_eq!(
        sig,
        server::alerting::notify::webhook::signature("s3cret", &hit.raw)
    );
    assert_eq!(hit.body["event"], "firing");
    assert_eq!(hit.body["agent"]["id"], env.agent);
    assert_eq!(
        hit.body["url"],
        format!("https://mon.example/agents/{}", env.agent)
    );
}

#[tokio::test]
async fn a_rule_created_while_already_breached_fires_at_once() {
    let env = env().await;
    env.cpu(5_000, 95.0).await;
    let rule = env.create_rule(env.cpu_rule()).await;
    // Recorded before the answer.
    let events = env.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["rule_id"], rule["id"]);
    assert_eq!(rule["firing"][0]["value"], 95.0);
    wait_for("the message", || env.telegram.count() == 1).await;

    // Editing the threshold above the value resolves it at once.
    let r = env
        .as_alice(
            Method::PATCH,
            &format!("/api/rules/{}", rule["id"]),
            Some(json!({ "threshold": 99 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["threshold"], 99.0);
    assert_eq!(r.body["firing"], json!([]));
    let events = env.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["state"], "resolved");
}

#[tokio::test]
async fn a_duration_rule_ignores_a_spike_and_fires_when_the_whole_window_breaches() {
    let env = env().await;
    let mut rule = env.cpu_rule();
    rule["duration_s"] = json!(60);
    env.create_rule(rule).await;
    env.cpu(5_000, 10.0).await;
    env.cpu(5_000, 99.0).await; // a spike
    env.cpu(5_000, 10.0).await;
    assert!(env.events().await.is_empty());

    // 95 % from now on: fires once the breach spans 60 s (13 reports at 5 s).
    for i in 0..12 {
        env.cpu(5_000, 95.0).await;
        assert!(env.events().await.is_empty(), "fired early at report {i}");
    }
    env.cpu(5_000, 95.0).await;
    let events = env.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["state"], "firing");
}

#[tokio::test]
async fn a_fifteen_minute_duration_rule_sees_a_dip_in_the_packed_part_of_the_ring() {
    // The ring keeps only its newest reports decoded: a 15-minute window
    // is read mostly from packed reports, and a dip there must still count.
    // (Firing state is read from the evaluator: 15 minutes of manual clock
    // outlive Alice's access token.)
    let env = env().await;
    let mut rule = env.cpu_rule();
    rule["duration_s"] = json!(900);
    let id = env.create_rule(rule).await["id"].as_u64().unwrap();
    for _ in 0..10 {
        env.cpu(5_000, 95.0).await;
    }
    env.cpu(5_000, 10.0).await; // the dip
    // 180 reports at 95 % span 895 s: not yet.
    for _ in 0..180 {
        env.cpu(5_000, 95.0).await;
    }
    assert!(
        env.app.state.alerting.firing_of(id).is_empty(),
        "fired before 900 s of breach"
    );
    env.cpu(5_000, 95.0).await;
    assert_eq!(env.app.state.alerting.firing_of(id).len(), 1);
}

#[tokio::test]
async fn offline_fires_after_silence_and_resolves_when_reports_come_back() {
    let env = env().await;
    let r = env
        .as_alice(
            Method::POST,
            "/api/rules",
            Some(json!({ "agent_id": env.agent, "metric": "offline" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Never reported: not offline yet.
    env.app.state.alerting.tick(env.now() + 3_600_000);
    assert!(env.events().await.is_empty());

    env.cpu(5_000, 10.0).await;
    env.app.clock.advance(14_000);
    env.app.state.alerting.tick(env.now());
    assert!(env.events().await.is_empty(), "14 s is within 3 intervals");

    env.app.clock.advance(6_000);
    env.app.state.alerting.tick(env.now());
    env.app.state.alerting.tick(env.now());
    let events = env.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["metric"], "offline");
    assert_eq!(events[0]["value"], 20.0);
    assert_eq!(events[0]["threshold"], 15.0);
    wait_for("the offline message", || env.telegram.count() == 1).await;
    let text = telegram_text(&env.telegram.hits()[0]);
    assert!(text.contains("nas is offline"), "{text}");

    // It reports again: resolved at once.
    env.cpu(1_000, 10.0).await;
    let events = env.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["state"], "resolved");
    wait_for("the back-online message", || env.telegram.count() == 2).await;
    assert!(telegram_text(&env.telegram.hits()[1]).contains("back online"));
}

#[tokio::test]
async fn a_per_mount_rule_fires_only_for_its_mount() {
    let env = env().await;
    let rule = |mount: Option<&str>, threshold: f64| {
        let mut r = json!({ "agent_id": env.agent, "metric": "disk_pct", "comparison": ">",
                            "threshold": threshold });
        if let Some(m) = mount {
            r["mount"] = json!(m);
        }
        r
    };
    let root = env.create_rule(rule(Some("/"), 90.0)).await;
    assert_eq!(root["label"], "/");
    env.send_after(5_000, 10.0, 50, 95).await;
    assert!(env.events().await.is_empty(), "/ is at 50 %");

    let data = env.create_rule(rule(Some("/data"), 90.0)).await;
    let events = env.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["rule_id"], data["id"]);
    assert_eq!(events[0]["label"], "/data");

    // Without a mount: each mount has its own state.
    let any = env.create_rule(rule(None, 40.0)).await;
    let labels: Vec<Value> = env
        .events()
        .await
        .iter()
        .filter(|e| e["rule_id"] == any["id"])
        .map(|e| e["label"].clone())
        .collect();
    assert_eq!(labels, [json!("/"), json!("/data")]);
    // Only / clears: only / resolves.
    env.send_after(5_000, 10.0, 10, 95).await;
    let resolved: Vec<Value> = env
        .events()
        .await
        .iter()
        .filter(|e| e["state"] == "resolved")
        .map(|e| e["label"].clone())
        .collect();
    assert_eq!(resolved, [json!("/")]);
}

#[tokio::test]
async fn a_down_channel_is_retried_and_recorded_as_failed_while_the_other_still_gets_its_message() {
    let env = env().await;
    env.hook.status.store(500, Ordering::SeqCst);
    env.create_rule(env.cpu_rule()).await;
    env.cpu(5_000, 95.0).await;
    let events = env.deliveries_settled().await;
    let hook = delivery(&events[0], "webhook");
    assert_eq!(hook["status"], "failed");
    assert_eq!(hook["attempts"], 3, "one attempt and two retries");
    assert!(hook["error"].as_str().unwrap().contains("500"), "{hook}");
    assert_eq!(env.hook.count(), 3);
    let tg = delivery(&events[0], "telegram");
    assert_eq!(tg["status"], "sent");
    assert_eq!(env.telegram.count(), 1);

    // Nothing listening at the webhook URL: connection errors, same outcome.
    let r = env
        .as_alice(
            Method::POST,
            "/api/recipient",
            Some(json!({ "webhook_url": dead_url() })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    env.cpu(5_000, 10.0).await;
    let events = env.deliveries_settled().await;
    assert_eq!(events[1]["state"], "resolved");
    let hook = delivery(&events[1], "webhook");
    assert_eq!(hook["status"], "failed");
    assert_eq!(hook["attempts"], 3);
    assert_eq!(delivery(&events[1], "telegram")["status"], "sent");
    assert_eq!(env.telegram.count(), 2);

    // A 4xx from Telegram (bad chat id) is not retried; the token never
    // shows in the recorded error.
    env.telegram.status.store(400, Ordering::SeqCst);
    env.cpu(5_000, 95.0).await;
    let events = env.deliveries_settled().await;
    let tg = delivery(&events[2], "telegram");
    assert_eq!(tg["status"], "failed");
    assert_eq!(tg["attempts"], 1);
    assert!(!events[2].to_string().contains(BOT_TOKEN));
}

#[tokio::test]
async fn channels_without_settings_are_skipped() {
    let telegram = Fake::start(200).await;
    let app = TestApp::with_args(args(&telegram, |a| a.telegram_bot_token = None));
    let alice = app.register_and_login("alice").await;
    let (agent, _) = app.create_agent(&alice, "nas").await;
    let r = app
        .call_as(&alice, Method::GET, "/api/recipient", None)
        .await;
    assert_eq!(
        r.body,
        json!({ "webhook_secret_set": false, "telegram_configured": false })
    );
    // A Telegram channel, but no bot token on the server or the channel.
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/recipient",
            Some(json!({ "telegram_chat_id": "4242" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.state.ring.push(
        agent,
        Arc::new(storage::model::Report {
            ts_ms: app.clock.now_ms(),
            cpu: Some(storage::model::Cpu {
                total_pct: 99.0,
                ..Default::default()
            }),
            ..Default::default()
        }),
    );
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/rules",
            Some(json!({ "agent_id": agent, "metric": "cpu_pct", "comparison": "gt", "threshold": 50 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.call_as(&alice, Method::GET, "/api/alerts", None).await;
    let deliveries = r.body["items"][0]["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0]["status"], "skipped");
    assert_eq!(
        deliveries[0]["error"],
        "the server has no Telegram bot token"
    );
    assert_eq!(deliveries[0]["channel_name"], "Telegram");
    assert_eq!(telegram.count(), 0);
}

#[tokio::test]
async fn a_restart_does_not_fire_again() {
    let mut env = env().await;
    let rule = env.create_rule(env.cpu_rule()).await;
    env.cpu(5_000, 95.0).await;
    env.deliveries_settled().await;
    assert_eq!(env.telegram.count(), 1);

    env.app.restart();
    env.alice = env.app.login("alice").await;
    let r = env
        .as_alice(Method::GET, &format!("/api/rules/{}", rule["id"]), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["firing"][0]["value"], 95.0, "still firing");
    env.cpu(5_000, 96.0).await;
    env.app.state.alerting.tick(env.now());
    // Evaluated (`cpu` waits for that), and every message of every recorded
    // event delivered: nothing more can arrive.
    env.deliveries_settled().await;
    assert_eq!(env.telegram.count(), 1, "no second message");
    assert_eq!(env.events().await.len(), 1, "no second firing event");

    // The cooldown still counts from before the restart; resolving works.
    env.cpu(5_000, 10.0).await;
    let events = env.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["state"], "resolved");
    wait_for("the resolution", || env.telegram.count() == 2).await;
}

#[tokio::test]
async fn another_user_cannot_see_edit_or_delete_rules_or_history() {
    let env = env().await;
    let bob = env.app.register_and_login("bob").await;
    let (bobs_agent, _) = env.app.create_agent(&bob, "bob's box").await;
    env.cpu(5_000, 95.0).await;
    let rule = env.create_rule(env.cpu_rule()).await;
    let id = rule["id"].as_u64().unwrap();
    let as_bob = |method: Method, path: String, body: Option<Value>| {
        let app = &env.app;
        let bob = bob.clone();
        async move { app.call_as(&bob, method, &path, body).await }
    };

    let r = as_bob(Method::GET, "/api/rules".into(), None).await;
    assert_eq!(r.body, json!([]));
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({ "enabled": false }))),
        (Method::PATCH, Some(json!({ "agent_id": bobs_agent }))),
        (Method::DELETE, None),
    ] {
        let theirs = as_bob(method.clone(), format!("/api/rules/{id}"), body.clone()).await;
        let missing = as_bob(method.clone(), "/api/rules/999999".into(), body).await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(theirs.text, missing.text);
    }
    // A rule on alice's agent: 404 like a missing agent.
    let mut on_alices = env.cpu_rule();
    on_alices["agent_id"] = json!(env.agent);
    let theirs = as_bob(Method::POST, "/api/rules".into(), Some(on_alices)).await;
    let mut on_missing = env.cpu_rule();
    on_missing["agent_id"] = json!(999_999);
    let missing = as_bob(Method::POST, "/api/rules".into(), Some(on_missing)).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.text);
    assert_eq!(theirs.text, missing.text);
    // Alice cannot move her rule onto bob's agent either.
    let r = env
        .as_alice(
            Method::PATCH,
            &format!("/api/rules/{id}"),
            Some(json!({ "agent_id": bobs_agent })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // History.
    let r = as_bob(Method::GET, "/api/alerts".into(), None).await;
    assert_eq!(r.body["total"], 0);
    let r = as_bob(
        Method::GET,
        format!("/api/alerts?agent_id={}", env.agent),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = as_bob(Method::DELETE, "/api/alerts".into(), None).await;
    assert_eq!(r.body["deleted"], 0);

    // Alice's rule and history are untouched.
    let r = env
        .as_alice(Method::GET, &format!("/api/rules/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["enabled"], true);
    assert_eq!(r.body["agent_id"], env.agent);
    assert_eq!(env.history("").await["total"], 1);
}

#[tokio::test]
async fn invalid_rules_are_422_naming_the_field() {
    let env = env().await;
    let a = env.agent;
    let cases = [
        (
            json!({ "agent_id": a, "metric": "cpu_pct", "comparison": "gt", "threshold": 101 }),
            "threshold",
        ),
        (
            json!({ "agent_id": a, "metric": "cpu_pct", "comparison": "gt", "threshold": -1 }),
            "threshold",
        ),
        (
            json!({ "agent_id": a, "metric": "cpu_pct", "comparison": "gt" }),
            "threshold",
        ),
        (
            json!({ "agent_id": a, "metric": "cpu_pct", "threshold": 50 }),
            "comparison",
        ),
        (
            json!({ "agent_id": a, "metric": "temperature_c", "comparison": "gt", "threshold": 200 }),
            "threshold",
        ),
        (
            json!({ "agent_id": a, "metric": "load_1m", "comparison": "gt", "threshold": -0.5 }),
            "threshold",
        ),
        (
            json!({ "agent_id": a, "metric": "offline", "comparison": "gt", "threshold": 5 }),
            "comparison",
        ),
        (
            json!({ "agent_id": a, "metric": "offline", "threshold": 5 }),
            "threshold",
        ),
        (
            json!({ "agent_id": a, "metric": "cpu_pct", "label": "/", "comparison": "gt", "threshold": 5 }),
            "label",
        ),
        (
            json!({ "agent_id": a, "metric": "cpu_pct", "comparison": "gt", "threshold": 5, "duration_s": 3600 }),
            "duration_s",
        ),
        (
            json!({ "agent_id": a, "metric": "cpu_pct", "comparison": "gt", "threshold": 5, "cooldown_s": 9999999 }),
            "cooldown_s",
        ),
        (
            json!({ "agent_id": a, "metric": "cpu_pct", "comparison": "gt", "threshold": 5, "name": "x".repeat(101) }),
            "name",
        ),
    ];
    for (body, field) in cases {
        let r = env
            .as_alice(Method::POST, "/api/rules", Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(
            r.body["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{body}: {}",
            r.text
        );
    }
    // Unknown metric / comparison: serde names the variant.
    for body in [
        json!({ "agent_id": a, "metric": "cpu", "comparison": "gt", "threshold": 5 }),
        json!({ "agent_id": a, "metric": "cpu_pct", "comparison": ">=", "threshold": 5 }),
    ] {
        let r = env
            .as_alice(Method::POST, "/api/rules", Some(body.clone()))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(r.text.contains("unknown variant"), "{}", r.text);
    }
    // A PATCH is validated as a whole.
    let rule = env.create_rule(env.cpu_rule()).await;
    let r = env
        .as_alice(
            Method::PATCH,
            &format!("/api/rules/{}", rule["id"]),
            Some(json!({ "threshold": 150 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("threshold:"), "{}", r.text);
    assert!(env.events().await.is_empty());
    // Nothing invalid was stored.
    let r = env.as_alice(Method::GET, "/api/rules", None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["threshold"], 90.0);
}

#[tokio::test]
async fn rules_can_be_listed_disabled_edited_and_deleted() {
    let env = env().await;
    let rule = env.create_rule(env.cpu_rule()).await;
    assert_eq!(rule["cooldown_s"], 300);
    assert_eq!(rule["enabled"], true);
    let path = format!("/api/rules/{}", rule["id"]);
    let r = env
        .as_alice(Method::PATCH, &path, Some(json!({ "enabled": false })))
        .await;
    assert_eq!(r.body["enabled"], false);
    // Disabled rules do not fire.
    env.cpu(5_000, 99.0).await;
    assert!(env.events().await.is_empty());
    // Re-enabled while breached: fires at once.
    let r = env
        .as_alice(
            Method::PATCH,
            &path,
            Some(json!({ "enabled": true, "name": "" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body.get("name").is_none());
    assert_eq!(env.events().await.len(), 1);
    let r = env
        .as_alice(
            Method::GET,
            &format!("/api/rules?agent_id={}", env.agent),
            None,
        )
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = env.as_alice(Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = env.as_alice(Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The history keeps its events.
    assert_eq!(env.events().await.len(), 1);
}

fn stored_event(
    agent_id: u64,
    agent_name: &str,
    metric: AlertMetric,
    state: AlertState,
    ts_ms: i64,
) -> AlertRecord {
    AlertRecord {
        id: 0,
        rule_id: 1,
        rule_name: None,
        agent_id,
        agent_name: agent_name.into(),
        metric,
        label: None,
        state,
        value: 1.0,
        threshold: 2.0,
        comparison: Some(Comparison::Gt),
        ts_ms,
        deliveries: vec![],
    }
}

#[tokio::test]
async fn history_filters_sorts_pages_and_clears() {
    let env = env().await;
    let (web, _) = env.app.create_agent(&env.alice, "web").await;
    let owner = env.alice.user_id;
    // 12 events: alternating agents, cpu/memory, firing/resolved, 1 s apart.
    for i in 0..12i64 {
        let (agent, name) = if i % 2 == 0 {
            (env.agent, "nas")
        } else {
            (web, "web")
        };
        let metric = if i % 3 == 0 {
            AlertMetric::MemoryPct
        } else {
            AlertMetric::CpuPct
        };
        let state = if i % 4 < 2 {
            AlertState::Firing
        } else {
            AlertState::Resolved
        };
        env.app
            .state
            .catalog
            .record_transition(
                1,
                "",
                None,
                Some((owner, stored_event(agent, name, metric, state, 1_000 * i))),
                10_000,
            )
            .unwrap();
    }
    let ts = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["ts_ms"].as_i64().unwrap())
            .collect()
    };
    let page = env.history("").await;
    assert_eq!(page["total"], 12);
    assert_eq!(
        ts(&page)[..3],
        [11_000, 10_000, 9_000],
        "newest first by default"
    );
    let page = env.history("limit=3&offset=3&order=asc").await;
    assert_eq!(ts(&page), [3_000, 4_000, 5_000]);
    assert_eq!(page["total"], 12);
    let page = env.history(&format!("agent_id={web}")).await;
    assert_eq!(page["total"], 6);
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["agent_name"] == "web")
    );
    let page = env.history("metric=memory_pct&order=asc").await;
    assert_eq!(ts(&page), [0, 3_000, 6_000, 9_000]);
    let page = env
        .history("state=resolved&since=2000&until=8000&order=asc")
        .await;
    assert_eq!(ts(&page), [2_000, 3_000, 6_000, 7_000]);
    let page = env.history("sort=agent&order=asc&limit=7").await;
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["agent_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nas", "nas", "nas", "nas", "nas", "nas", "web"]);
    assert_eq!(ts(&page)[..2], [0, 2_000]);

    for bad in ["limit=0", "state=sleeping", "since=5&until=1", "colour=red"] {
        let r = env
            .as_alice(Method::GET, &format!("/api/alerts?{bad}"), None)
            .await;
        assert!(r.status.is_client_error(), "{bad}: {}", r.status);
    }

    // Clear by filter, then everything.
    let r = env
        .as_alice(
            Method::DELETE,
            &format!("/api/alerts?agent_id={web}&state=firing"),
            None,
        )
        .await;
    assert_eq!(r.body["deleted"], 3, "{}", r.text);
    assert_eq!(env.history("").await["total"], 9);
    let r = env.as_alice(Method::DELETE, "/api/alerts", None).await;
    assert_eq!(r.body["deleted"], 9);
    assert_eq!(env.history("").await["total"], 0);
}

#[tokio::test]
async fn history_keeps_the_newest_n_events_per_user() {
    let env = env_with(|a| a.alert_history_limit = Some(5)).await;
    env.create_rule(env.cpu_rule()).await;
    // Flapping: 8 transitions.
    for i in 0..8 {
        env.cpu(5_000, if i % 2 == 0 { 95.0 } else { 10.0 }).await;
    }
    let events = env.events().await;
    assert_eq!(events.len(), 5);
    assert_eq!(env.history("").await["total"], 5);
    assert_eq!(events[4]["state"], "resolved", "the newest is kept");
    assert_eq!(events[0]["state"], "resolved", "the oldest three went");
    env.deliveries_settled().await;
}

#[tokio::test]
async fn recipient_settings_and_the_test_message() {
    let env = env().await;
    let r = env.as_alice(Method::GET, "/api/recipient", None).await;
    assert_eq!(r.body["telegram_chat_id"], "4242");
    assert_eq!(r.body["webhook_secret_set"], true);
    assert_eq!(r.body["telegram_configured"], true);
    assert!(!r.text.contains("s3cret"), "the secret is never returned");

    let r = env
        .as_alice(Method::POST, "/api/recipient/test", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["results"][0]["channel"], "telegram");
    assert_eq!(r.body["results"][0]["status"], "sent");
    assert_eq!(r.body["results"][1]["status"], "sent");
    assert!(telegram_text(&env.telegram.hits()[0]).contains("test message"));
    let hook = &env.hook.hits()[0];
    assert_eq!(hook.body["event"], "test");
    assert_eq!(
        hook.headers["x-statusmonitor-signature"].to_str().unwrap(),
        server::alerting::notify::webhook::signature("s3cret", &hook.raw)
    );

    for (body, field) in [
        (
            json!({ "telegram_chat_id": "not a chat" }),
            "telegram_chat_id",
        ),
        (
            json!({ "webhook_url": "ftp://example.com/x" }),
            "webhook_url",
        ),
        (json!({ "webhook_url": "/relative" }), "webhook_url"),
    ] {
        let r = env
            .as_alice(Method::POST, "/api/recipient", Some(body))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text.contains(field), "{}", r.text);
    }
    // Empty strings clear; the test then skips the cleared channels.
    let r = env
        .as_alice(
            Method::POST,
            "/api/recipient",
            Some(json!({ "telegram_chat_id": "", "webhook_url": "", "webhook_secret": "" })),
        )
        .await;
    assert_eq!(
        r.body,
        json!({ "webhook_secret_set": false, "telegram_configured": true })
    );
    env.hook.status.store(500, Ordering::SeqCst);
    let r = env
        .as_alice(Method::POST, "/api/recipient/test", None)
        .await;
    assert_eq!(r.body["results"][0]["status"], "skipped");
    assert_eq!(r.body["results"][1]["status"], "skipped");
}

#[tokio::test]
async fn deleting_an_agent_deletes_its_rules_and_history() {
    let env = env().await;
    env.cpu(5_000, 95.0).await;
    let rule = env.create_rule(env.cpu_rule()).await;
    assert_eq!(env.events().await.len(), 1);
    let r = env
        .as_alice(Method::DELETE, &format!("/api/agents/{}", env.agent), None)
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = env
        .as_alice(Method::GET, &format!("/api/rules/{}", rule["id"]), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(env.history("").await["total"], 0);
}

#[tokio::test]
async fn deliveries_cut_off_by_a_restart_are_recorded_as_failed() {
    let mut env = env().await;
    let mut event = stored_event(env.agent, "nas", AlertMetric::CpuPct, AlertState::Firing, 1);
    event.deliveries = vec![storage::catalog::DeliveryRecord {
        channel: storage::model::Channel::Telegram,
        status: storage::model::DeliveryStatus::Pending,
        attempts: 0,
        error: None,
    }];
    env.app
        .state
        .catalog
        .record_transition(1, "", None, Some((env.alice.user_id, event)), 10_000)
        .unwrap();
    env.app.restart();
    env.alice = env.app.login("alice").await;
    let events = env.events().await;
    let tg = delivery(&events[0], "telegram");
    assert_eq!(tg["status"], "failed");
    assert!(tg["error"].as_str().unwrap().contains("restart"), "{tg}");
}

#[tokio::test]
async fn a_hanging_webhook_blocks_neither_ingest_nor_telegram() {
    // Accepts connections and never answers.
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole = black_hole.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = black_hole.accept().await {
            held.push(socket);
        }
    });
    let env = env_with(|a| a.notify_timeout = Some("30s".into())).await;
    let r = env
        .as_alice(
            Method::POST,
            "/api/recipient",
            Some(json!({ "webhook_url": format!("http://{hole}/hook") })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    env.create_rule(env.cpu_rule()).await;
    let started = Instant::now();
    env.cpu(5_000, 95.0).await;
    env.cpu(5_000, 96.0).await;
    assert!(started.elapsed() < Duration::from_secs(2), "ingest waited");
    let deadline = Instant::now() + Duration::from_secs(5);
    let events = loop {
        let events = env.events().await;
        if delivery(&events[0], "telegram")["status"] == "sent" {
            break events;
        }
        assert!(Instant::now() < deadline, "telegram never sent: {events:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(env.telegram.count(), 1);
    assert_eq!(delivery(&events[0], "webhook")["status"], "pending");
    assert_eq!(delivery(&events[0], "telegram")["status"], "sent");
}

#[tokio::test]
async fn after_downtime_agents_get_one_limit_and_their_longest_retry_wait_before_they_count_as_offline()
 {
    let mut env = env().await;
    env.create_rule(json!({ "agent_id": env.agent, "metric": "offline", "duration_s": 30 }))
        .await;
    env.cpu(5_000, 10.0).await;
    // The server is down for ten minutes.
    env.app.clock.advance(600_000);
    env.app.restart();
    env.alice = env.app.login("alice").await;
    env.app.state.alerting.tick(env.now());
    // The limit (30 s) plus the agent's longest retry wait (2 × 5 s).
    for step in [29_000, 10_000] {
        env.app.clock.advance(step);
        env.app.state.alerting.tick(env.now());
        assert!(
            env.events().await.is_empty(),
            "the agent may still be waiting out a retry"
        );
    }
    env.app.clock.advance(2_000);
    env.app.state.alerting.tick(env.now());
    let events = env.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["value"], 641.0, "the real silence");

    // Firing across another restart: neither resolved nor fired again.
    env.app.restart();
    env.alice = env.app.login("alice").await;
    env.app.state.alerting.tick(env.now());
    assert_eq!(env.events().await.len(), 1);
}
