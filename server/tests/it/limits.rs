//! Per-account limits (agents, rules; the admin exempt), the minimum rule
//! cooldown (also for rules stored before it), and names that cannot lie
//! (bidi and zero-width characters refused in every named field).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use server::config::ServeArgs;
use storage::catalog::RuleRecord;
use storage::clock::Clock;
use storage::model::{AlertMetric, Comparison};

use crate::common::{Reply, Session, TestApp, report};

async fn two_users(tweak: impl FnOnce(&mut ServeArgs)) -> (TestApp, Session, Session) {
    let mut args = ServeArgs {
        offline_check_interval: Some("1h".into()),
        ..Default::default()
    };
    tweak(&mut args);
    crate::common::two_users(args).await
}

async fn new_agent(app: &TestApp, who: &Session, name: &str) -> Reply {
    app.call_as(
        who,
        Method::POST,
        "/api/agents",
        Some(json!({ "name": name })),
    )
    .await
}

async fn new_rule(app: &TestApp, who: &Session, body: Value) -> Reply {
    app.call_as(who, Method::POST, "/api/rules", Some(body))
        .await
}

fn cpu_rule(agent: u64) -> Value {
    json!({ "agent_id": agent, "metric": "cpu_pct", "comparison": "gt", "threshold": 90 })
}

