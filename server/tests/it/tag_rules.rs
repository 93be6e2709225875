//! Alert rules that target a tag (`"target": {"tag": "vps"}`): every agent of
//! the owner carrying the tag, now and later, each with its own state.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Session, TestApp, report, two_users};

/// Moves the clock 5 s on, sends one report of `cpu` % from `token` then
/// and waits for the evaluator.
async fn cpu(app: &TestApp, token: &str, cpu: f64) {
    app.clock.advance(5_000);
    let now = storage::clock::Clock::now_ms(&*app.clock);
    let r = app
        .post(
            "/api/ingest",
            json!({ "reports": [report(now, cpu)] }),
            &[("x-agent-token", token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.state.alerting.settled().await;
}

async fn tag(app: &TestApp, who: &Session, agent: u64, tags: &[&str]) {
    let r = app
        .call(
            Method::PUT,
            &format!("/api/agents/{agent}/tags"),
            Some(json!({ "tags": tags })),
            &[("authorization", &who.bearer())],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// The alert events of `who`, oldest first: (agent name, state).
async fn events(app: &TestApp, who: &Session) -> Vec<(String, String)> {
    let r = app.call_as(who, Method::GET, "/api/alerts", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut out: Vec<(String, String)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["agent_name"].as_str().unwrap().to_string(),
                e["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.reverse();
    out
}

/// The agents rule `id` is firing on.
async fn firing_agents(app: &TestApp, who: &Session, id: u64) -> Vec<u64> {
    let r = app
        .call_as(who, Method::GET, &format!("/api/rules/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["firing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["agent_id"].as_u64().expect("a tag rule names the agent"))
        .collect()
}

fn pair(name: &str, state: &str) -> (String, String) {
    (name.to_string(), state.to_string())
}

#[tokio::test]
async fn a_tag_rule_watches_every_agent_with_the_tag_now_and_later_each_on_its_own() {
    let (mut app, alice, bob) = two_users(Default::default()).await;
    let (web1, web1_token) = app.create_agent(&alice, "web1").await;
    let (web2, web2_token) = app.create_agent(&alice, "web2").await;
    let (db, db_token) = app.create_agent(&alice, "db").await;
    let (bobs, bobs_token) = app.create_agent(&bob, "bobs-vps").await;
    tag(&app, &alice, web1, &["vps"]).await;
    tag(&app, &alice, web2, &["home", "vps"]).await;
    tag(&app, &bob, bobs, &["vps"]).await;

    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/rules",
            Some(json!({
                "target": { "tag": "VPS" },
                "metric": "cpu_pct", "comparison": "gt", "threshold": 50,
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["target"]["tag"], "vps", "normalized like agent tags");
    assert_eq!(r.body["agent_id"], 0);
    let rule = r.body["id"].as_u64().unwrap();

    // One tagged agent over the threshold: one alert, naming it. The
    // untagged one and another user's tagged one are not watched.
    cpu(&app, &web2_token, 10.0).await;
    cpu(&app, &db_token, 99.0).await;
    cpu(&app, &bobs_token, 99.0).await;
    cpu(&app, &web1_token, 99.0).await;
    assert_eq!(events(&app, &alice).await, [pair("web1", "firing")]);
    assert!(events(&app, &bob).await.is_empty());
    assert_eq!(firing_agents(&app, &alice, rule).await, [web1]);

    // The tag added later: the agent is watched at once (its latest
    // report is over the threshold) and from then on.
    tag(&app, &alice, db, &["vps"]).await;
    assert_eq!(
        events(&app, &alice).await,
        [pair("web1", "firing"), pair("db", "firing")]
    );
    let mut both = firing_agents(&app, &alice, rule).await;
    both.sort_unstable();
    assert_eq!(both, [web1, db]);

    // Each agent has its own state: web2 fires on its own, db resolves on
    // its own, web1 stays firing.
    cpu(&app, &web2_token, 97.0).await;
    cpu(&app, &db_token, 5.0).await;
    assert_eq!(
        events(&app, &alice).await[2..],
        [pair("web2", "firing"), pair("db", "resolved")]
    );

    // The tag removed: what was firing on that agent resolves.
    tag(&app, &alice, web1, &[]).await;
    assert_eq!(events(&app, &alice).await[4..], [pair("web1", "resolved")]);
    assert_eq!(firing_agents(&app, &alice, rule).await, [web2]);
    cpu(&app, &web1_token, 99.0).await;
    assert_eq!(
        events(&app, &alice).await.len(),
        5,
        "web1 no longer watched"
    );

    // The target and the per-agent state survive a restart, with no second
    // "firing".
    app.restart();
    let r = app
        .call_as(&alice, Method::GET, &format!("/api/rules/{rule}"), None)
        .await;
    assert_eq!(r.body["target"]["tag"], "vps", "{}", r.text);
    assert_eq!(firing_agents(&app, &alice, rule).await, [web2]);
    cpu(&app, &web2_token, 98.0).await;
    assert_eq!(events(&app, &alice).await.len(), 5);

    // A tag rule cannot be moved onto one agent; deleting it clears it.
    let r = app
        .call_as(
            &alice,
            Method::PATCH,
            &format!("/api/rules/{rule}"),
            Some(json!({ "agent_id": web1 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().starts_with("agent_id"));
    let r = app
        .call_as(&alice, Method::DELETE, &format!("/api/rules/{rule}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .call_as(&bob, Method::GET, &format!("/api/rules/{rule}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bad_rule_target_is_refused_naming_the_field_and_nothing_is_saved() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (agent, _) = app.create_agent(&alice, "web1").await;
    let base = json!({ "metric": "cpu_pct", "comparison": "gt", "threshold": 50 });
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        (json!({ "target": { "tag": "" } }), "target.tag"),
        (json!({ "target": { "tag": "tag:vps" } }), "target.tag"),
        (json!({ "target": { "tag": "x".repeat(33) } }), "target.tag"),
        (json!({ "target": { "name": "vps" } }), "target"),
        (json!({ "target": "vps" }), "target"),
        (
            json!({ "target": { "tag": "vps" }, "agent_id": agent }),
            "target",
        ),
        (json!({}), "agent_id"),
    ];
    for (extra, field) in cases {
        let r = app
            .call_as(
                &alice,
                Method::POST,
                "/api/rules",
                Some(with(extra.clone())),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{extra}: {}",
            r.text
        );
        assert_eq!(r.code(), "invalid");
        assert!(
            r.body["error"].as_str().unwrap().contains(field),
            "{extra}: does not name {field}: {}",
            r.text
        );
    }
    let r = app.call_as(&alice, Method::GET, "/api/rules", None).await;
    assert_eq!(r.body, json!([]), "nothing saved");
}
