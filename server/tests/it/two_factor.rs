//! Two-factor log-in (TOTP): enrolment with a QR code, the code at log-in,
//! no replay, recovery codes once each, rate limits, the admin's policy and
//! removal. Codes are computed here from the secret, on the test clock.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{PASSWORD, Session, TestApp};

/// The code of `secret` (base32) at the app's current time.
pub fn code_now(app: &TestApp, secret: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap();
    let t = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        0,
        30,
        bytes,
        None,
        String::new(),
    );
    t.generate((app.state.clock.now_ms() / 1000) as u64)
}

/// Enrols `who`; returns the base32 secret.
async fn begin(app: &TestApp, who: &Session) -> String {
    let r = app
        .call_as(who, Method::POST, "/api/users/me/two-factor", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.body["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/StatusMonitor:")
    );
    r.body["secret"].as_str().unwrap().to_string()
}

/// Enrols and confirms `who`; returns (secret, recovery codes).
pub async fn enable(app: &TestApp, who: &Session) -> (String, Vec<String>) {
    let secret = begin(app, who).await;
    let code = code_now(app, &secret);
    let r = app
        .call_as(
            who,
            Method::POST,
            "/api/users/me/two-factor/confirm",
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let codes = r.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    (secret, codes)
}

async fn login_with(app: &TestApp, name: &str, code: Option<&str>) -> crate::common::Reply {
    let mut body = json!({ "username": name, "password": PASSWORD });
    if let Some(code) = code {
        body["two_factor_code"] = Value::from(code);
    }
    app.post("/api/auth/token", body, &[]).await
}

#[tokio::test]
async fn enrolment_shows_a_qr_code_and_needs_a_right_first_code() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let r = app
        .call_as(&alice, Method::GET, "/api/users/me/two-factor/qr.svg", None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "nothing pending yet");
    let secret = begin(&app, &alice).await;
    let r = app
        .call_as(&alice, Method::GET, "/api/users/me/two-factor/qr.svg", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "image/svg+xml");
    assert!(
        r.text.contains("<svg") && !r.text.contains("<script"),
        "{}",
        r.text
    );
    assert!(
        r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    for bad in ["000000", "12345", "abcdef"] {
        let r = app
            .call_as(
                &alice,
                Method::POST,
                "/api/users/me/two-factor/confirm",
                Some(json!({ "code": bad })),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
        assert!(r.text.contains("code"), "{}", r.text);
    }
    let r = app
        .call_as(&alice, Method::GET, "/api/users/me/two-factor", None)
        .await;
    assert_eq!(r.body["enabled"], false);
    assert_eq!(r.body["pending"], true);
    // Not on yet: logging in needs no code.
    assert_eq!(login_with(&app, "alice", None).await.status, StatusCode::OK);

    let code = code_now(&app, &secret);
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/users/me/two-factor/confirm",
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["recovery_codes"].as_array().unwrap().len(), 10);
    let r = app
        .call_as(&alice, Method::GET, "/api/users/me/two-factor", None)
        .await;
    assert_eq!(
        r.body,
        json!({ "enabled": true, "pending": false, "recovery_codes_left": 10, "required": false })
    );
    let r = app
        .call_as(&alice, Method::POST, "/api/users/me/two-factor", None)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "on already: {}", r.text);
}

#[tokio::test]
async fn log_in_needs_the_code_and_a_code_works_once() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (secret, recovery) = enable(&app, &alice).await;

    let r = login_with(&app, "alice", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.code(), "two_factor_required");
    let r = login_with(&app, "alice", Some("000000")).await;
    assert_eq!(r.code(), "two_factor_required");
    assert!(r.text.contains("wrong"), "{}", r.text);
    // The code that confirmed the enrolment is spent for its step.
    let r = login_with(&app, "alice", Some(&code_now(&app, &secret))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("used already"), "{}", r.text);

    app.clock.advance(30_000);
    let code = code_now(&app, &secret);
    let r = login_with(&app, "alice", Some(&code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["two_factor"], true);
    let r = login_with(&app, "alice", Some(&code)).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "replayed within its window"
    );
    assert!(r.text.contains("used already"), "{}", r.text);

    // A wrong password is "wrong password", whatever the code.
    let r = app
        .post(
            "/api/auth/token",
            json!({ "username": "alice", "password": "not the password", "two_factor_code": code }),
            &[],
        )
        .await;
    assert_eq!(r.code(), "unauthorized");
    assert_eq!(recovery.len(), 10);
}

