//! Agents: CRUD, pending tokens (5 minutes on the injected clock),
//! activation, regeneration, restart, online state, deletion.

use axum::http::{Method, StatusCode};
use serde_json::json;
use server::auth::SecurityEvent;
use storage::catalog::AgentAuthError;
use storage::model::HostFacts;

use crate::common::{T0, TestApp};

const MINUTE: i64 = 60_000;

#[tokio::test]
async fn create_list_get_rename_delete() {
    let app = TestApp::new();
    let s = app.register_and_login("alice").await;
    let r = app
        .call_as(
            &s,
            Method::POST,
            "/api/agents",
            Some(json!({ "name": " nas " })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let token = r.body["token"].as_str().unwrap();
    assert!(token.starts_with("sma_") && token.len() == 68, "{token}");
    let agent = &r.body["agent"];
    assert_eq!(agent["name"], "nas");
    assert_eq!(agent["token_state"], "pending");
    assert_eq!(agent["token_expires_ms"], T0 + 5 * MINUTE);
    assert_eq!(agent["online"], false);
    let id = agent["id"].as_u64().unwrap();

    let r = app.call_as(&s, Method::GET, "/api/agents", None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert!(!r.text.contains(token), "the token is shown once only");
    let path = format!("/api/agents/{id}");
    let r = app
        .call_as(&s, Method::PATCH, &path, Some(json!({ "name": "big nas" })))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["name"], "big nas");
    let r = app
        .call_as(&s, Method::PATCH, &path, Some(json!({ "name": "  " })))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.call_as(&s, Method::GET, &path, None).await.body["name"],
        "big nas"
    );

    let mut events = app.state.subscribe_security();
    let r = app.call_as(&s, Method::DELETE, &path, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        events.try_recv().unwrap(),
        SecurityEvent::AgentDeleted {
            owner_id: s.user_id,
            agent_id: id
        }
    );
    assert_eq!(
        app.call_as(&s, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(matches!(
        app.state.authenticate_agent(token).await,
        Err(AgentAuthError::Unknown)
    ));
    let r = app
        .call_as(&s, Method::GET, "/api/agents/not-a-number", None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pending_token_accepted_at_4_59_and_refused_at_5_01_then_regenerate_works() {
    let app = TestApp::new();
    let s = app.register_and_login("alice").await;
    let (used, used_token) = app.create_agent(&s, "used in time").await;
    let (late, late_token) = app.create_agent(&s, "too late").await;

    app.clock.set(T0 + 4 * MINUTE + 59_000);
    let auth = app.state.authenticate_agent(&used_token).await.unwrap();
    assert_eq!((auth.agent_id, auth.owner_id), (used, s.user_id));

    app.clock.set(T0 + 5 * MINUTE + 1_000);
    let err = app.state.authenticate_agent(&late_token).await.unwrap_err();
    assert!(matches!(err, AgentAuthError::Expired), "{err:?}");
    let api: server::error::ApiError = err.into();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert!(api.to_string().contains("Regenerate the token"), "{api}");
    // What the agent sees from /api/ingest.
    let r = app
        .post(
            "/api/ingest",
            json!({ "reports": [ { "ts_ms": T0, "interval_ms": 5000 } ] }),
            &[("x-agent-token", &late_token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert!(r.text.contains("Regenerate the token"), "{}", r.text);
    // The one used in time stays active for good.
    app.clock.advance(24 * 60 * MINUTE);
    app.state.authenticate_agent(&used_token).await.unwrap();
    let s = app.refresh(&s.refresh).await; // the access token is long expired
    let r = app
        .call_as(&s, Method::GET, &format!("/api/agents/{used}"), None)
        .await;
    assert_eq!(r.body["token_state"], "active");
    assert_eq!(r.body["activated_ms"], T0 + 4 * MINUTE + 59_000);
    let r = app
        .call_as(&s, Method::GET, &format!("/api/agents/{late}"), None)
        .await;
    assert_eq!(r.body["token_state"], "expired");

    let r = app
        .call_as(
            &s,
            Method::POST,
            &format!("/api/agents/{late}/regenerate-token"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["agent"]["token_state"], "pending");
    let new_token = r.body["token"].as_str().unwrap().to_string();
    assert!(matches!(
        app.state.authenticate_agent(&late_token).await,
        Err(AgentAuthError::Unknown)
    ));
    let auth = app.state.authenticate_agent(&new_token).await.unwrap();
    assert_eq!(auth.agent_id, late);
}

#[tokio::test]
async fn regenerating_revokes_an_active_token_at_once() {
    let app = TestApp::new();
    let s = app.register_and_login("alice").await;
    let (id, token) = app.create_agent(&s, "nas").await;
    app.state.authenticate_agent(&token).await.unwrap();
    let mut events = app.state.subscribe_security();
    let r = app
        .call_as(
            &s,
            Method::POST,
            &format!("/api/agents/{id}/regenerate-token"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        events.try_recv().unwrap(),
        SecurityEvent::AgentTokenRevoked { agent_id: id }
    );
    assert!(matches!(
        app.state.authenticate_agent(&token).await,
        Err(AgentAuthError::Unknown)
    ));
}

#[tokio::test]
async fn an_active_token_and_last_seen_survive_a_restart() {
    let mut app = TestApp::new();
    let s = app.register_and_login("alice").await;
    let (id, token) = app.create_agent(&s, "nas").await;
    app.state.authenticate_agent(&token).await.unwrap();
    let host = HostFacts {
        hostname: "nas".into(),
        cores: Some(4),
        ..Default::default()
    };
    app.state
        .catalog
        .record_report(id, T0 + 1_000, Some(10_000), Some(host.clone()))
        .unwrap();
    app.state
        .catalog
        .record_report(id, T0 + 2_000, None, None)
        .unwrap();
    app.restart();
    app.clock.set(T0 + 10 * MINUTE);
    let auth = app.state.authenticate_agent(&token).await.unwrap();
    assert_eq!(auth.agent_id, id);
    let r = app
        .call_as(&s, Method::GET, &format!("/api/agents/{id}"), None)
        .await;
    assert_eq!(r.body["token_state"], "active");
    assert_eq!(r.body["last_seen_ms"], T0 + 2_000, "flushed on close");
    assert_eq!(r.body["interval_ms"], 10_000);
    assert_eq!(r.body["host"], json!({ "hostname": "nas", "cores": 4 }));
}

#[tokio::test]
async fn online_means_a_report_within_three_intervals() {
    let app = TestApp::new();
    let s = app.register_and_login("alice").await;
    let (id, token) = app.create_agent(&s, "nas").await;
    app.state.authenticate_agent(&token).await.unwrap();
    app.state.catalog.record_report(id, T0, None, None).unwrap();
    let path = format!("/api/agents/{id}");
    app.clock.set(T0 + 14_999);
    assert_eq!(
        app.call_as(&s, Method::GET, &path, None).await.body["online"],
        true
    );
    app.clock.set(T0 + 15_000);
    assert_eq!(
        app.call_as(&s, Method::GET, &path, None).await.body["online"],
        false
    );
    app.state
        .catalog
        .record_report(id, T0 + 15_000, Some(60_000), None)
        .unwrap();
    app.clock.set(T0 + 15_000 + 179_999);
    let r = app.call_as(&s, Method::GET, "/api/agents", None).await;
    assert_eq!(r.body[0]["online"], true);
    assert_eq!(r.body[0]["last_seen_ms"], T0 + 15_000);
}

#[tokio::test]
async fn deleting_an_agent_deletes_its_time_series() {
    let app = TestApp::new();
    let s = app.register_and_login("alice").await;
    let (id, token) = app.create_agent(&s, "nas").await;
    let (_, other_token) = app.create_agent(&s, "pi").await;
    let batch = |ts: i64| {
        json!({ "reports": [ {
            "ts_ms": ts, "interval_ms": 5000,
            "cpu": { "total_pct": 12.5, "cores_pct": [12.5], "cores_mhz": [3400] }
        } ] })
    };
    for t in [&token, &other_token] {
        let r = app
            .post("/api/ingest", batch(T0 - 5_000), &[("x-agent-token", t)])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    assert_eq!(app.state.engine().agents().len(), 2);

    let r = app
        .call_as(&s, Method::DELETE, &format!("/api/agents/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let left = app.state.engine().agents();
    assert!(!left.contains(&id), "{left:?}");
    assert_eq!(left.len(), 1, "the other agent keeps its data");
    assert!(
        app.state
            .engine()
            .recent_reports(id, T0 - 60_000)
            .unwrap()
            .is_empty()
    );
    // Its token is gone too: the next batch is refused.
    let r = app
        .post("/api/ingest", batch(T0), &[("x-agent-token", &token)])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
}
