//! Per-user isolation: user B gets the same 404 for every route of user A's
//! agent as for an agent that does not exist, and A's agent is untouched.
//! A viewer and an editor the agent is shared with get what the last two
//! columns say: they know it exists, so a refusal is 403, never 404.
//!
//! Table-driven: a new route that takes an agent id is one line in
//! `AGENT_ROUTES` (`{id}` is replaced by the agent id, `{uid}` by the
//! viewer's user id).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Session, TestApp};

/// (method, path, JSON body, viewer's status, editor's status)
const AGENT_ROUTES: &[(&str, &str, Option<&str>, u16, u16)] = &[
    ("GET", "/api/agents/{id}", None, 200, 200),
    (
        "PATCH",
        "/api/agents/{id}",
        Some(r#"{ "name": "mine now" }"#),
        403,
        403,
    ),
    ("POST", "/api/agents/{id}/regenerate-token", None, 403, 403),
    ("GET", "/api/history/{id}/cpu", None, 200, 200),
    ("GET", "/api/history/{id}/memory?start=-24h", None, 200, 200),
    ("GET", "/api/history/{id}/disk", None, 200, 200),
    ("GET", "/api/history/{id}/network", None, 200, 200),
    ("GET", "/api/history/{id}/summary?start=-7d", None, 200, 200),
    (
        "GET",
        "/api/history/{id}/containers?name=web",
        None,
        200,
        200,
    ),
    ("GET", "/api/agents/{id}/containers", None, 200, 200),
    // Not a WebSocket handshake: past the access check, refused for that.
    ("GET", "/api/ws/{id}", None, 400, 400),
    ("GET", "/api/alerts?agent_id={id}", None, 200, 200),
    ("DELETE", "/api/alerts?agent_id={id}", None, 403, 403),
    (
        "POST",
        "/api/rules",
        Some(r#"{ "agent_id": {id}, "metric": "cpu_pct", "comparison": "gt", "threshold": 90 }"#),
        403,
        201,
    ),
    ("GET", "/api/rules?agent_id={id}", None, 403, 200),
    ("GET", "/api/agents/{id}/shares", None, 403, 403),
    (
        "PUT",
        "/api/agents/{id}/shares",
        Some(r#"{ "username": "bob", "access": "editor" }"#),
        403,
        403,
    ),
    ("DELETE", "/api/agents/{id}/shares/{uid}", None, 403, 403),
    (
        "PUT",
        "/api/agents/{id}/tags",
        Some(r#"{ "tags": ["mine"] }"#),
        403,
        403,
    ),
    // Last: it deletes the agent if isolation is broken.
    ("DELETE", "/api/agents/{id}", None, 403, 403),
];

thread_local! {
    /// The user id `{uid}` stands for.
    static UID: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// An id no agent has.
const MISSING: u64 = 999_999;

async fn call(
    app: &TestApp,
    who: &Session,
    method: &str,
    path: &str,
    body: Option<&str>,
    id: u64,
) -> crate::common::Reply {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let body: Option<Value> =
        body.map(|b| serde_json::from_str(&b.replace("{id}", &id.to_string())).unwrap());
    let path = path
        .replace("{id}", &id.to_string())
        .replace("{uid}", &UID.with(|u| u.get()).to_string());
    app.call_as(who, method, &path, body).await
}

#[tokio::test]
async fn another_users_agent_is_404_exactly_like_a_missing_one() {
    let app = TestApp::with_open_registration();
    let alice = app.register_and_login("alice").await;
    let bob = app.register_and_login("bob").await;
    let viewer = app.register_and_login("vera").await;
    let editor = app.register_and_login("eddie").await;
    let (agent, token) = app.create_agent(&alice, "alice's nas").await;
    UID.with(|u| u.set(viewer.user_id));
    for (who, access) in [("vera", "viewer"), ("eddie", "editor")] {
        let r = app
            .call_as(
                &alice,
                Method::PUT,
                &format!("/api/agents/{agent}/shares"),
                Some(json!({ "username": who, "access": access })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    for (method, path, body, as_viewer, as_editor) in AGENT_ROUTES {
        for (who, want) in [(&viewer, as_viewer), (&editor, as_editor)] {
            let r = call(&app, who, method, path, *body, agent).await;
            assert_eq!(
                r.status.as_u16(),
                *want,
                "{method} {path} as {}: {}",
                who.user_id,
                r.text
            );
        }
        let theirs = call(&app, &bob, method, path, *body, agent).await;
        let missing = call(&app, &bob, method, path, *body, MISSING).await;
        assert_eq!(
            theirs.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            theirs.text
        );
        assert_eq!(theirs.text, missing.text, "{method} {path}: same body");
        assert_eq!(theirs.status, missing.status);
    }

    // Bob's list does not show it; Alice's agent and token are unchanged.
    let r = app.call_as(&bob, Method::GET, "/api/agents", None).await;
    assert_eq!(r.body, json!([]));
    let r = app
        .call_as(&alice, Method::GET, &format!("/api/agents/{agent}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "alice's nas");
    assert_eq!(
        app.state.authenticate_agent(&token).await.unwrap().agent_id,
        agent
    );
    // Still shared with both, as before.
    let r = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/agents/{agent}/shares"),
            None,
        )
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 2, "{}", r.text);
}

#[tokio::test]
async fn a_shared_agent_is_listed_as_shared_and_unsharing_hides_it_again() {
    let app = TestApp::with_open_registration();
    let alice = app.register_and_login("alice").await;
    let vera = app.register_and_login("vera").await;
    let ed = app.register_and_login("eddie").await;
    let (agent, _) = app.create_agent(&alice, "nas").await;
    let share = |who: &str, access: &str| json!({ "username": who, "access": access });
    let path = format!("/api/agents/{agent}/shares");

    // Bad shares: yourself, nobody, a bad role; nothing is saved.
    for (body, needle) in [
        (share("alice", "viewer"), "your own agent"),
        (share("ALICE", "editor"), "your own agent"),
        (share("mallory", "viewer"), "no account"),
        (share("vera", "owner"), "access"),
    ] {
        let r = app
            .call_as(&alice, Method::PUT, &path, Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(r.text.contains(needle), "{body}: {}", r.text);
    }
    let r = app.call_as(&alice, Method::GET, &path, None).await;
    assert_eq!(r.body, json!([]));

    let r = app
        .call_as(&alice, Method::PUT, &path, Some(share("Vera", "viewer")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!([{ "user_id": vera.user_id, "username": "vera", "access": "viewer" }])
    );
    let r = app.call_as(&vera, Method::GET, "/api/agents", None).await;
    assert_eq!(r.body[0]["id"], agent);
    assert_eq!(
        r.body[0]["shared"],
        json!({ "owner": "alice", "access": "viewer" })
    );
    let r = app.call_as(&alice, Method::GET, "/api/agents", None).await;
    assert_eq!(r.body[0]["shared"], Value::Null, "the owner's own");
    let r = app.call_as(&ed, Method::GET, "/api/agents", None).await;
    assert_eq!(r.body, json!([]));

    // An editor's rule belongs to the agent's owner; the editor manages it.
    app.call_as(&alice, Method::PUT, &path, Some(share("eddie", "editor")))
        .await;
    let r = app
        .call_as(
            &ed,
            Method::POST,
            "/api/rules",
            Some(json!({ "agent_id": agent, "metric": "cpu_pct", "comparison": "gt", "threshold": 90 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let rule = r.body["id"].as_u64().unwrap();
    let r = app.call_as(&alice, Method::GET, "/api/rules", None).await;
    assert_eq!(r.body[0]["id"], rule, "alice's rule now");
    let rule_path = format!("/api/rules/{rule}");
    let r = app
        .call_as(
            &vera,
            Method::PATCH,
            &rule_path,
            Some(json!({ "threshold": 80 })),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a viewer does not manage rules"
    );
    let r = app
        .call_as(
            &ed,
            Method::PATCH,
            &rule_path,
            Some(json!({ "threshold": 80 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.call_as(&ed, Method::DELETE, &rule_path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    // Unshared: a 404 again, like anyone else's.
    let r = app
        .call_as(
            &alice,
            Method::DELETE,
            &format!("{path}/{}", vera.user_id),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .call_as(
            &alice,
            Method::DELETE,
            &format!("{path}/{}", vera.user_id),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .call_as(&vera, Method::GET, &format!("/api/agents/{agent}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.call_as(&vera, Method::GET, "/api/agents", None).await;
    assert_eq!(r.body, json!([]));
}

#[tokio::test]
async fn agents_carry_tags_their_owner_sets() {
    let app = TestApp::with_open_registration();
    let alice = app.register_and_login("alice").await;
    let vera = app.register_and_login("vera").await;
    let (agent, _) = app.create_agent(&alice, "nas").await;
    let path = format!("/api/agents/{agent}/tags");
    let r = app
        .call_as(
            &alice,
            Method::PUT,
            &path,
            Some(json!({ "tags": ["VPS", "home", "vps"] })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["tags"], json!(["home", "vps"]));
    for bad in [
        json!({ "tags": ["a b"] }),
        json!({ "tags": "vps" }),
        json!({}),
    ] {
        let r = app
            .call_as(&alice, Method::PUT, &path, Some(bad.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
    }
    let r = app.call_as(&alice, Method::GET, "/api/agents", None).await;
    assert_eq!(
        r.body[0]["tags"],
        json!(["home", "vps"]),
        "unchanged by the bad ones"
    );
    let r = app
        .call_as(&vera, Method::PUT, &path, Some(json!({ "tags": [] })))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.call_as(
        &alice,
        Method::PUT,
        &format!("/api/agents/{agent}/shares"),
        Some(json!({ "username": "vera", "access": "editor" })),
    )
    .await;
    let r = app
        .call_as(&vera, Method::PUT, &path, Some(json!({ "tags": [] })))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.call_as(&vera, Method::GET, "/api/agents", None).await;
    assert_eq!(
        r.body[0]["tags"],
        json!(["home", "vps"]),
        "the viewer sees them"
    );
}