#[tokio::test]
async fn recovery_codes_work_once_each_and_turning_off_needs_a_code() {
    let app = TestApp::with_open_registration();
    let alice = app.register_and_login("alice").await;
    let (_, recovery) = enable(&app, &alice).await;
    let r = login_with(&app, "alice", Some(&recovery[0].to_uppercase())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = login_with(&app, "alice", Some(&recovery[0])).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a recovery code works once"
    );
    assert!(r.text.contains("recovery code"), "{}", r.text);
    let alice = Session::from_reply(&login_with(&app, "alice", Some(&recovery[1])).await);
    let r = app
        .call_as(&alice, Method::GET, "/api/users/me/two-factor", None)
        .await;
    assert_eq!(r.body["recovery_codes_left"], 8);

    // Off, with a code; then log-in needs none.
    let bob = app.register_and_login("bob").await;
    let (secret, _) = enable(&app, &bob).await;
    let r = app
        .call_as(
            &bob,
            Method::DELETE,
            "/api/users/me/two-factor",
            Some(json!({ "code": "000000" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(app.state.catalog.has_two_factor(bob.user_id), "still on");
    app.clock.advance(30_000);
    let r = app
        .call_as(
            &bob,
            Method::DELETE,
            "/api/users/me/two-factor",
            Some(json!({ "code": code_now(&app, &secret) })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(login_with(&app, "bob", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn guessing_codes_is_rate_limited_per_account() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    enable(&app, &alice).await;
    let mut limited = None;
    for i in 0..8 {
        let r = login_with(&app, "alice", Some(&format!("{:06}", 100_000 + i))).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, r));
            break;
        }
        assert_eq!(r.code(), "two_factor_required");
    }
    // The confirmation spent one cell of the five.
    let (i, r) = limited.expect("refused within eight guesses");
    assert_eq!(i, 4, "{}", r.text);
    let after: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&after), "{after}");
    assert!(r.text.contains("two-factor"), "{}", r.text);
}

#[tokio::test]
async fn the_admin_requires_two_factor_for_everyone_and_removes_a_users() {
    let app = TestApp::with_open_registration();
    let alice = app.register_and_login("alice").await;
    let bob = app.register_and_login("bob").await;
    let require = json!({ "open_registration": true, "require_two_factor": true });
    let r = app
        .call_as(
            &alice,
            Method::PUT,
            "/api/admin/settings",
            Some(require.clone()),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CONFLICT,
        "the admin first: {}",
        r.text
    );
    enable(&app, &alice).await;
    let r = app
        .call_as(&alice, Method::PUT, "/api/admin/settings", Some(require))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .call_as(&alice, Method::GET, "/api/admin/settings", None)
        .await;
    assert_eq!(r.body["require_two_factor"], true);

    // Bob may do nothing but set it up.
    let r = app.call_as(&bob, Method::GET, "/api/agents", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.text.contains("two-factor"), "{}", r.text);
    let r = app.call_as(&bob, Method::GET, "/api/users/me", None).await;
    assert_eq!(r.body["must_enrol_two_factor"], true);
    let (secret, _) = enable(&app, &bob).await;
    let r = app.call_as(&bob, Method::GET, "/api/agents", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The admin's list says who has it (for the Users page's button).
    let two_factor_of = |list: &serde_json::Value, name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["two_factor"]
            .clone()
    };
    let list = app
        .call_as(&alice, Method::GET, "/api/admin/users", None)
        .await
        .body;
    assert_eq!(two_factor_of(&list, "bob"), true);

    // Bob lost his phone: the admin removes his two-factor log-in.
    let r = app
        .call_as(
            &bob,
            Method::DELETE,
            &format!("/api/admin/users/{}/two-factor", bob.user_id),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "not for non-admins");
    let path = format!("/api/admin/users/{}/two-factor", bob.user_id);
    let r = app.call_as(&alice, Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let list = app
        .call_as(&alice, Method::GET, "/api/admin/users", None)
        .await
        .body;
    assert_eq!(two_factor_of(&list, "bob"), false);
    let r = app.call_as(&alice, Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call_as(
            &alice,
            Method::DELETE,
            "/api/admin/users/999/two-factor",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = login_with(&app, "bob", None).await;
    assert_eq!(r.status, StatusCode::OK, "no code needed: {}", r.text);
    assert_eq!(
        r.body["user"]["must_enrol_two_factor"], true,
        "but enrol again"
    );
    let _ = secret;
}
