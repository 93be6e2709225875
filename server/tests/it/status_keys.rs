//! A private status page's secret key is replaced on request: the new key
//! opens the page, the old one is refused; a public page has no key to
//! replace (422 naming `private`), and someone else's page is a 404.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn a_new_key_opens_a_private_page_and_the_old_one_no_longer_does() {
    let app = TestApp::with_open_registration();
    let alice = app.register_and_login("alice").await;
    let bob = app.register_and_login("bob").await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/status-pages",
            Some(json!({"slug": "family", "title": "Family", "private": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let old = r.body["key"].as_str().unwrap().to_string();
    let id = r.body["id"].as_u64().unwrap();
    let path = format!("/api/status-pages/{id}/key");

    let r = app.call_as(&bob, Method::POST, &path, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not bob's: {}", r.text);
    let r = app.call_as(&alice, Method::POST, &path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new = r.body["key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(r.body["spec"]["private"], true);
    let again = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/status-pages/{id}"),
            None,
        )
        .await;
    assert!(again.body["key"].is_null() && !again.text.contains(&new));

    let r = app.get(&format!("/status/family?key={new}"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("Family</h1>"), "{}", r.text);
    let r = app
        .get(&format!("/status/family.json?key={old}"), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "the old key: {}", r.text);

    // Public again: nothing to replace, and the page needs no key.
    let r = app
        .call_as(
            &alice,
            Method::PUT,
            &format!("/api/status-pages/{id}"),
            Some(json!({"slug": "family", "title": "Family"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.call_as(&alice, Method::POST, &path, None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("private:"), "{}", r.text);
    assert_eq!(app.get("/status/family", &[]).await.status, StatusCode::OK);
}
