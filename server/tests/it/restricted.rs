//! A session that must change its password first (after a one-time password
//! or an admin's reset): refused on every route of the API, the live
//! WebSocket included, with `password_change_required`, until it does.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use futures_util::StreamExt;
use serde_json::{Value, json};
use storage::model::LiveMessage;
use tokio_tungstenite::tungstenite;
use tower::ServiceExt;

use crate::common::{PASSWORD, Reply, Session, TestApp};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// The admin `alice`, and `bob` with an agent of his own, logged in again
/// after the admin reset his password: (app, bob's restricted session, bob's
/// agent, the one-time password).
async fn reset_bob() -> (TestApp, Session, u64, String) {
    let app = TestApp::with_open_registration();
    let alice = app.register_and_login("alice").await;
    app.register_and_login("bob").await;
    let bob = app.login("bob").await;
    let (agent, _) = app.create_agent(&bob, "nas").await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            &format!("/api/admin/users/{}/reset-password", bob.user_id),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let otp = r.body["one_time_password"].as_str().unwrap().to_string();
    let r = app.login_reply("bob", &otp).await;
    assert_eq!(r.body["user"]["must_change_password"], true, "{}", r.text);
    (app, Session::from_reply(&r), agent, otp)
}

fn assert_restricted(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text);
    assert_eq!(r.code(), "password_change_required", "{what}: {}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("new password"));
}

async fn change_password(app: &TestApp, bob: &Session, otp: &str) {
    let r = app
        .call_as(
            bob,
            Method::POST,
            "/api/users/me/password",
            Some(json!({ "current_password": otp, "new_password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

#[tokio::test]
async fn a_session_that_must_change_its_password_cannot_open_the_live_socket_until_it_does() {
    let (app, bob, agent, otp) = reset_bob().await;
    let addr = app.serve().await;
    let url = format!("ws://{addr}/api/ws/{agent}?token={}", bob.access);

    let err = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect_err("a restricted session must not get the live data");
    let tungstenite::Error::Http(response) = err else {
        panic!("refused before the upgrade, got {err:?}");
    };
    assert_eq!(response.status(), 403);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default())
        .expect("a JSON error body");
    assert_eq!(body["code"], "password_change_required", "{body}");

    // The same by cookie, as a browser opens it.
    let mut req = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{addr}/api/ws/{agent}"
    ))
    .unwrap();
    req.headers_mut()
        .insert("cookie", bob.cookie.parse().unwrap());
    req.headers_mut()
        .insert("origin", format!("http://{addr}").parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(
        matches!(err, tungstenite::Error::Http(ref r) if r.status() == 403),
        "{err:?}"
    );

    change_password(&app, &bob, &otp).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("the same session is let in once the password is changed");
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a first frame in time")
        .unwrap()
        .unwrap();
    let tungstenite::Message::Text(text) = first else {
        panic!("a text frame first, got {first:?}");
    };
    let msg: LiveMessage = serde_json::from_str(&text).unwrap();
    assert!(matches!(msg, LiveMessage::Snapshot { .. }), "{msg:?}");
}

/// Walks the OpenAPI document: every operation that takes a session answers
/// a restricted one 403 `password_change_required`, except the few that let
/// it see who it is, log out, and change the password.
#[tokio::test]
async fn a_session_that_must_change_its_password_is_refused_on_every_route() {
    let (app, bob, agent, otp) = reset_bob().await;
    let doc = app.get("/api/openapi.json", &[]).await.body;
    let allowed = [
        "/api/users/me",
        "/api/users/me/password",
        "/api/auth/logout",
        "/api/auth/logout-all",
    ];
    let auth = bob.bearer();
    let mut refused = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let takes_session = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.get("bearer").is_some() || r.get("cookie").is_some())
            });
            if !takes_session || allowed.contains(&path.as_str()) {
                continue;
            }
            // Real ids where the route takes an agent; 1 elsewhere.
            let uri = path
                .replace("{id}", &agent.to_string())
                .replace("{agent_id}", &agent.to_string())
                .replace("{kind}", "cpu")
                .split('/')
                .map(|s| if s.starts_with('{') { "1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let req = axum::http::Request::builder()
                .method(m)
                .uri(&uri)
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap();
            let r = Reply::read(app.router().oneshot(req).await.unwrap()).await;
            assert_restricted(&r, &format!("{method} {uri}"));
            refused += 1;
        }
    }
    assert!(refused >= 40, "too few routes walked: {refused}");

    // What it may do: see who it is, and choose a new password.
    let r = app.call_as(&bob, Method::GET, "/api/users/me", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["must_change_password"], true);
    let r = app
        .call_as(
            &bob,
            Method::POST,
            "/api/users/me/password",
            Some(json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD })),
        )
        .await;
    assert!(r.status.is_client_error(), "the old password is gone");
    change_password(&app, &bob, &otp).await;
    let r = app.call_as(&bob, Method::GET, "/api/agents", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
