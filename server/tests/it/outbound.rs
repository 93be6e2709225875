//! The outbound guard through the API: webhook URLs a non-admin saves, the
//! send-time check after DNS resolution ("Send test" and alert deliveries),
//! delivery errors as fixed phrases (never the remote body), redirects not
//! followed, the admin's allow-list, the server's own address, and the rate
//! limit on "Send test".

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use server::config::ServeArgs;
use storage::catalog::ChannelRecord;

use crate::common::{Reply, Session, TestApp};

const GUARD_LOOPBACK: &str = "refused by the outbound guard: loopback address";
const SECRET_BODY: &str = "INTERNAL-SECRET-DATA aws_secret_access_key=AKIAEXAMPLE";

/// A loopback HTTP server that counts requests and answers each with
/// `status`, the body [`SECRET_BODY`] and, if given, a `Location`.
#[derive(Clone)]
struct Receiver {
    hits: Arc<AtomicUsize>,
    addr: SocketAddr,
}

impl Receiver {
    async fn start(status: u16, location: Option<String>) -> Receiver {
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            let location = location.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut response =
                    (StatusCode::from_u16(status).unwrap(), SECRET_BODY).into_response();
                if let Some(to) = location {
                    response
                        .headers_mut()
                        .insert(header::LOCATION, HeaderValue::from_str(&to).unwrap());
                }
                response
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { hits, addr }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
}

/// An app with open registration, no notification retries and a short
/// timeout; `alice` is the admin, `bob` an ordinary user.
async fn app_with(tweak: impl FnOnce(&mut ServeArgs)) -> (TestApp, Session, Session) {
    let mut args = ServeArgs {
        notify_retry_delays: Some(String::new()),
        notify_timeout: Some("2s".into()),
        offline_check_interval: Some("1h".into()),
        ..Default::default()
    };
    tweak(&mut args);
    crate::common::two_users(args).await
}

async fn set_webhook(app: &TestApp, who: &Session, url: &str) -> Reply {
    app.call_as(
        who,
        Method::POST,
        "/api/recipient",
        Some(json!({ "webhook_url": url })),
    )
    .await
}

/// "Send test" as `who`; the webhook's result.
async fn send_test(app: &TestApp, who: &Session) -> Value {
    let r = app
        .call_as(who, Method::POST, "/api/recipient/test", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let results = r.body["results"].as_array().unwrap();
    results
        .iter()
        .find(|d| d["channel"] == "webhook")
        .unwrap()
        .clone()
}

/// Stores a webhook URL the way one saved before the guard existed (or one
/// whose DNS answer has changed since) would be.
fn store_webhook(app: &TestApp, who: &Session, url: &str) {
    let catalog = &app.state.catalog;
    let fields: std::collections::BTreeMap<String, String> =
        [("url".to_string(), url.to_string())].into();
    let existing = catalog
        .channels_of(who.user_id)
        .unwrap()
        .into_iter()
        .find(|c| c.kind == storage::model::Channel::Webhook);
    match existing {
        Some(c) => assert!(
            catalog
                .update_channel(&ChannelRecord { fields, ..c })
                .unwrap()
        ),
        None => {
            catalog
                .create_channel(
                    &ChannelRecord {
                        id: 0,
                        owner_id: who.user_id,
                        name: "Webhook".into(),
                        kind: storage::model::Channel::Webhook,
                        default: true,
                        fields,
                        created_ms: 0,
                        updated_ms: 0,
                    },
                    50,
                )
                .unwrap();
        }
    }
}

#[tokio::test]
async fn a_non_admin_cannot_save_a_webhook_to_any_spelling_of_an_internal_address() {
    let (app, alice, bob) = app_with(|_| {}).await;
    let cases = [
        ("http://127.0.0.1:9/hook", "loopback address"),
        ("http://2130706433/", "loopback address"),
        ("http://0177.0.0.1/", "loopback address"),
        ("http://0x7f.0.0.1/", "loopback address"),
        ("http://0x7f000001/", "loopback address"),
        ("http://127.1/", "loopback address"),
        ("http://[::1]/", "loopback address"),
        ("http://[::ffff:127.0.0.1]/", "loopback address"),
        ("http://[::ffff:7f00:1]/", "loopback address"),
        ("http://localhost:8080/", "loopback address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "link-local address",
        ),
        ("http://2852039166/", "link-local address"),
        ("http://[fe80::1]/", "link-local address"),
        ("http://0.0.0.0/", "unspecified address"),
        ("http://[::]/", "unspecified address"),
        ("http://10.0.0.1/", "private address"),
        ("http://192.168.1.1/", "private address"),
        ("http://[fd00::1]/", "private address"),
    ];
    for (url, reason) in cases {
        let r = set_webhook(&app, &bob, url).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            r.text
        );
        assert_eq!(r.code(), "invalid");
        let msg = r.body["error"].as_str().unwrap();
        assert!(
            msg.starts_with("webhook_url: refused by the outbound guard"),
            "{msg}"
        );
        assert!(msg.contains(reason), "{url}: {msg}");
    }
    let r = app.call_as(&bob, Method::GET, "/api/recipient", None).await;
    assert!(
        r.body.get("webhook_url").is_none(),
        "nothing saved: {}",
        r.text
    );
    for url in ["ftp://example.com/x", "http://[::1/", "file:///etc/passwd"] {
        let r = set_webhook(&app, &bob, url).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert!(
            r.text.contains("an absolute http:// or https:// URL"),
            "{}",
            r.text
        );
    }

    // The admin may; the URL is stored the way it is read (normalised).
    let r = set_webhook(&app, &alice, "http://2130706433:9/hook").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["webhook_url"], "http://127.0.0.1:9/hook");
}

