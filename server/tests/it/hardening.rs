//! What every answer carries and every refusal looks like: the browser
//! headers (CSP with the page's nonce, Referrer-Policy, X-Frame-Options), the
//! `Host` check against DNS rebinding, a panicking handler, 405s, malformed
//! path ids, query strings and bodies on every route of the OpenAPI
//! document, and that document through a validator others wrote.
//!
//! `openapi-spec-validator` (PyPI) is installed by `make setup-openapi`,
//! which `make test` runs first; without it the validator test fails and
//! says so.

use std::path::PathBuf;
use std::process::Command;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};
use server::config::ServeArgs;
use tower::ServiceExt;

use crate::common::{PASSWORD, Reply, TestApp};

const ATTACKER: &str = "rebind.attacker.example:8420";

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header: {:?}", r.headers))
}

/// An error answer in the one format, with this status.
fn assert_error(r: &Reply, status: StatusCode, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text);
    assert!(
        r.body["error"].as_str().is_some_and(|e| !e.is_empty()) && r.body["code"].is_string(),
        "{what}: not {{error, code}}: {}",
        r.text
    );
}

fn with_public_url(url: &str) -> TestApp {
    TestApp::with_args(ServeArgs {
        public_url: Some(url.to_string()),
        ..Default::default()
    })
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_in_json_and_the_server_carries_on() {
    let app = TestApp::new();
    let router = server::app_with_routes(
        app.state.clone(),
        Router::new().route(
            "/api/test-only/panic",
            get(|| async {
                let v: Vec<u8> = Vec::new();
                // An index out of bounds, as a parser bug would panic.
                v[usize::from(v.is_empty())].to_string()
            }),
        ),
    );
    let request = || {
        axum::http::Request::get("/api/test-only/panic")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let r = Reply::read(router.clone().oneshot(request()).await.unwrap()).await;
    assert_error(&r, StatusCode::INTERNAL_SERVER_ERROR, "panic");
    assert_eq!(r.code(), "internal");
    assert!(
        !r.text.contains("index out of bounds"),
        "the cause is logged, not sent: {}",
        r.text
    );
    // Same router, next request: still serving.
    let ok = axum::http::Request::get("/api/health")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = Reply::read(router.oneshot(ok).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn method_not_allowed_is_json_and_names_the_allowed() {
    let app = TestApp::new();
    for (method, path) in [
        (Method::PUT, "/api/health"),
        (Method::GET, "/api/ingest"),
        (Method::DELETE, "/api/auth/token"),
        (Method::POST, "/api/health"),
    ] {
        let r = app.call(method.clone(), path, None, &[]).await;
        assert_error(
            &r,
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} {path}"),
        );
        assert_eq!(r.code(), "method_not_allowed");
        assert!(!header(&r, "allow").is_empty(), "{method} {path}");
    }
}
