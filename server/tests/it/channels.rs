//! Notification channels end to end: each HTTP kind against a local fake
//! that checks the request its service documents, email against a real
//! SMTP server (aiosmtpd) with STARTTLS, routing, quiet hours and mute on
//! the manual clock, outbound-guard refusals, write-only secrets (in
//! answers and in the log), bad input, the admin's Telegram token and the
//! upgrade of a format-3 directory.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use server::config::ServeArgs;
use storage::catalog::{Catalog, ChannelRecord};
use storage::clock::Clock;

use crate::common::{Reply, Session, T0, TestApp};

/// One request a fake received.
#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Value,
}

impl Hit {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A local HTTP receiver that records every request and answers `status`
/// (with `Location` when given).
#[derive(Clone)]
struct Fake {
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<AtomicU16>,
    addr: SocketAddr,
}

impl Fake {
    async fn start(status: u16, location: Option<String>) -> Fake {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(status));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (h, s) = (hits.clone(), status.clone());
        let app = axum::Router::new().fallback(
            move |method: Method,
                  uri: axum::http::Uri,
                  headers: HeaderMap,
                  body: axum::body::Bytes| {
                let (h, s, location) = (h.clone(), s.clone(), location.clone());
                async move {
                    h.lock().unwrap().push(Hit {
                        method: method.to_string(),
                        path: uri.path().to_string(),
                        headers,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    let code = StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap();
                    let mut headers = HeaderMap::new();
                    if let Some(l) = location {
                        headers.insert("location", l.parse().unwrap());
                    }
                    (code, headers, "remote body that must never be shown")
                }
            },
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { hits, status, addr }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hit(&self, path_prefix: &str) -> Hit {
        self.hits()
            .into_iter()
            .find(|h| h.path.starts_with(path_prefix))
            .unwrap_or_else(|| panic!("no request to {path_prefix}: {:?}", self.hits()))
    }
}

/// Polls `cond` every 10 ms for up to 5 s.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every log line of the test binary from the server crate, at debug.
fn captured_log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "server=debug,storage=debug",
            ))
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        // Another test may have set one first: then this one sees nothing,
        // and the secrets test says so.
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Env {
    app: TestApp,
    alice: Session,
    agent: u64,
    token: String,
    fake: Fake,
}

fn base_args(fake: &Fake) -> ServeArgs {
    ServeArgs {
        open_registration: Some(true),
        telegram_api_base: Some(fake.url()),
        pushover_api_base: Some(fake.url()),
        public_url: Some("https://mon.example".into()),
        notify_retry_delays: Some("10ms".into()),
        notify_timeout: Some("3s".into()),
        offline_check_interval: Some("1h".into()),
        ..Default::default()
    }
}

/// Alice (the admin, who may reach loopback) with agent "nas" and a fake
/// answering 200 for every kind.
async fn env_with(tweak: impl FnOnce(&mut ServeArgs)) -> Env {
    captured_log();
    let fake = Fake::start(200, None).await;
    let mut args = base_args(&fake);
    tweak(&mut args);
    let app = TestApp::with_args(args);
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    Env {
        app,
        alice,
        agent,
        token,
        fake,
    }
}

impl Env {
    /// A fresh session (after the manual clock moved past the token's life).
    async fn relogin(&mut self) {
        self.alice = self.app.login("alice").await;
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.app.call_as(&self.alice, method, path, body).await
    }