#[tokio::test]
async fn the_send_time_check_refuses_what_a_name_resolves_to_and_never_connects() {
    let (app, _alice, bob) = app_with(|_| {}).await;
    let receiver = Receiver::start(200, None).await;
    let port = receiver.addr.port();
    for url in [
        // A DNS name resolving to 127.0.0.1: only the resolution shows it.
        format!("http://localhost:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
    ] {
        store_webhook(&app, &bob, &url);
        let result = send_test(&app, &bob).await;
        assert_eq!(result["status"], "failed", "{url}");
        assert_eq!(result["error"], GUARD_LOOPBACK, "{url}");
    }

    // An alert delivery is refused the same way, once (no retry), and the
    // refusal is what the history records.
    store_webhook(&app, &bob, &format!("http://localhost:{port}/hook"));
    let (agent, token) = app.create_agent(&bob, "nas").await;
    app.fire_cpu_rule(&bob, agent, &token).await;
    let hook = settled_webhook_delivery(&app, &bob).await;
    assert_eq!(hook["status"], "failed");
    assert_eq!(hook["attempts"], 1);
    assert_eq!(hook["error"], GUARD_LOOPBACK);
    assert_eq!(receiver.hits(), 0, "nothing reached the loopback receiver");
}

/// The webhook delivery of `who`'s newest alert, once it is no longer pending.
async fn settled_webhook_delivery(app: &TestApp, who: &Session) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.call_as(who, Method::GET, "/api/alerts", None).await;
        let hook = r.body["items"][0]["deliveries"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["channel"] == "webhook").cloned());
        if let Some(hook) = hook
            && hook["status"] != "pending"
        {
            return hook;
        }
        assert!(Instant::now() < deadline, "no settled delivery: {}", r.text);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn delivery_errors_are_a_status_or_a_phrase_never_the_remote_body() {
    let (app, alice, _bob) = app_with(|a| a.notify_timeout = Some("500ms".into())).await;
    // The admin may reach loopback, so the answers themselves are tested.
    let forbidden = Receiver::start(403, None).await;
    let r = set_webhook(&app, &alice, &forbidden.url()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let result = send_test(&app, &alice).await;
    assert_eq!(result["error"], "HTTP 403");
    assert_eq!(forbidden.hits(), 1);

    let (agent, token) = app.create_agent(&alice, "nas").await;
    app.fire_cpu_rule(&alice, agent, &token).await;
    let hook = settled_webhook_delivery(&app, &alice).await;
    assert_eq!(hook["error"], "HTTP 403");
    let history = app.call_as(&alice, Method::GET, "/api/alerts", None).await;
    assert!(
        !history.text.contains("INTERNAL-SECRET"),
        "{}",
        history.text
    );

    // Nothing listening: "connection refused".
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    set_webhook(&app, &alice, &format!("http://{dead}/hook")).await;
    assert_eq!(send_test(&app, &alice).await["error"], "connection refused");

    // Accepts and never answers: "timeout".
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            held.push(socket);
        }
    });
    set_webhook(&app, &alice, &format!("http://{hole_addr}/hook")).await;
    assert_eq!(send_test(&app, &alice).await["error"], "timeout");
}

#[tokio::test]
async fn a_redirect_is_answered_with_its_status_and_not_followed() {
    let (app, alice, _bob) = app_with(|_| {}).await;
    let target = Receiver::start(200, None).await;
    let redirector = Receiver::start(302, Some(target.url())).await;
    set_webhook(&app, &alice, &redirector.url()).await;
    let result = send_test(&app, &alice).await;
    assert_eq!(result["status"], "failed");
    assert_eq!(result["error"], "HTTP 302");
    assert_eq!(redirector.hits(), 1);
    assert_eq!(target.hits(), 0, "the redirect was not followed");
}

#[tokio::test]
async fn the_allow_list_opens_its_range_to_everyone_but_not_the_servers_own_port() {
    let receiver = Receiver::start(200, None).await;
    // The server "listens" on every address at a port of its own (the test
    // app is not bound to it; the guard only compares).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let own = SocketAddr::from(([127, 0, 0, 1], port));
    let (app, _alice, bob) = app_with(|a| {
        a.outbound_allow = vec!["127.0.0.0/8".into()];
        a.listen = Some(SocketAddr::from(([0, 0, 0, 0], port)));
    })
    .await;
    let r = set_webhook(&app, &bob, &receiver.url()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let result = send_test(&app, &bob).await;
    assert_eq!(result["status"], "sent", "{result}");
    assert_eq!(receiver.hits(), 1);

    let r = set_webhook(&app, &bob, &format!("http://{own}/api/health")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("the server's own address"), "{}", r.text);
    store_webhook(
        &app,
        &bob,
        &format!("http://localhost:{}/api/health", own.port()),
    );
    assert_eq!(
        send_test(&app, &bob).await["error"],
        "refused by the outbound guard: the server's own address"
    );
    // Outside the list, private ranges stay closed.
    let r = set_webhook(&app, &bob, "http://192.168.1.1/").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn send_test_is_rate_limited_per_account() {
    let (app, alice, bob) = app_with(|_| {}).await;
    for _ in 0..server::api::quota::SEND_TEST_BURST {
        let r = app
            .call_as(&bob, Method::POST, "/api/recipient/test", None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = app
        .call_as(&bob, Method::POST, "/api/recipient/test", None)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.code(), "rate_limited");
    let retry: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let r = app
        .call_as(&alice, Method::POST, "/api/recipient/test", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "each account has its own budget");
}
