//! Account management by the admin: the list, accounts with one-time
//! passwords, invitations, disabling, password resets, admin power and
//! deletion with the account's agents and data.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, Session, T0, TestApp, cpu_points, report};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// An app with the admin `alice` logged in.
async fn with_admin() -> (TestApp, Session) {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    (app, alice)
}

async fn create(app: &TestApp, admin: &Session, body: Value) -> crate::common::Reply {
    app.call_as(admin, Method::POST, "/api/admin/users", Some(body))
        .await
}

/// Creates `name` with a one-time password; returns (id, password).
async fn create_with_password(app: &TestApp, admin: &Session, name: &str) -> (u64, String) {
    let r = create(
        app,
        admin,
        json!({ "username": name, "access": "one_time_password" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["user"]["must_change_password"], true);
    (
        r.body["user"]["id"].as_u64().unwrap(),
        r.body["one_time_password"].as_str().unwrap().to_string(),
    )
}

/// Logs `name` in with `password` and sets [`NEW_PASSWORD`].
async fn first_login(app: &TestApp, name: &str, password: &str) -> Session {
    let r = app.login_reply(name, password).await;
    assert_eq!(r.body["user"]["must_change_password"], true, "{}", r.text);
    let s = Session::from_reply(&r);
    let r = app
        .call_as(
            &s,
            Method::POST,
            "/api/users/me/password",
            Some(json!({ "current_password": password, "new_password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    s
}

async fn users(app: &TestApp, admin: &Session) -> Vec<Value> {
    let r = app
        .call_as(admin, Method::GET, "/api/admin/users", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body.as_array().unwrap().clone()
}

async fn patch(app: &TestApp, admin: &Session, id: u64, body: Value) -> crate::common::Reply {
    app.call_as(
        admin,
        Method::PATCH,
        &format!("/api/admin/users/{id}"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn the_admin_lists_accounts_with_last_login_and_agent_count() {
    let (app, alice) = with_admin().await;
    app.create_agent(&alice, "nas").await;
    app.create_agent(&alice, "vps").await;
    let (bob_id, otp) = create_with_password(&app, &alice, "Bob").await;
    let list = users(&app, &alice).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["username"], "alice");
    assert_eq!(list[0]["is_admin"], true);
    assert_eq!(list[0]["agent_count"], 2);
    assert_eq!(list[0]["last_login_ms"], T0);
    assert_eq!(list[0]["created_ms"], T0);
    assert_eq!(list[1]["id"], bob_id);
    assert_eq!(list[1]["username"], "bob", "lower-cased");
    assert_eq!(list[1]["last_login_ms"], Value::Null);
    assert_eq!(list[1]["agent_count"], 0);
    assert_eq!(list[1]["disabled"], false);

    app.clock.advance(60_000);
    let bob = first_login(&app, "bob", &otp).await;
    let list = users(&app, &alice).await;
    assert_eq!(list[1]["last_login_ms"], T0 + 60_000);
    assert_eq!(list[1]["must_change_password"], false);

    // Not for non-admins, nor for anonymous callers.
    let r = app
        .call_as(&bob, Method::GET, "/api/admin/users", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.get("/api/admin/users", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = create(
        &app,
        &bob,
        json!({ "username": "eve", "access": "one_time_password" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_new_accounts_are_refused_and_nothing_is_created() {
    let (app, alice) = with_admin().await;
    for (body, status, needle) in [
        (
            json!({ "username": "x", "access": "one_time_password" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "username",
        ),
        (
            json!({ "username": "carol", "access": "carrier_pigeon" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "access",
        ),
        (
            json!({ "username": "carol" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "access",
        ),
        (
            json!({ "username": "ALICE", "access": "one_time_password" }),
            StatusCode::CONFLICT,
            "taken",
        ),
        (
            json!({ "username": "alice", "access": "invitation" }),
            StatusCode::CONFLICT,
            "taken",
        ),
    ] {
        let r = create(&app, &alice, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert!(r.text.contains(needle), "{body}: {}", r.text);
    }
    assert_eq!(users(&app, &alice).await.len(), 1);
}

#[tokio::test]
async fn a_one_time_password_allows_nothing_but_choosing_a_new_one() {
    let (app, alice) = with_admin().await;
    let (_, otp) = create_with_password(&app, &alice, "bob").await;
    let bob = Session::from_reply(&app.login_reply("bob", &otp).await);
    let r = app.call_as(&bob, Method::GET, "/api/agents", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("new password"), "{}", r.text);
    let r = app.call_as(&bob, Method::GET, "/api/users/me", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["must_change_password"], true);
    let r = app
        .call_as(
            &bob,
            Method::POST,
            "/api/users/me/password",
            Some(json!({ "current_password": otp, "new_password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.call_as(&bob, Method::GET, "/api/agents", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The one-time password is spent.
    let r = app.login_reply("bob", &otp).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    app.login_reply("bob", NEW_PASSWORD).await;
}

#[tokio::test]
async fn an_invitation_creates_the_account_once_within_24_hours() {
    let (app, alice) = with_admin().await;
    let r = create(
        &app,
        &alice,
        json!({ "username": "carol", "access": "invitation" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["user"], Value::Null);
    let token = r.body["invitation"]["token"].as_str().unwrap().to_string();
    assert_eq!(
        r.body["invitation"]["path"],
        format!("/invite?token={token}")
    );
    assert_eq!(r.body["invitation"]["expires_ms"], T0 + 24 * 3_600_000);
    // The name is reserved while the invitation is pending.
    let r = create(
        &app,
        &alice,
        json!({ "username": "carol", "access": "one_time_password" }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = app
        .call_as(&alice, Method::GET, "/api/admin/invitations", None)
        .await;
    assert_eq!(r.body[0]["username"], "carol");

    let r = app
        .get(&format!("/api/auth/invitation?token={token}"), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["username"], "carol");
    let accept = |token: &str, password: &str| json!({ "token": token, "password": password });
    let r = app
        .post("/api/auth/invitation", accept(&token, "short"), &[])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app
        .post(
            "/api/auth/invitation",
            accept("smi_nonsense", PASSWORD),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = app
        .post("/api/auth/invitation", accept(&token, PASSWORD), &[])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["username"], "carol");
    assert_eq!(r.body["is_admin"], false);
    let carol = app.login("carol").await;
    let r = app.call_as(&carol, Method::GET, "/api/agents", None).await;
    assert_eq!(r.status, StatusCode::OK, "no forced change: carol chose it");

    // Used: a second use is refused and changes nothing.
    let r = app
        .post(
            "/api/auth/invitation",
            accept(&token, "another password!"),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.text.contains("used already"), "{}", r.text);
    app.login("carol").await;

    // Expired after 24 h: 410, and no account.
    let r = create(
        &app,
        &alice,
        json!({ "username": "dave", "access": "invitation" }),
    )
    .await;
    let token = r.body["invitation"]["token"].as_str().unwrap().to_string();
    app.clock.advance(24 * 3_600_000);
    let r = app
        .get(&format!("/api/auth/invitation?token={token}"), &[])
        .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    let r = app
        .post("/api/auth/invitation", accept(&token, PASSWORD), &[])
        .await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.text);
    assert_eq!(r.code(), "gone");
    assert_eq!(
        app.login_reply("dave", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let alice = app.login("alice").await;
    assert_eq!(users(&app, &alice).await.len(), 2);
}

#[tokio::test]
async fn disabling_ends_the_sessions_at_once_and_the_agents_keep_reporting() {
    let (app, alice) = with_admin().await;
    let (bob_id, otp) = create_with_password(&app, &alice, "bob").await;
    let bob = first_login(&app, "bob", &otp).await;
    let (agent, token) = app.create_agent(&bob, "bob's pi").await;

    let r = patch(&app, &alice, bob_id, json!({ "disabled": true })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["disabled"], true);
    assert_eq!(r.body["agent_count"], 1);
    let r = app.call_as(&bob, Method::GET, "/api/agents", None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the access token is dead"
    );
    let r = app.refresh_reply(&bob.refresh).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "so is the refresh token"
    );
    let r = app.login_reply("bob", NEW_PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("disabled"), "{}", r.text);
    // A wrong password still says only "wrong": disabled accounts are not probed.
    let r = app.login_reply("bob", "not the password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = app
        .post(
            "/api/ingest",
            json!({ "reports": [report(T0, 12.0)] }),
            &[("x-agent-token", &token)],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "agents keep reporting: {}",
        r.text
    );

    let r = patch(&app, &alice, bob_id, json!({ "disabled": false })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let bob = Session::from_reply(&app.login_reply("bob", NEW_PASSWORD).await);
    let points = cpu_points(&app, &bob, agent, "start=-5m&tier=5s").await;
    assert_eq!(points.len(), 1, "the report sent while disabled is there");

    let r = patch(&app, &alice, bob_id, json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = patch(&app, &alice, 999, json!({ "disabled": true })).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = patch(&app, &alice, bob_id, json!({ "disabled": "yes" })).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_reset_password_ends_the_sessions_and_must_be_changed() {
    let (app, alice) = with_admin().await;
    let (bob_id, otp) = create_with_password(&app, &alice, "bob").await;
    let bob = first_login(&app, "bob", &otp).await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            &format!("/api/admin/users/{bob_id}/reset-password"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["username"], "bob");
    let otp2 = r.body["one_time_password"].as_str().unwrap().to_string();
    assert_ne!(otp2, otp);
    let r = app.call_as(&bob, Method::GET, "/api/users/me", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "sessions ended");
    assert_eq!(
        app.login_reply("bob", NEW_PASSWORD).await.status,
        StatusCode::UNAUTHORIZED,
        "the old password is gone"
    );
    first_login(&app, "bob", &otp2).await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/admin/users/999/reset-password",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_power_is_granted_and_removed_but_never_from_the_last_admin() {
    let (app, alice) = with_admin().await;
    let (bob_id, otp) = create_with_password(&app, &alice, "bob").await;
    let bob = first_login(&app, "bob", &otp).await;
    let alice_id = alice.user_id;
    for body in [json!({ "is_admin": false }), json!({ "disabled": true })] {
        let r = patch(&app, &alice, alice_id, body.clone()).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{body}: {}", r.text);
        assert!(r.text.contains("last enabled admin"), "{}", r.text);
    }
    let r = app
        .call_as(
            &alice,
            Method::DELETE,
            &format!("/api/admin/users/{alice_id}"),
            Some(json!({ "confirm_username": "alice" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(users(&app, &alice).await[0]["is_admin"], true);

    let r = patch(&app, &alice, bob_id, json!({ "is_admin": true })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .call_as(&bob, Method::GET, "/api/admin/users", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "bob is an admin now");
    let r = patch(&app, &bob, alice_id, json!({ "is_admin": false })).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .call_as(&alice, Method::GET, "/api/admin/users", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(&app, &bob, bob_id, json!({ "is_admin": false })).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn deleting_an_account_needs_its_name_and_takes_its_agents_and_data() {
    let (app, alice) = with_admin().await;
    let (bob_id, otp) = create_with_password(&app, &alice, "bob").await;
    let bob = first_login(&app, "bob", &otp).await;
    let (agent, token) = app.create_agent(&bob, "bob's pi").await;
    let r = app
        .post(
            "/api/ingest",
            json!({ "reports": [report(T0, 12.0)] }),
            &[("x-agent-token", &token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(app.state.engine().agents().contains(&agent));
    let r = app
        .call_as(
            &bob,
            Method::POST,
            "/api/rules",
            Some(json!({ "agent_id": agent, "metric": "cpu_pct", "comparison": "gt", "threshold": 90 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let path = format!("/api/admin/users/{bob_id}");
    let delete = |confirm: Value| app.call_as(&alice, Method::DELETE, &path, Some(confirm));
    let r = delete(json!({ "confirm_username": "bobby" })).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("confirm_username"), "{}", r.text);
    let r = delete(json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(users(&app, &alice).await.len(), 2, "nothing deleted");

    let r = delete(json!({ "confirm_username": "bob" })).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(users(&app, &alice).await.len(), 1);
    let r = app.call_as(&bob, Method::GET, "/api/users/me", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .post(
            "/api/ingest",
            json!({ "reports": [report(T0 + 5_000, 12.0)] }),
            &[("x-agent-token", &token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the agent is gone");
    assert!(app.state.catalog.agent(agent).unwrap().is_none());
    assert!(app.state.catalog.all_rules().unwrap().is_empty());
    assert!(
        !app.state.engine().agents().contains(&agent),
        "no time series left"
    );
    let r = delete(json!({ "confirm_username": "bob" })).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The name can be used again.
    create_with_password(&app, &alice, "bob").await;
}

/// `statusmonitor user ...` with `args` on `data`.
fn user_cmd(args: &[&str], data: &str, cwd: &std::path::Path) -> std::process::Output {
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", data]);
    crate::cli::run(&all, cwd)
}

/// The one-time password printed by `user reset-password`.
fn printed_password(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.split_once("one-time password for alice: "))
        .map(|(_, p)| p.trim().to_string())
        .unwrap_or_else(|| panic!("no password in {text:?}"))
}

fn login_over_http(url: &str, password: &str) -> (u16, Value) {
    let r = ureq::post(&format!("{url}/api/auth/token"))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(json!({ "username": "alice", "password": password }));
    let mut r = r.unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_json().unwrap_or(Value::Null))
}

#[test]
fn the_user_command_lists_and_resets_on_a_running_and_on_a_stopped_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();
    let (mut server, port) = crate::cli::start(&["--data-dir", data_s], tmp.path());
    let url = format!("http://127.0.0.1:{port}");
    ureq::post(&format!("{url}/api/auth/register"))
        .send_json(json!({ "username": "alice", "password": PASSWORD }))
        .unwrap();
    let (status, session) = login_over_http(&url, PASSWORD);
    assert_eq!(status, 200);

    // Running: through the control socket.
    let out = user_cmd(&["list"], data_s, tmp.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("ID"), "{text}");
    let row = text.lines().nth(1).unwrap();
    assert!(row.contains("alice") && row.contains("yes"), "{row}");
    let out = user_cmd(&["reset-password", "Alice"], data_s, tmp.path());
    let otp = printed_password(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 session(s) ended"));
    // The old session is over, the old password too; the new one must be changed.
    let r = ureq::get(&format!("{url}/api/users/me"))
        .header(
            "authorization",
            &format!("Bearer {}", session["access_token"].as_str().unwrap()),
        )
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(login_over_http(&url, PASSWORD).0, 401);
    let (status, body) = login_over_http(&url, &otp);
    assert_eq!(status, 200);
    assert_eq!(body["user"]["must_change_password"], true);
    // A name that does not exist: one line naming the accounts, exit 1.
    let out = user_cmd(&["reset-password", "mallory"], data_s, tmp.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no account \"mallory\"") && err.contains("alice"),
        "{err}"
    );

    server.kill().unwrap();
    server.wait().unwrap();

    // Stopped: the catalog directly.
    let out = user_cmd(&["reset-password", "alice"], data_s, tmp.path());
    let otp2 = printed_password(&out);
    assert_ne!(otp, otp2);
    let out = user_cmd(&["list"], data_s, tmp.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice"));
    let (mut server, port) = crate::cli::start(&["--data-dir", data_s], tmp.path());
    let url = format!("http://127.0.0.1:{port}");
    assert_eq!(login_over_http(&url, &otp).0, 401);
    let (status, body) = login_over_http(&url, &otp2);
    assert_eq!(status, 200, "{body}");
    server.kill().unwrap();
    server.wait().unwrap();
}