    async fn channel(&self, body: Value) -> u64 {
        let r = self.call(Method::POST, "/api/channels", Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_u64().unwrap()
    }

    async fn cpu(&self, ms: i64, cpu: f64) {
        self.app.clock.advance(ms);
        let now = self.app.clock.now_ms();
        let r = self
            .app
            .post(
                "/api/ingest",
                json!({ "reports": [{ "ts_ms": now, "interval_ms": 5000, "cpu": { "total_pct": cpu } }] }),
                &[("x-agent-token", &self.token)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        self.app.state.alerting.settled().await;
    }

    async fn rule(&self, name: &str, channels: &[u64], urgent: bool) -> u64 {
        let r = self
            .call(
                Method::POST,
                "/api/rules",
                Some(
                    json!({ "agent_id": self.agent, "metric": "cpu_pct", "comparison": "gt",
                             "threshold": 90, "name": name }),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let id = r.body["id"].as_u64().unwrap();
        let r = self
            .call(
                Method::PUT,
                &format!("/api/rules/{id}/notify"),
                Some(json!({ "channels": channels, "urgent": urgent })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        id
    }

    /// The history, oldest first, once no delivery is pending.
    async fn settled_events(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = self
                .call(Method::GET, "/api/alerts?order=asc&limit=1000", None)
                .await;
            let events = r.body["items"].as_array().unwrap().clone();
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
            assert!(Instant::now() < deadline, "still pending: {events:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

const PUSHOVER_USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
const PUSHOVER_APP: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";

#[tokio::test]
async fn one_alert_reaches_every_kind_in_the_format_its_service_documents() {
    let env = env_with(|_| {}).await;
    let url = env.fake.url();
    let mut ids = Vec::new();
    for body in [
        json!({ "name": "phone", "kind": "telegram",
                "config": { "chat_id": "-1001234", "bot_token": "999:CHANNEL-TOKEN" } }),
        json!({ "name": "ntfy", "kind": "ntfy",
                "config": { "server_url": url, "topic": "alerts_nas", "token": "tk_secret",
                            "priority": "5", "tags": "server,nas" } }),
        json!({ "name": "discord", "kind": "discord",
                "config": { "webhook_url": format!("{url}/api/webhooks/1/discord-secret") } }),
        json!({ "name": "slack", "kind": "slack",
                "config": { "webhook_url": format!("{url}/services/T0/B0/slack-secret") } }),
        json!({ "name": "gotify", "kind": "gotify",
                "config": { "server_url": format!("{url}/gotify/"), "app_token": "gotify-secret" } }),
        json!({ "name": "pushover", "kind": "pushover",
                "config": { "user_key": PUSHOVER_USER, "app_token": PUSHOVER_APP } }),
        json!({ "name": "matrix", "kind": "matrix",
                "config": { "homeserver": url, "access_token": "matrix-secret",
                            "room_id": "!room:example.org" } }),
        json!({ "name": "hook", "kind": "webhook",
                "config": { "url": format!("{url}/hook"), "secret": "hmac-secret" } }),
    ] {
        ids.push(env.channel(body).await);
    }
    env.rule("CPU hot", &ids, false).await;
    env.cpu(5_000, 20.0).await;
    env.cpu(5_000, 97.5).await;
    let events = env.settled_events().await;
    assert_eq!(events.len(), 1);
    let deliveries = events[0]["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 8, "{deliveries:?}");
    let names: Vec<&str> = deliveries
        .iter()
        .map(|d| d["channel_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "phone", "ntfy", "discord", "slack", "gotify", "pushover", "matrix", "hook"
        ]
    );
    for d in deliveries {
        assert_eq!(d["status"], "sent", "{d}");
    }
    let agent_url = format!("https://mon.example/agents/{}", env.agent);

    // Telegram Bot API sendMessage with MarkdownV2, the channel's own token.
    let tg = env.fake.hit("/bot");
    assert_eq!(tg.method, "POST");
    assert_eq!(tg.path, "/bot999:CHANNEL-TOKEN/sendMessage");
    assert_eq!(tg.header("content-type"), "application/json");
    assert_eq!(tg.body["chat_id"], -1001234);
    assert_eq!(tg.body["parse_mode"], "MarkdownV2");
    let text = tg.body["text"].as_str().unwrap();
    assert!(
        text.starts_with("*🔴 nas: CPU is 97\\.5% \\(\\> 90\\.0%\\)*"),
        "{text}"
    );
    assert!(text.contains("Rule: CPU hot"), "{text}");
    assert!(text.contains("Since: 2026\\-01\\-01 00:00 UTC"), "{text}");

    // ntfy: JSON publish to the server root, bearer token.
    let ntfy = env.fake.hits().into_iter().find(|h| h.path == "/").unwrap();
    assert_eq!(ntfy.method, "POST");
    assert_eq!(ntfy.header("authorization"), "Bearer tk_secret");
    assert_eq!(ntfy.body["topic"], "alerts_nas");
    assert_eq!(ntfy.body["title"], "nas: CPU is 97.5% (> 90.0%)");
    assert_eq!(ntfy.body["priority"], 5);
    assert_eq!(
        ntfy.body["tags"],
        json!(["rotating_light", "server", "nas"])
    );
    assert_eq!(ntfy.body["click"], agent_url.as_str());
    assert!(
        ntfy.body["message"]
            .as_str()
            .unwrap()
            .contains("Rule: CPU hot")
    );

    // Discord execute-webhook: content ≤ 2000, no mentions.
    let discord = env.fake.hit("/api/webhooks/1/discord-secret");
    assert_eq!(discord.method, "POST");
    let content = discord.body["content"].as_str().unwrap();
    assert!(
        content.starts_with("**🔴 nas: CPU is 97.5% \\(\\> 90.0%\\)**"),
        "{content}"
    );
    assert!(content.chars().count() <= 2000);
    assert_eq!(discord.body["allowed_mentions"], json!({ "parse": [] }));

    // Slack incoming webhook: text fallback and Block Kit.
    let slack = env.fake.hit("/services/T0/B0/slack-secret");
    assert_eq!(slack.body["blocks"][0]["type"], "section");
    assert_eq!(slack.body["blocks"][0]["text"]["type"], "mrkdwn");
    assert!(
        slack.body["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("(&gt; 90.0%)")
    );
    assert!(slack.body["text"].as_str().unwrap().contains(&agent_url));

    // Gotify: POST /message with X-Gotify-Key.
    let gotify = env.fake.hit("/gotify/message");
    assert_eq!(gotify.header("x-gotify-key"), "gotify-secret");
    assert_eq!(gotify.body["priority"], 8);
    assert!(gotify.body["title"].as_str().unwrap().contains("nas: CPU"));
    assert_eq!(
        gotify.body["extras"]["client::notification"]["click"]["url"],
        agent_url.as_str()
    );

    // Pushover messages API.
    let pushover = env.fake.hit("/1/messages.json");
    assert_eq!(pushover.body["token"], PUSHOVER_APP);
    assert_eq!(pushover.body["user"], PUSHOVER_USER);
    assert_eq!(pushover.body["priority"], 1);
    assert_eq!(pushover.body["url"], agent_url.as_str());
    assert!(
        pushover.body["message"]
            .as_str()
            .unwrap()
            .contains("Since:")
    );

    // Matrix client-server API: PUT send/m.room.message/{txnId}.
    let matrix = env.fake.hit("/_matrix/");
    assert_eq!(matrix.method, "PUT");
    assert!(
        matrix
            .path
            .starts_with("/_matrix/client/v3/rooms/%21room%3Aexample.org/send/m.room.message/sm"),
        "{}",
        matrix.path
    );
    assert_eq!(matrix.header("authorization"), "Bearer matrix-secret");
    assert_eq!(matrix.body["msgtype"], "m.text");
    assert_eq!(matrix.body["format"], "org.matrix.custom.html");
    assert!(
        matrix.body["formatted_body"]
            .as_str()
            .unwrap()
            .starts_with("<strong>🔴 nas: CPU is 97.5% (&gt; 90.0%)</strong>")
    );

    // The generic webhook keeps its payload and signature.
    let hook = env.fake.hit("/hook");
    assert_eq!(hook.body["event"], "firing");
    assert!(
        hook.header("x-statusmonitor-signature")
            .starts_with("sha256=")
    );

    // Each channel's health says when it last worked.
    let r = env.call(Method::GET, "/api/channels", None).await;
    for c in r.body.as_array().unwrap() {
        assert_eq!(c["health"]["last_ok_ms"], T0 + 10_000, "{c}");
        assert_eq!(c["health"]["failing"], false);
    }
}

#[tokio::test]
async fn a_channel_failing_persistently_is_marked_failing_with_a_fixed_phrase() {
    let env = env_with(|_| {}).await;
    let id = env
        .channel(json!({ "name": "ntfy", "kind": "ntfy",
                        "config": { "server_url": env.fake.url(), "topic": "t" } }))
        .await;
    env.fake.status.store(503, Ordering::SeqCst);
    for _ in 0..3 {
        let r = env
            .call(Method::POST, &format!("/api/channels/{id}/test"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(
            r.body,
            json!({ "sent": false, "error": "HTTP 503", "attempts": 1 })
        );
    }
    let r = env
        .call(Method::GET, &format!("/api/channels/{id}"), None)
        .await;
    assert_eq!(r.body["health"]["failing"], true, "{}", r.text);
    assert_eq!(r.body["health"]["last_error"], "HTTP 503");
    assert_eq!(r.body["health"]["consecutive_failures"], 3);
    assert!(!r.text.contains("remote body"), "{}", r.text);
    env.fake.status.store(200, Ordering::SeqCst);
    let r = env
        .call(Method::POST, &format!("/api/channels/{id}/test"), None)
        .await;
    assert_eq!(r.body["sent"], true, "{}", r.text);
    let r = env
        .call(Method::GET, &format!("/api/channels/{id}"), None)
        .await;
    assert_eq!(r.body["health"]["failing"], false);
}

#[tokio::test]
async fn a_rule_falls_back_to_the_defaults_when_its_channels_are_deleted() {
    let env = env_with(|_| {}).await;
    let url = env.fake.url();
    let default = env
        .channel(json!({ "name": "default", "kind": "ntfy", "default": true,
                        "config": { "server_url": url, "topic": "default_topic" } }))
        .await;
    let named = env
        .channel(json!({ "name": "named", "kind": "ntfy", "default": false,
                        "config": { "server_url": url, "topic": "named_topic" } }))
        .await;
    let rule = env.rule("hot", &[named], false).await;
    let r = env
        .call(Method::DELETE, &format!("/api/channels/{named}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = env
        .call(Method::GET, &format!("/api/rules/{rule}/notify"), None)
        .await;
    assert_eq!(
        r.body,
        json!({ "channels": [named], "urgent": false, "missing": [named], "uses_defaults": true })
    );
    env.cpu(5_000, 99.0).await;
    let events = env.settled_events().await;
    let d = &events[0]["deliveries"];
    assert_eq!(d.as_array().unwrap().len(), 1);
    assert_eq!(d[0]["channel_id"], default);
    assert_eq!(d[0]["status"], "sent");
    assert_eq!(env.fake.hits()[0].body["topic"], "default_topic");
}

#[tokio::test]
async fn quiet_hours_hold_non_urgent_alerts_for_one_summary_and_mute_silences_all() {
    let mut env = env_with(|_| {}).await;
    let ntfy = env
        .channel(json!({ "name": "ntfy", "kind": "ntfy",
                        "config": { "server_url": env.fake.url(), "topic": "t" } }))
        .await;
    // T0 is 00:00 UTC = 01:00 in Berlin: inside 23:00-07:00.
    let r = env
        .call(
            Method::PUT,
            "/api/notify/settings",
            Some(json!({ "quiet_hours": { "start": "23:00", "end": "07:00",
                                          "time_zone": "Europe/Berlin" } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    env.rule("background", &[ntfy], false).await;
    env.rule("urgent", &[ntfy], true).await;
    env.cpu(5_000, 99.0).await;
    let events = env.settled_events().await;
    assert_eq!(events.len(), 2);
    let by_rule = |name: &str| {
        events
            .iter()
            .find(|e| e["rule_name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_rule("urgent")["deliveries"][0]["status"], "sent");
    let held = by_rule("background");
    assert_eq!(held["deliveries"][0]["status"], "skipped");
    assert_eq!(
        held["deliveries"][0]["error"],
        "held for the quiet-hours summary"
    );
    assert_eq!(env.fake.hits().len(), 1, "only the urgent one was sent");

    // Still quiet at 06:59 Berlin: nothing more.
    env.app.clock.set(T0 + 5 * 3_600_000 + 59 * 60_000);
    env.app.state.alerting.tick(env.app.clock.now_ms());
    assert_eq!(env.fake.hits().len(), 1);
    // 07:00 Berlin: one summary, and the held event says it went in it.
    env.app.clock.set(T0 + 6 * 3_600_000);
    env.app.state.alerting.tick(env.app.clock.now_ms());
    wait_for("the summary", || env.fake.hits().len() == 2).await;
    env.relogin().await;
    let summary = &env.fake.hits()[1];
    assert_eq!(summary.body["title"], "1 alerts during quiet hours");
    let message = summary.body["message"].as_str().unwrap();
    assert!(message.contains("nas: CPU is 99.0%"), "{message}");
    let events = env.settled_events().await;
    let held = events
        .iter()
        .find(|e| e["rule_name"] == "background")
        .unwrap();
    assert_eq!(held["deliveries"][0]["status"], "sent", "{held}");
    assert_eq!(
        held["deliveries"][0]["error"],
        "sent in the quiet-hours summary"
    );
    // Summarised once.
    env.app.state.alerting.tick(env.app.clock.now_ms());
    env.settled_events().await;
    assert_eq!(env.fake.hits().len(), 2);

    // Muted: even urgent rules record a skip and send nothing.
    let until = env.app.clock.now_ms() + 3_600_000;
    let r = env
        .call(
            Method::PUT,
            "/api/notify/settings",
            Some(json!({ "quiet_hours": null, "mute_until_ms": until })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    env.cpu(5_000, 10.0).await; // both resolve
    let events = env.settled_events().await;
    for e in &events[2..] {
        assert_eq!(e["state"], "resolved");
        assert_eq!(e["deliveries"][0]["status"], "skipped");
        assert!(
            e["deliveries"][0]["error"]
                .as_str()
                .unwrap()
                .starts_with("muted until"),
            "{e}"
        );
    }
    assert_eq!(env.fake.hits().len(), 2);
}

#[tokio::test]
async fn a_non_admin_cannot_point_a_channel_inward_by_address_name_or_redirect() {
    let target = Fake::start(200, None).await;
    let env = env_with(|a| a.outbound_allow = Vec::new()).await;
    let bob = env.app.register_and_login("bob").await;
    let port = env.fake.addr.port();
    for (body, field) in [
        (
            json!({ "name": "n", "kind": "ntfy", "config": { "server_url": format!("http://127.0.0.1:{port}"), "topic": "t" } }),
            "config.server_url",
        ),
        (
            json!({ "name": "n", "kind": "ntfy", "config": { "server_url": format!("http://localhost:{port}"), "topic": "t" } }),
            "config.server_url",
        ),
        (
            json!({ "name": "m", "kind": "matrix", "config": { "homeserver": "http://169.254.169.254", "access_token": "x", "room_id": "!a:b" } }),
            "config.homeserver",
        ),
        (
            json!({ "name": "e", "kind": "email", "config": { "host": "127.0.0.1", "from": "a@example.com", "to": "b@example.com" } }),
            "config.host",
        ),
        (
            json!({ "name": "e", "kind": "email", "config": { "host": "localhost", "from": "a@example.com", "to": "b@example.com" } }),
            "config.host",
        ),
    ] {
        let r = env
            .app
            .call_as(&bob, Method::POST, "/api/channels", Some(body))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert!(r.text.contains(field), "{}", r.text);
        assert!(r.text.contains("outbound guard"), "{}", r.text);
    }
    // Stored before (or with DNS that changed since): refused at send time,
    // the name resolved and checked, nothing connected.
    for (kind, fields) in [
        (
            storage::model::Channel::Ntfy,
            vec![
                ("server_url", format!("http://localhost:{port}")),
                ("topic", "t".into()),
            ],
        ),
        (
            storage::model::Channel::Email,
            vec![
                ("host", "localhost".into()),
                ("port", port.to_string()),
                ("security", "none".into()),
                ("from", "a@example.com".into()),
                ("to", "b@example.com".into()),
            ],
        ),
    ] {
        let c = env
            .app
            .state
            .catalog
            .create_channel(
                &ChannelRecord {
                    id: 0,
                    owner_id: bob.user_id,
                    name: "stored".into(),
                    kind,
                    default: true,
                    fields: fields
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                    created_ms: T0,
                    updated_ms: T0,
                },
                50,
            )
            .unwrap()
            .unwrap();
        let r = env
            .app
            .call_as(
                &bob,
                Method::POST,
                &format!("/api/channels/{}/test", c.id),
                None,
            )
            .await;
        assert_eq!(
            r.body["error"], "refused by the outbound guard: loopback address",
            "{}",
            r.text
        );
    }
    assert!(env.fake.hits().is_empty(), "nothing reached the fake");

    // By redirect: the allowed first hop answers 302 to an internal
    // address; the redirect is reported, not followed.
    let redirector = Fake::start(302, Some(format!("{}/inner", target.url()))).await;
    let env = env_with(|a| a.outbound_allow = vec!["127.0.0.0/8".into()]).await;
    let bob = env.app.register_and_login("bob").await;
    let r = env
        .app
        .call_as(
            &bob,
            Method::POST,
            "/api/channels",
            Some(json!({ "name": "n", "kind": "gotify",
                         "config": { "server_url": redirector.url(), "app_token": "x" } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_u64().unwrap();
    let r = env
        .app
        .call_as(
            &bob,
            Method::POST,
            &format!("/api/channels/{id}/test"),
            None,
        )
        .await;
    assert_eq!(r.body["error"], "HTTP 302", "{}", r.text);
    assert_eq!(redirector.hits().len(), 1);
    assert!(target.hits().is_empty(), "the redirect was not followed");
}

/// Every secret a test sets; none may appear in an answer or the log.
const SECRETS: [&str; 6] = [
    "tk_secret_ntfy_7",
    "discord-secret-path-7",
    "gotify-secret-7",
    "matrix-secret-7",
    "smtp-password-7",
    "4242:BOTTOKENsecret7",
];

#[tokio::test]
async fn secrets_are_write_only_and_never_logged() {
    let env = env_with(|_| {}).await;
    let url = env.fake.url();
    let bodies = [
        json!({ "name": "a", "kind": "ntfy", "config": { "server_url": url, "topic": "t", "token": SECRETS[0] } }),
        json!({ "name": "b", "kind": "discord", "config": { "webhook_url": format!("{url}/{}", SECRETS[1]) } }),
        json!({ "name": "c", "kind": "gotify", "config": { "server_url": url, "app_token": SECRETS[2] } }),
        json!({ "name": "d", "kind": "matrix", "config": { "homeserver": url, "access_token": SECRETS[3], "room_id": "!r:x" } }),
        json!({ "name": "e", "kind": "email", "config": { "host": "127.0.0.1", "port": "1", "security": "none",
                 "username": "u", "password": SECRETS[4], "from": "a@example.com", "to": "b@example.com" } }),
    ];
    let mut answers = String::new();
    let mut ids = Vec::new();
    for body in bodies {
        let r = env.call(Method::POST, "/api/channels", Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        answers.push_str(&r.text);
        ids.push(r.body["id"].as_u64().unwrap());
    }
    let r = env.call(Method::GET, "/api/channels", None).await;
    answers.push_str(&r.text);
    assert_eq!(r.body[0]["secrets"]["token"], json!({ "set": true }));
    assert_eq!(r.body[1]["secrets"]["webhook_url"], json!({ "set": true }));
    assert!(r.body[1]["config"].get("webhook_url").is_none());
    // An edit that leaves a secret out keeps it; an empty string clears it.
    let r = env
        .call(
            Method::PATCH,
            &format!("/api/channels/{}", ids[0]),
            Some(json!({ "name": "renamed", "config": { "topic": "t2" } })),
        )
        .await;
    assert_eq!(
        r.body["secrets"]["token"],
        json!({ "set": true }),
        "{}",
        r.text
    );
    answers.push_str(&r.text);
    // Deliveries that fail (the email port is closed, the fake 500s) log
    // their failure: without the secrets.
    env.fake.status.store(500, Ordering::SeqCst);
    env.rule("all", &ids, true).await;
    env.cpu(5_000, 99.0).await;
    let events = env.settled_events().await;
    for d in events[0]["deliveries"].as_array().unwrap() {
        assert_eq!(d["status"], "failed", "{d}");
    }
    answers.push_str(&serde_json::to_string(&events).unwrap());
    let r = env
        .call(
            Method::PUT,
            "/api/admin/telegram",
            Some(json!({ "bot_token": SECRETS[5] })),
        )
        .await;
    assert_eq!(
        r.body,
        json!({ "token_set": true, "config_token_set": false }),
        "{}",
        r.text
    );
    answers.push_str(&r.text);
    let r = env.call(Method::GET, "/api/admin/telegram", None).await;
    answers.push_str(&r.text);
    let log = String::from_utf8_lossy(&captured_log().lock().unwrap()).into_owned();
    assert!(
        log.contains("alert notification failed"),
        "the log was captured (failures are logged)"
    );
    for s in SECRETS {
        assert!(!answers.contains(s), "{s} in an answer");
        assert!(!log.contains(s), "{s} in the log");
    }
}

#[tokio::test]
async fn bad_input_is_a_422_naming_the_field_and_nothing_is_saved() {
    let env = env_with(|_| {}).await;
    let url = env.fake.url();
    let id = env
        .channel(
            json!({ "name": "ok", "kind": "ntfy", "config": { "server_url": url, "topic": "t" } }),
        )
        .await;
    let big = "x".repeat(1_000_000);
    for (method, path, body, field) in [
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "x", "kind": "carrier-pigeon" }),
            "kind",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "x", "kind": "ntfy", "config": { "server_url": "not a url", "topic": "t" } }),
            "config.server_url",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "x", "kind": "ntfy", "config": { "server_url": "ftp://example.com", "topic": "t" } }),
            "config.server_url",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "x", "kind": "ntfy", "config": { "server_url": url, "topic": big } }),
            "config.topic",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "x", "kind": "ntfy", "config": { "server_url": url, "topic": "a b" } }),
            "config.topic",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "x", "kind": "ntfy", "config": { "server_url": url } }),
            "config.topic",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "x", "kind": "ntfy", "config": { "server_url": url, "topic": "t", "colour": "red" } }),
            "config.colour",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": " ", "kind": "ntfy", "config": { "server_url": url, "topic": "t" } }),
            "name",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "e", "kind": "email", "config": { "host": "mail.example.com", "port": "70000", "from": "a@example.com", "to": "b@example.com" } }),
            "config.port",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "e", "kind": "email", "config": { "host": "mail.example.com", "security": "ssl", "from": "a@example.com", "to": "b@example.com" } }),
            "config.security",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "e", "kind": "email", "config": { "host": "mail.example.com", "from": "a@example.com", "to": "b@example.com, nope" } }),
            "config.to",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "p", "kind": "pushover", "config": { "user_key": "short", "app_token": PUSHOVER_APP } }),
            "config.user_key",
        ),
        (
            Method::POST,
            "/api/channels".to_string(),
            json!({ "name": "t", "kind": "telegram", "config": { "chat_id": "not a chat" } }),
            "config.chat_id",
        ),
        (
            Method::PATCH,
            format!("/api/channels/{id}"),
            json!({ "name": "changed", "config": { "priority": "9" } }),
            "config.priority",
        ),
        (
            Method::PATCH,
            format!("/api/channels/{id}"),
            json!({ "kind": "slack" }),
            "kind",
        ),
        (
            Method::PUT,
            "/api/notify/settings".to_string(),
            json!({ "quiet_hours": { "start": "23:00", "end": "07:00", "time_zone": "Mars/Olympus" } }),
            "quiet_hours.time_zone",
        ),
        (
            Method::PUT,
            "/api/notify/settings".to_string(),
            json!({ "quiet_hours": { "start": "25:00", "end": "07:00", "time_zone": "UTC" } }),
            "quiet_hours.start",
        ),
        (
            Method::PUT,
            "/api/admin/telegram".to_string(),
            json!({ "bot_token": "no colon" }),
            "bot_token",
        ),
    ] {
        let r = env.call(method, &path, Some(body)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            r.text
        );
        assert_eq!(r.code(), "invalid", "{}", r.text);
        assert!(
            r.body["error"].as_str().unwrap().starts_with(field),
            "{field}: {}",
            r.text
        );
    }
    // Nothing half-saved: the failed PATCH left the name alone.
    let r = env.call(Method::GET, "/api/channels", None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["name"], "ok");
    assert!(r.body[0]["config"].get("priority").is_none());

    // Another user's channel is a 404, and not a channel a rule may name.
    let bob = env.app.register_and_login("bob").await;
    for (method, path) in [
        (Method::GET, format!("/api/channels/{id}")),
        (Method::DELETE, format!("/api/channels/{id}")),
        (Method::POST, format!("/api/channels/{id}/test")),
        (Method::GET, "/api/channels/abc".to_string()),
    ] {
        let r = env.app.call_as(&bob, method, &path, None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
    }
    let (bob_agent, _) = env.app.create_agent(&bob, "box").await;
    let r = env
        .app
        .call_as(
            &bob,
            Method::POST,
            "/api/rules",
            Some(json!({ "agent_id": bob_agent, "metric": "cpu_pct", "comparison": "gt", "threshold": 1 })),
        )
        .await;
    let rule = r.body["id"].as_u64().unwrap();
    let r = env
        .app
        .call_as(
            &bob,
            Method::PUT,
            &format!("/api/rules/{rule}/notify"),
            Some(json!({ "channels": [id] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("channels"), "{}", r.text);
    let r = env
        .app
        .call_as(
            &bob,
            Method::PUT,
            "/api/admin/telegram",
            Some(json!({ "bot_token": "" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_admins_telegram_token_is_the_default_for_telegram_channels() {
    let env = env_with(|_| {}).await;
    let id = env
        .channel(json!({ "name": "tg", "kind": "telegram", "config": { "chat_id": "@ops" } }))
        .await;
    let r = env
        .call(Method::POST, &format!("/api/channels/{id}/test"), None)
        .await;
    assert_eq!(
        r.body["error"], "the server has no Telegram bot token",
        "{}",
        r.text
    );
    let r = env
        .call(
            Method::PUT,
            "/api/admin/telegram",
            Some(json!({ "bot_token": "4242:DASHBOARD_token-1" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = env
        .call(Method::POST, &format!("/api/channels/{id}/test"), None)
        .await;
    assert_eq!(r.body["sent"], true, "{}", r.text);
    let hit = env.fake.hit("/bot");
    assert_eq!(hit.path, "/bot4242:DASHBOARD_token-1/sendMessage");
    assert_eq!(hit.body["chat_id"], "@ops");
    // Kept in the catalog: a restart still has it.
    let mut app = env.app;
    app.restart();
    assert!(app.state.alerting.telegram_configured());
}

/// The python of the aiosmtpd venv (`make setup-smtp`).
fn aiosmtpd_python() -> PathBuf {
    if let Ok(p) = std::env::var("STATUSMONITOR_AIOSMTPD_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let p = Path::new(&home).join(".cache/statusmonitor/tools/aiosmtpd-1.4.6/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `make setup-smtp` (the email test needs a real SMTP server)",
        p.display()
    );
    p
}

/// A real SMTP server on a loopback port, requiring STARTTLS with a
/// certificate for 127.0.0.1 made for the test; messages to stdout.
struct Smtp {
    child: Child,
    port: u16,
    out: Arc<Mutex<String>>,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_smtp() -> Smtp {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl makes the test certificate");
    assert!(status.success());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(aiosmtpd_python())
        .args([
            "-u",
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "--tlscert",
        ])
        .arg(&cert)
        .arg("--tlskey")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let out: Arc<Mutex<String>> = Arc::default();
    let mut stdout = child.stdout.take().unwrap();
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    // Ready when it accepts a connection (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Smtp {
        child,
        port,
        out,
        ca: cert,
        _dir: dir,
    }
}

#[tokio::test]
async fn email_goes_through_a_real_smtp_server_over_starttls() {
    let smtp = start_smtp();
    let ca = smtp.ca.clone();
    let env = env_with(move |a| a.smtp_ca_file = Some(ca)).await;
    let id = env
        .channel(json!({ "name": "mail", "kind": "email",
                        "config": { "host": "127.0.0.1", "port": smtp.port.to_string(),
                                    "security": "starttls", "from": "StatusMonitor <alerts@example.com>",
                                    "to": "ops@example.com, oncall@example.com" } }))
        .await;
    env.rule("CPU hot", &[id], false).await;
    env.cpu(5_000, 96.0).await;
    let events = env.settled_events().await;
    assert_eq!(
        events[0]["deliveries"][0]["status"], "sent",
        "{:?}",
        events[0]
    );
    let out = smtp.out.clone();
    wait_for("the message at the SMTP server", || {
        out.lock().unwrap().contains("END MESSAGE")
    })
    .await;
    let text = out.lock().unwrap().clone();
    assert!(
        text.contains("Subject: [StatusMonitor] nas: CPU is 96.0% (> 90.0%)"),
        "{text}"
    );
    assert!(
        text.contains("ops@example.com") && text.contains("oncall@example.com"),
        "{text}"
    );
    assert!(text.contains("https://mon.example/agents/"), "{text}");
    assert!(text.contains("Rule: CPU hot"), "{text}");

    // Without trusting the test CA the same server fails with a fixed phrase.
    let env2 = env_with(|_| {}).await;
    let id = env2
        .channel(json!({ "name": "mail", "kind": "email",
                        "config": { "host": "127.0.0.1", "port": smtp.port.to_string(),
                                    "from": "alerts@example.com", "to": "ops@example.com" } }))
        .await;
    let r = env2
        .call(Method::POST, &format!("/api/channels/{id}/test"), None)
        .await;
    assert_eq!(r.body["sent"], false, "{}", r.text);
    assert_eq!(r.body["error"], "TLS error");
}

#[test]
fn a_format_3_directory_moves_its_recipients_into_channels() {
    let dir = tempfile::tempdir().unwrap();
    {
        let catalog = Catalog::open_in(dir.path()).unwrap();
        catalog
            .set_recipient(
                7,
                &storage::catalog::RecipientRecord {
                    telegram_chat_id: Some("4242".into()),
                    webhook_url: Some("https://hooks.example/x".into()),
                    webhook_secret: Some("s3cret".into()),
                },
            )
            .unwrap();
    }
    std::fs::write(dir.path().join("FORMAT"), "statusmonitor-data 3\n").unwrap();
    let data = server::datadir::DataDir::open(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("FORMAT")).unwrap(),
        format!(
            "statusmonitor-data {}\n",
            server::ops::format::DATA_FORMAT_VERSION
        )
    );
    drop(data);
    let catalog = Catalog::open_in(dir.path()).unwrap();
    let channels = catalog.channels_of(7).unwrap();
    assert_eq!(channels.len(), 2);
    assert_eq!(channels[0].name, "Telegram");
    assert_eq!(channels[0].field("chat_id"), Some("4242"));
    assert!(channels[0].default);
    assert_eq!(channels[1].kind, storage::model::Channel::Webhook);
    assert_eq!(channels[1].field("url"), Some("https://hooks.example/x"));
    assert_eq!(channels[1].field("secret"), Some("s3cret"));
    // The recipient record is gone: running the step again moves nothing.
    assert_eq!(catalog.recipient(7).unwrap(), Default::default());
    assert_eq!(catalog.migrate_recipients_to_channels(0).unwrap(), 0);
    assert_eq!(catalog.channels_of(7).unwrap().len(), 2);
}