#[tokio::test]
async fn an_account_has_at_most_its_limit_of_agents_and_rules_and_the_admin_none() {
    let (app, alice, bob) = two_users(|a| {
        a.max_agents_per_user = Some(2);
        a.max_rules_per_user = Some(2);
    })
    .await;
    let (first, _) = app.create_agent(&bob, "one").await;
    app.create_agent(&bob, "two").await;
    let r = new_agent(&app, &bob, "three").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let msg = r.body["error"].as_str().unwrap();
    assert!(msg.starts_with("max_agents_per_user:"), "{msg}");
    assert!(msg.contains("at most 2 agents"), "{msg}");
    // Deleting one makes room again.
    let r = app
        .call_as(&bob, Method::DELETE, &format!("/api/agents/{first}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (agent, _) = app.create_agent(&bob, "three").await;

    for _ in 0..2 {
        let r = new_rule(&app, &bob, cpu_rule(agent)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = new_rule(&app, &bob, cpu_rule(agent)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("max_rules_per_user:"),
        "{}",
        r.text
    );

    // The admin is exempt.
    let mut agents = Vec::new();
    for name in ["a", "b", "c"] {
        agents.push(app.create_agent(&alice, name).await.0);
    }
    for _ in 0..3 {
        let r = new_rule(&app, &alice, cpu_rule(agents[0])).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

#[tokio::test]
async fn parallel_creations_do_not_pass_the_limit_together() {
    let (app, _alice, bob) = two_users(|a| a.max_agents_per_user = Some(3)).await;
    let tries = (0..8).map(|i| {
        let app = &app;
        let bob = &bob;
        async move { new_agent(app, bob, &format!("agent{i}")).await.status }
    });
    let statuses = futures_util::future::join_all(tries).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 3, "{statuses:?}");
}

#[tokio::test]
async fn a_cooldown_under_a_minute_is_refused_and_older_rules_are_read_with_the_minimum() {
    let (mut app, _alice, mut bob) = two_users(|_| {}).await;
    let (agent, token) = app.create_agent(&bob, "nas").await;
    let mut body = cpu_rule(agent);
    body["cooldown_s"] = json!(59);
    let r = new_rule(&app, &bob, body.clone()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("cooldown_s: between 60 and"), "{}", r.text);
    body["cooldown_s"] = json!(60);
    let r = new_rule(&app, &bob, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_u64().unwrap();
    let r = app
        .call_as(
            &bob,
            Method::PATCH,
            &format!("/api/rules/{id}"),
            Some(json!({ "cooldown_s": 0 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A rule stored with a cooldown of 0 (allowed before).
    let now = app.clock.now_ms();
    let old = app
        .state
        .catalog
        .create_rule(&RuleRecord {
            id: 0,
            owner_id: bob.user_id,
            agent_id: agent,
            metric: AlertMetric::MemoryPct,
            label: None,
            comparison: Some(Comparison::Gt),
            threshold: Some(10.0),
            duration_s: None,
            cooldown_s: 0,
            enabled: true,
            name: Some("old".into()),
            description: None,
            created_ms: now,
            updated_ms: now,
        })
        .unwrap();
    app.restart();
    bob = app.login("bob").await;
    let path = format!("/api/rules/{}", old.id);
    let r = app.call_as(&bob, Method::GET, &path, None).await;
    assert_eq!(r.body["cooldown_s"], 60, "{}", r.text);

    // Evaluated with 60 s: a breach still there 5 s later does not
    // notify again; one still there after a minute does.
    for (advance, expected, why) in [
        (0, 1, "the breach fires"),
        (5_000, 1, "within the minute"),
        (60_000, 2, "after the minute"),
    ] {
        app.clock.advance(advance);
        let r = app
            .post(
                "/api/ingest",
                json!({ "reports": [report(app.clock.now_ms(), 10.0)] }),
                &[("x-agent-token", &token)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        app.state.alerting.settled().await;
        let r = app
            .call_as(&bob, Method::GET, "/api/alerts?metric=memory_pct", None)
            .await;
        assert_eq!(r.body["total"], expected, "{why}: {}", r.text);
    }

    // Editing another field saves it with the minimum.
    let r = app
        .call_as(
            &bob,
            Method::PATCH,
            &path,
            Some(json!({ "name": "renamed" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.state.catalog.rule(old.id).unwrap().unwrap().cooldown_s,
        60
    );
}

/// Bidi overrides and isolates, marks, zero-width characters.
const HIDDEN: [char; 9] = [
    '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}', '\u{200B}', '\u{200D}',
    '\u{FEFF}',
];

fn refused_naming(r: &Reply, field: &str) {
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{field}: {}",
        r.text
    );
    let msg = r.body["error"].as_str().unwrap();
    assert!(msg.starts_with(field), "expected {field}: {msg}");
}

#[tokio::test]
async fn names_with_bidi_or_zero_width_characters_are_refused_naming_the_field() {
    let (app, _alice, bob) = two_users(|_| {}).await;
    let (agent, token) = app.create_agent(&bob, "nas").await;
    for c in HIDDEN {
        let name = format!("nas{c}01");
        refused_naming(&new_agent(&app, &bob, &name).await, "name");
        let r = app
            .call_as(
                &bob,
                Method::PATCH,
                &format!("/api/agents/{agent}"),
                Some(json!({ "name": name })),
            )
            .await;
        refused_naming(&r, "name");

        let mut rule = cpu_rule(agent);
        rule["name"] = json!(format!("CPU{c}"));
        refused_naming(&new_rule(&app, &bob, rule).await, "name");
        let rule = json!({ "agent_id": agent, "metric": "disk_pct", "comparison": "gt",
                           "threshold": 90, "label": format!("/data{c}") });
        refused_naming(&new_rule(&app, &bob, rule).await, "label");
        let mut rule = cpu_rule(agent);
        rule["description"] = json!(format!("hot{c}"));
        refused_naming(&new_rule(&app, &bob, rule).await, "description");

        let now = app.clock.now_ms();
        for (field, mutate) in [
            (
                "reports[0].disks[0].mount",
                Box::new(move |r: &mut Value| r["disks"][0]["mount"] = json!(format!("/mnt{c}")))
                    as Box<dyn Fn(&mut Value)>,
            ),
            (
                "reports[0].networks[0].iface",
                Box::new(move |r: &mut Value| {
                    r["networks"][0]["iface"] = json!(format!("eth{c}0"))
                }),
            ),
            (
                "reports[0].temps[0].sensor",
                Box::new(move |r: &mut Value| {
                    r["temps"] = json!([{ "sensor": format!("cpu{c}"), "celsius": 40.0 }]);
                }),
            ),
        ] {
            let mut rep = report(now, 10.0);
            mutate(&mut rep);
            let r = app
                .post(
                    "/api/ingest",
                    json!({ "reports": [rep] }),
                    &[("x-agent-token", &token)],
                )
                .await;
            refused_naming(&r, field);
        }
    }
    // Ordinary names in any script pass.
    for name in ["Büro-NAS", "サーバー", "خادم"] {
        let r = new_agent(&app, &bob, name).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.text);
    }
}
