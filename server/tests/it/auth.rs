//! Accounts and sessions: registration policy, log-in, refresh rotation and
//! reuse detection, logout, bad tokens, rate limits, CSRF, password change.

use axum::http::{Method, StatusCode};
use serde_json::json;
use server::auth::jwt::JwtKeys;

use crate::common::{PASSWORD, Session, T0, TestApp};

fn set_cookies(reply: &crate::common::Reply) -> Vec<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn register_login_refresh_logout_round_trip() {
    let app = TestApp::new();
    let r = app.get("/api/auth/registration", &[]).await;
    assert_eq!(
        r.body,
        json!({ "open": true, "first_account": true, "trusted_header_login": false })
    );

    let r = app.register("Alice").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["username"], "alice");
    assert_eq!(r.body["is_admin"], true);

    let r = app.login_reply("ALICE", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    assert_eq!(r.body["user"]["username"], "alice");
    let cookies = set_cookies(&r);
    assert!(cookies.iter().any(|c| c.starts_with("sm_access=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Strict")
        && c.contains("Path=/;")
        && c.contains("Max-Age=900")
        && !c.contains("Secure")));
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("sm_refresh=") && c.contains("Path=/api/auth"))
    );
    let first = crate::common::Session::from_reply(&r);
    let s = app.login("alice").await;
    assert!(s.refresh.starts_with("smr_"));

    // Bearer and cookie both authenticate.
    let me = app
        .get("/api/users/me", &[("authorization", &s.bearer())])
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["id"], s.user_id);
    assert_eq!(me.body["created_ms"], T0);
    let me = app.get("/api/users/me", &[("cookie", &s.cookie)]).await;
    assert_eq!(me.status, StatusCode::OK);

    // Refresh by body (API client), then by cookie alone (the dashboard after
    // a cross-site navigation): each rotates the refresh token.
    let s2 = app.refresh(&s.refresh).await;
    assert_ne!(s2.refresh, s.refresh);
    let r = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            &[
                ("cookie", &format!("sm_refresh={}", s2.refresh)),
                ("host", "mon.example:8420"),
                ("origin", "http://mon.example:8420"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let s3_access = r.body["access_token"].as_str().unwrap().to_string();
    assert!(set_cookies(&r).iter().any(|c| c.starts_with("sm_refresh=")));

    let sessions = app
        .get(
            "/api/auth/sessions",
            &[("authorization", &format!("Bearer {s3_access}"))],
        )
        .await;
    assert_eq!(
        sessions.body.as_array().unwrap().len(),
        2,
        "{}",
        sessions.text
    );
    assert_eq!(
        sessions
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["current"] == true)
            .count(),
        1
    );

    // Logout ends that session at once, access token included.
    let bearer = format!("Bearer {s3_access}");
    let r = app
        .call(
            Method::POST,
            "/api/auth/logout",
            None,
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(set_cookies(&r).iter().all(|c| c.contains("Max-Age=0")));
    let me = app
        .get("/api/users/me", &[("authorization", &bearer)])
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.code(), "unauthorized");
    // The whole family went: older access and refresh tokens of it too.
    let me = app
        .get("/api/users/me", &[("authorization", &s.bearer())])
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh_reply(&s2.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The first log-in is another session, unaffected; logout-all ends it.
    let me = app
        .get("/api/users/me", &[("authorization", &first.bearer())])
        .await;
    assert_eq!(me.status, StatusCode::OK);
    let r = app
        .call(
            Method::POST,
            "/api/auth/logout-all",
            None,
            &[("authorization", &first.bearer())],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let me = app
        .get("/api/users/me", &[("authorization", &first.bearer())])
        .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh_reply(&first.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn secure_cookies_behind_a_tls_proxy() {
    let app = TestApp::new();
    app.register("alice").await;
    let r = app
        .post(
            "/api/auth/token",
            json!({ "username": "alice", "password": PASSWORD }),
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert!(set_cookies(&r).iter().all(|c| c.ends_with("; Secure")));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let app = TestApp::new();
    app.register("alice").await;
    let wrong = app.login_reply("alice", "not the password").await;
    let unknown = app.login_reply("mallory", PASSWORD).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn bad_access_tokens_are_401() {
    let app = TestApp::new();
    let s = app.register_and_login("alice").await;
    let mut parts: Vec<String> = s.access.split('.').map(String::from).collect();

    // Tampered payload (signature no longer matches).
    let mut payload = parts[1].clone().into_bytes();
    payload[5] = if payload[5] == b'A' { b'B' } else { b'A' };
    parts[1] = String::from_utf8(payload).unwrap();
    let tampered = parts.join(".");
    // alg: none with the real claims and no signature.
    let none = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        s.access.split('.').nth(1).unwrap()
    );
    // Same claims, another secret.
    let foreign = JwtKeys::new(b"another secret, also 32 bytes long!!")
        .issue(s.user_id, 1, 0, T0)
        .unwrap();
    for token in [
        tampered.as_str(),
        none.as_str(),
        foreign.as_str(),
        "garbage",
        "",
    ] {
        let r = app
            .get(
                "/api/users/me",
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}: {}", r.text);
        assert_eq!(r.code(), "unauthorized");
        let r = app
            .get(
                "/api/users/me",
                &[("cookie", &format!("sm_access={token}"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}");
    }
    let r = app.get("/api/users/me", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Expired: valid for 15 minutes, not one second more.
    app.clock.advance(15 * 60_000 - 1_000);
    let r = app
        .get("/api/users/me", &[("authorization", &s.bearer())])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.clock.advance(1_000);
    let r = app
        .get("/api/users/me", &[("authorization", &s.bearer())])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The refresh token still works and gives a fresh access token.
    let s2 = app.refresh(&s.refresh).await;
    let r = app
        .get("/api/users/me", &[("authorization", &s2.bearer())])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Wrong refresh tokens are 401 too.
    let r = app.refresh_reply("smr_0000").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.post("/api/auth/refresh", json!(null), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app.call(Method::POST, "/api/auth/refresh", None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_reuse_revokes_the_whole_family() {
    let app = TestApp::new();
    let s1 = app.register_and_login("alice").await;
    let other = app.login("alice").await;
    let s2 = app.refresh(&s1.refresh).await;
    // The old token again: theft suspected, the family ends.
    let r = app.refresh_reply(&s1.refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["error"].as_str().unwrap().contains("already used"));
    let r = app.refresh_reply(&s2.refresh).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the newest token dies too"
    );
    let r = app
        .get("/api/users/me", &[("authorization", &s2.bearer())])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "and its access token");
    // Another session of the same user is a different family.
    let r = app
        .get("/api/users/me", &[("authorization", &other.bearer())])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.refresh(&other.refresh).await;
}

#[tokio::test]
async fn eleven_wrong_logins_in_a_row_are_rate_limited() {
    let app = TestApp::new();
    app.register("alice").await;
    for i in 0..10 {
        let r = app.login_reply("alice", "wrong password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {}", i + 1);
    }
    let r = app.login_reply("alice", "wrong password").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.code(), "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // Even the right password waits now.
    let r = app.login_reply("alice", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn registration_closes_after_the_first_account_unless_enabled() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let r = app.get("/api/auth/registration", &[]).await;
    assert_eq!(
        r.body,
        json!({ "open": false, "first_account": false, "trusted_header_login": false })
    );
    let r = app.register("bob").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    let r = app
        .call_as(&alice, Method::GET, "/api/admin/settings", None)
        .await;
    assert_eq!(
        r.body,
        json!({ "open_registration": false, "require_two_factor": false })
    );
    let r = app
        .call_as(
            &alice,
            Method::PUT,
            "/api/admin/settings",
            Some(json!({ "open_registration": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.get("/api/auth/registration", &[]).await.body["open"],
        true
    );
    let bob = app.register_and_login("bob").await;
    let r = app.call_as(&bob, Method::GET, "/api/users/me", None).await;
    assert_eq!(r.body["is_admin"], false);
    let r = app
        .call_as(
            &bob,
            Method::PUT,
            "/api/admin/settings",
            Some(json!({ "open_registration": false })),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The operator's flag opens it too.
    let app = TestApp::with_open_registration();
    app.register_and_login("alice").await;
    app.register_and_login("bob").await;
}

#[tokio::test]
async fn username_and_password_rules() {
    let app = TestApp::new();
    let reg = |u: &str, p: &str| {
        app.post(
            "/api/auth/register",
            json!({ "username": u, "password": p }),
            &[],
        )
    };
    assert_eq!(
        reg("alice", "short").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        reg("al", PASSWORD).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        reg("al ice", PASSWORD).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        reg(&"a".repeat(33), PASSWORD).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(reg("a.l-i_ce9", PASSWORD).await.status, StatusCode::CREATED);
    let app = TestApp::with_open_registration();
    app.register("alice").await;
    let r = app.register("ALICE").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.code(), "conflict");
}

#[tokio::test]
async fn malformed_json_is_400_and_unknown_fields_are_422() {
    let app = TestApp::new();
    let r = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let req = axum::http::Request::post("/api/auth/token")
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{\"username\": \"a\""))
        .unwrap();
    let r =
        crate::common::Reply::read(tower::ServiceExt::oneshot(app.router(), req).await.unwrap())
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.code(), "bad_request");
    let r = app
        .post(
            "/api/auth/register",
            json!({ "username": "alice", "password": PASSWORD, "admin": true }),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("admin"), "names the field: {}", r.text);
}

#[tokio::test]
async fn cookie_writes_need_a_matching_origin() {
    let app = TestApp::new();
    let s = app.register_and_login("alice").await;
    let body = Some(json!({ "name": "nas" }));
    let host = ("host", "mon.example:8420");
    let cookie = ("cookie", s.cookie.as_str());
    let cases: &[(&[(&str, &str)], StatusCode)] = &[
        (&[cookie, host], StatusCode::FORBIDDEN),
        (
            &[cookie, host, ("origin", "https://evil.example")],
            StatusCode::FORBIDDEN,
        ),
        (&[cookie, host, ("origin", "null")], StatusCode::FORBIDDEN),
        (
            &[
                cookie,
                host,
                ("referer", "http://evil.example/mon.example:8420"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            &[cookie, host, ("origin", "http://mon.example:8420")],
            StatusCode::CREATED,
        ),
        (
            &[cookie, host, ("referer", "http://mon.example:8420/agents")],
            StatusCode::CREATED,
        ),
    ];
    for (headers, want) in cases {
        let r = app
            .call(Method::POST, "/api/agents", body.clone(), headers)
            .await;
        assert_eq!(r.status, *want, "{headers:?}: {}", r.text);
    }
    // Reads by cookie and writes by bearer need no Origin.
    let r = app.get("/api/agents", &[cookie, host]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .call_as(&s, Method::POST, "/api/agents", body.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Refresh by cookie is a cookie-authenticated write too.
    let r = app
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            &[("cookie", &format!("sm_refresh={}", s.refresh)), host],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sessions_and_signing_key_survive_a_restart() {
    let mut app = TestApp::new();
    let s = app.register_and_login("alice").await;
    app.restart();
    let r = app
        .get("/api/users/me", &[("authorization", &s.bearer())])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.refresh(&s.refresh).await;
}

#[tokio::test]
async fn password_change_ends_the_other_sessions() {
    let app = TestApp::new();
    let s1 = app.register_and_login("alice").await;
    let s2 = app.login("alice").await;
    let change = |current: &str, new: &str| {
        app.call_as(
            &s1,
            Method::POST,
            "/api/users/me/password",
            Some(json!({ "current_password": current, "new_password": new })),
        )
    };
    assert_eq!(
        change("wrong password", "new password 123").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        change(PASSWORD, "short").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        change(PASSWORD, "new password 123").await.status,
        StatusCode::NO_CONTENT
    );
    let r = app.call_as(&s2, Method::GET, "/api/users/me", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh_reply(&s2.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = app.call_as(&s1, Method::GET, "/api/users/me", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.login_reply("alice", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_reply("alice", "new password 123").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_by_one_by_their_owner_only() {
    let app = TestApp::with_open_registration();
    let phone = app.register_and_login("alice").await;
    let laptop = app.login("alice").await;
    let bob = app.register_and_login("bob").await;
    let r = app
        .call_as(&laptop, Method::GET, "/api/auth/sessions", None)
        .await;
    let list = r.body.as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{}", r.text);
    let phone_id = list.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_u64()
        .unwrap();
    // Bob cannot end Alice's session: it does not exist for him.
    let path = format!("/api/auth/sessions/{phone_id}");
    let r = app.call_as(&bob, Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call_as(&phone, Method::GET, "/api/users/me", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.call_as(&laptop, Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .call_as(&phone, Method::GET, "/api/users/me", None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh_reply(&phone.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Only the admin reads the server settings.
    let r = app
        .call_as(&bob, Method::GET, "/api/admin/settings", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn logout_with_only_the_refresh_cookie_ends_the_session() {
    let app = TestApp::new();
    let s = app.register_and_login("alice").await;
    app.clock.advance(20 * 60_000); // the access token has expired
    let cookie = format!("sm_refresh={}", s.refresh);
    let host = ("host", "mon.example");
    let r = app
        .call(
            Method::POST,
            "/api/auth/logout",
            None,
            &[("cookie", &cookie), host],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "cookie logout needs the Origin"
    );
    let r = app
        .call(
            Method::POST,
            "/api/auth/logout",
            None,
            &[("cookie", &cookie), host, ("origin", "https://mon.example")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.refresh_reply(&s.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_configured_jwt_secret_signs_the_access_tokens() {
    let secret = "a configured secret, at least 32 characters";
    let app = TestApp::with_args(server::config::ServeArgs {
        jwt_secret: Some(secret.into()),
        ..Default::default()
    });
    let s = app.register_and_login("alice").await;
    let claims = JwtKeys::new(secret.as_bytes())
        .verify(&s.access, T0)
        .expect("signed with the configured secret");
    assert_eq!(claims.sub, s.user_id);
    assert_eq!(claims.exp - claims.iat, 900);
}

/// What a local user who read the signing secret could do before families
/// had keys: sign `{sub: 1, sid: <small number>}` and be the admin. With the
/// secret in hand (here: configured), every guessed family id is refused
/// unless the token also carries the family's random 128-bit key.
#[tokio::test]
async fn a_token_signed_with_the_secret_and_a_guessed_session_id_is_refused() {
    let secret = "a configured secret, at least 32 characters";
    let app = TestApp::with_args(server::config::ServeArgs {
        jwt_secret: Some(secret.into()),
        ..Default::default()
    });
    let s = app.register_and_login("alice").await;
    let keys = JwtKeys::new(secret.as_bytes());
    let real = keys.verify(&s.access, T0).expect("ours");
    let key = real.session_key().expect("a 128-bit key");
    let me = |token: String| {
        let app = &app;
        async move {
            app.get(
                "/api/users/me",
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await
        }
    };
    // The control: a token made like this with the right key works, so the
    // refusals below are about the key, not about how the token was made.
    let forged_right = keys.issue(s.user_id, real.sid, key, T0).unwrap();
    assert_eq!(me(forged_right).await.status, StatusCode::OK);
    for sid in 0..=5 {
        for guess in [0, 1, u128::from(sid), key ^ 1, key.rotate_left(64)] {
            let forged = keys.issue(s.user_id, sid, guess, T0).unwrap();
            let r = me(forged).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "sid {sid}: {}", r.text);
            assert_eq!(r.code(), "unauthorized");
        }
    }
    // A token without the key claim, as this version's predecessor issued.
    let legacy = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": s.user_id, "sid": real.sid, "iat": T0 / 1000, "exp": T0 / 1000 + 900 }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(me(legacy).await.status, StatusCode::UNAUTHORIZED);
    // Keys differ per family and survive a refresh.
    let s2 = app.login("alice").await;
    let key2 = keys.verify(&s2.access, T0).unwrap().session_key().unwrap();
    assert_ne!(key, key2);
    let refreshed = Session::from_reply(&app.refresh_reply(&s.refresh).await);
    let after = keys.verify(&refreshed.access, T0).unwrap();
    assert_eq!((after.sid, after.session_key()), (real.sid, Some(key)));
}

#[tokio::test]
async fn concurrent_first_registrations_make_exactly_one_admin() {
    let app = TestApp::new();
    let (a, b) = tokio::join!(app.register("alice"), app.register("bob"));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::FORBIDDEN],
        "{a:?} {b:?}"
    );
    let created = if a.status == StatusCode::CREATED {
        &a
    } else {
        &b
    };
    assert_eq!(created.body["is_admin"], true);
}
