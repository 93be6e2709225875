//! Single sign-on through a reverse proxy: a trusted proxy's user header
//! starts a session; from any other address the header is ignored.

use axum::http::{Method, StatusCode};
use serde_json::json;
use server::config::ServeArgs;

use crate::common::{Session, TestApp};

/// Requests through `oneshot` come from 127.0.0.1.
fn app_trusting(proxies: &str, create: bool) -> TestApp {
    TestApp::with_args(ServeArgs {
        trusted_auth_header: Some("Remote-User".into()),
        trusted_proxies: vec![proxies.into()],
        trusted_auth_create_users: Some(create),
        ..Default::default()
    })
}

#[tokio::test]
async fn a_trusted_proxy_logs_its_user_in_and_creates_the_account_when_allowed() {
    let app = app_trusting("127.0.0.1/32", true);
    let r = app.get("/api/auth/registration", &[]).await;
    assert_eq!(r.body["trusted_header_login"], true);
    app.register_and_login("alice").await;
    let r = app
        .post("/api/auth/sso", json!(null), &[("remote-user", "Alice")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["username"], "alice");
    let alice = Session::from_reply(&r);
    let r = app.call_as(&alice, Method::GET, "/api/agents", None).await;
    assert_eq!(r.status, StatusCode::OK, "an ordinary session");

    let r = app
        .post("/api/auth/sso", json!(null), &[("remote-user", "carol")])
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "created on first sight: {}",
        r.text
    );
    assert_eq!(r.body["user"]["is_admin"], false);
    let r = app.post("/api/auth/sso", json!(null), &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    let r = app
        .post(
            "/api/auth/sso",
            json!(null),
            &[("remote-user", "not a name!")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("remote-user"), "{}", r.text);
    // From another site's page: refused (log-in CSRF).
    let r = app
        .post(
            "/api/auth/sso",
            json!(null),
            &[
                ("remote-user", "alice"),
                ("origin", "https://evil.example"),
                ("host", "mon.lan"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

#[tokio::test]
async fn without_account_creation_an_unknown_name_is_refused() {
    let app = app_trusting("127.0.0.1/32", false);
    app.register_and_login("alice").await;
    let r = app
        .post("/api/auth/sso", json!(null), &[("remote-user", "mallory")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("no account"), "{}", r.text);
    assert!(app.state.catalog.user_by_name("mallory").unwrap().is_none());
}

#[tokio::test]
async fn the_header_from_an_address_that_is_no_trusted_proxy_is_ignored() {
    let app = app_trusting("10.0.0.0/8", true);
    app.register_and_login("alice").await;
    let r = app
        .post("/api/auth/sso", json!(null), &[("remote-user", "alice")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("trusted proxy"), "{}", r.text);
    assert!(r.headers.get("set-cookie").is_none());
    let r = app
        .post("/api/auth/sso", json!(null), &[("remote-user", "newbie")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        app.state.catalog.user_by_name("newbie").unwrap().is_none(),
        "nothing created"
    );
    // Nor does the header count anywhere else.
    let r = app.get("/api/agents", &[("remote-user", "alice")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Off by default.
    let app = TestApp::new();
    let r = app
        .post("/api/auth/sso", json!(null), &[("remote-user", "alice")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

#[test]
fn half_the_settings_is_a_start_up_error() {
    let err = server::config::Config::resolve(ServeArgs {
        trusted_auth_header: Some("Remote-User".into()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("trusted_proxies"), "{err}");
}
