//! The dashboard's list of checks with their daily bars in one request
//! (`GET /api/checks?days=N`): the same values as each check's own
//! `/uptime`, bounded to 90 days, absent unless asked for, and a bad `days`
//! refused naming the field.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use server::config::ServeArgs;

use crate::common::{Session, TestApp};

async fn tcp_check(app: &TestApp, who: &Session, target: String) -> u64 {
    let body = json!({ "name": "port", "kind": "tcp", "target": target, "interval_s": 3600, "timeout_ms": 2000 });
    let r = app
        .call_as(who, Method::POST, "/api/checks", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_u64().unwrap();
    // The first scheduled run (within a second of saving) is the barrier.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app
        .call_as(who, Method::GET, &format!("/api/checks/{id}"), None)
        .await
        .body["last"]
        .is_null()
    {
        assert!(Instant::now() < deadline, "the first run never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    id
}

#[tokio::test]
async fn the_list_carries_each_checks_daily_bars_when_asked() {
    let app = TestApp::with_args(ServeArgs {
        open_registration: Some(true),
        ..Default::default()
    });
    let alice = app.register_and_login("alice").await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = tcp_check(&app, &alice, listener.local_addr().unwrap().to_string()).await;
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let down_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let down = tcp_check(&app, &alice, down_addr).await;
    app.clock.advance(60_000);
    let r = app
        .call_as(&alice, Method::POST, &format!("/api/checks/{up}/run"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let list = app
        .call_as(&alice, Method::GET, "/api/checks?days=90", None)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let by_id = |id: u64| -> Value {
        list.body
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap()
    };
    for (id, today) in [(up, 100.0), (down, 0.0)] {
        let days = by_id(id)["days"].as_array().unwrap().clone();
        assert_eq!(days.len(), 90, "{}", list.text);
        assert_eq!(days[89], today, "{}", list.text);
        assert!(days[..89].iter().all(Value::is_null), "{}", list.text);
        // The same values as the check's own uptime answer.
        let own = app
            .call_as(
                &alice,
                Method::GET,
                &format!("/api/checks/{id}/uptime"),
                None,
            )
            .await;
        assert_eq!(own.body["days"], json!(days));
    }
    // Fewer days: the last ones, today last.
    let week = app
        .call_as(&alice, Method::GET, "/api/checks?days=7", None)
        .await;
    let days = week.body[0]["days"].as_array().unwrap();
    assert_eq!(days.len(), 7, "{}", week.text);
    assert!(days[6].is_number(), "{}", week.text);

    // Not asked for: not there.
    let plain = app.call_as(&alice, Method::GET, "/api/checks", None).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.body[0].get("days").is_none(), "{}", plain.text);

    // More than the bars that exist, none, or not a number: refused by name.
    for bad in ["0", "91", "100000", "-1", "x"] {
        let r = app
            .call_as(
                &alice,
                Method::GET,
                &format!("/api/checks?days={bad}"),
                None,
            )
            .await;
        assert!(
            matches!(r.status.as_u16(), 400 | 422),
            "days={bad}: {} {}",
            r.status,
            r.text
        );
        assert!(
            r.body["error"].as_str().unwrap().contains("days"),
            "days={bad}: {}",
            r.text
        );
    }
    let r = app
        .call_as(&alice, Method::GET, "/api/checks?bars=90", None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    drop(listener);
}
