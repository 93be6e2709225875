//! Per-user isolation: user B gets the same 404 for every route of user A's
//! agent as for an agent that does not exist, and A's agent is untouched.
//!
//! Table-driven: a new route that takes an agent id is one line in
//! `AGENT_ROUTES` (`{id}` is replaced by the agent id).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Session, TestApp};

/// (method, path, JSON body)
const AGENT_ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/api/agents/{id}", None),
    (
        "PATCH",
        "/api/agents/{id}",
        Some(r#"{ "name": "mine now" }"#),
    ),
    ("POST", "/api/agents/{id}/regenerate-token", None),
    ("GET", "/api/history/{id}/cpu", None),
    ("GET", "/api/history/{id}/memory?start=-24h", None),
    ("GET", "/api/history/{id}/disk", None),
    ("GET", "/api/history/{id}/network", None),
    ("GET", "/api/history/{id}/summary?start=-7d", None),
    ("GET", "/api/history/{id}/containers?name=web", None),
    ("GET", "/api/agents/{id}/containers", None),
    ("GET", "/api/ws/{id}", None),
    ("GET", "/api/alerts?agent_id={id}", None),
    ("DELETE", "/api/alerts?agent_id={id}", None),
    (
        "POST",
        "/api/rules",
        Some(r#"{ "agent_id": {id}, "metric": "cpu_pct", "comparison": "gt", "threshold": 90 }"#),
    ),
    ("GET", "/api/rules?agent_id={id}", None),
    // Last: it deletes the agent if isolation is broken.
    ("DELETE", "/api/agents/{id}", None),
];

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
    app.call_as(who, method, &path.replace("{id}", &id.to_string()), body)
        .await
}

#[tokio::test]
async fn another_users_agent_is_404_exactly_like_a_missing_one() {
    let app = TestApp::with_open_registration();
    let alice = app.register_and_login("alice").await;
    let bob = app.register_and_login("bob").await;
    let (agent, token) = app.create_agent(&alice, "alice's nas").await;

    for (method, path, body) in AGENT_ROUTES {
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
}
