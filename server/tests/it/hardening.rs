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

#[tokio::test]
async fn malformed_ids_and_query_strings_are_json_400s_naming_the_parameter() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (agent, _) = app.create_agent(&alice, "nas").await;
    for (method, path, name) in [
        (Method::GET, "/api/ws/abc".to_string(), "agent_id"),
        (Method::DELETE, "/api/auth/sessions/abc".to_string(), "id"),
        (
            Method::GET,
            format!("/api/history/{agent}/cpu?start=-1h&start=-2h"),
            "start",
        ),
        (Method::GET, "/api/alerts?limit=abc".to_string(), "limit"),
        (
            Method::GET,
            "/api/alerts?limit=1&limit=2".to_string(),
            "limit",
        ),
        (Method::GET, "/api/rules?agent_id=x".to_string(), "agent_id"),
    ] {
        let r = app.call_as(&alice, method.clone(), &path, None).await;
        assert_error(&r, StatusCode::BAD_REQUEST, &format!("{method} {path}"));
        assert!(
            r.body["error"].as_str().unwrap().contains(name),
            "{method} {path}: does not name {name}: {}",
            r.text
        );
    }
}

/// Every operation of the OpenAPI document, given a malformed path id, a
/// malformed query string and a malformed body (each where it takes one),
/// answers a 4xx in the one error format.
#[tokio::test]
async fn every_route_refuses_malformed_input_in_json() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    let doc = app.get("/api/openapi.json", &[]).await.body;
    let auth = alice.bearer();
    let mut checked = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()) {
                continue;
            }
            let params: Vec<(&str, &str)> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| (p["in"].as_str().unwrap(), p["name"].as_str().unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            let real = path
                .replace("{id}", &agent.to_string())
                .replace("{agent_id}", &agent.to_string())
                .replace("{kind}", "cpu");
            let headers = [
                ("authorization", auth.as_str()),
                ("x-agent-token", token.as_str()),
            ];
            let call = |uri: String, body: Option<&'static str>| {
                let app = &app;
                let m = m.clone();
                async move {
                    let mut req = axum::http::Request::builder().method(m).uri(&uri);
                    for (k, v) in headers {
                        req = req.header(k, v);
                    }
                    if body.is_some() {
                        req = req.header("content-type", "application/json");
                    }
                    let body = axum::body::Body::from(body.unwrap_or_default());
                    let r = app.router().oneshot(req.body(body).unwrap()).await.unwrap();
                    (uri, Reply::read(r).await)
                }
            };
            let mut cases = Vec::new();
            if path.contains('{') {
                // Every id a word with a multi-byte character; `kind` stays.
                let bad = path
                    .replace("{kind}", "cpu")
                    .split('/')
                    .map(|s| if s.starts_with('{') { "x%C3%A9y" } else { s })
                    .collect::<Vec<_>>()
                    .join("/");
                cases.push(("path id", call(bad, None).await));
            }
            if let Some((_, name)) = params.iter().find(|(i, _)| *i == "query") {
                let uri = format!("{real}?{name}=%FF%FE&{name}=-1h&{name}=x");
                cases.push(("query", call(uri, None).await));
            }
            if op.get("requestBody").is_some() {
                cases.push(("body", call(real.clone(), Some("{\"name\": [1, 2")).await));
            }
            for (what, (uri, r)) in cases {
                assert!(
                    r.status.is_client_error(),
                    "{method} {uri} ({what}) answered {}: {}",
                    r.status,
                    r.text
                );
                assert_error(&r, r.status, &format!("{method} {uri} ({what})"));
                *checked.entry(what).or_insert(0) += 1;
            }
        }
    }
    // As many as the document has operations taking each kind of input.
    let count = |what| checked.get(what).copied().unwrap_or(0);
    assert!(
        count("path id") >= 11 && count("query") >= 6 && count("body") >= 11,
        "too few malformed requests made: {checked:?}"
    );
}

/// Every operation has its own descriptive, camelCase `operationId`
/// (generators name client methods after them), and the document passes a
/// validator that others wrote.
#[tokio::test]
async fn openapi_document_has_unique_operation_ids_and_passes_a_validator() {
    let app = TestApp::new();
    let r = app.get("/api/openapi.json", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut ids = Vec::new();
    for (path, item) in r.body["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().any(|c| c.is_ascii_uppercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{method} {path}: operationId `{id}` is the handler's name; give it \
                 `operation_id = \"verbNoun\"` in its #[utoipa::path]"
            );
            ids.push(id.to_string());
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds repeat: {ids:?}");
    assert!(count >= 30, "{count} operations");

    let validator = openapi_validator();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &r.text).unwrap();
    let out = Command::new(&validator).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{} refused /api/openapi.json:\n{}{}",
        validator.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openapi-spec-validator`: `$OPENAPI_SPEC_VALIDATOR`, the one `make
/// setup-openapi` puts in the tools cache, or one on `PATH`.
fn openapi_validator() -> PathBuf {
    if let Some(path) = std::env::var_os("OPENAPI_SPEC_VALIDATOR") {
        return PathBuf::from(path);
    }
    let tools = std::env::var_os("TOOLS").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/statusmonitor/tools"))
    });
    let cached = tools.and_then(|dir| {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("openapi-spec-validator-"))
            })
            .map(|p| p.join("bin/openapi-spec-validator"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found.pop()
    });
    if let Some(path) = cached {
        return path;
    }
    let on_path = Command::new("openapi-spec-validator")
        .arg("--help")
        .output();
    assert!(
        on_path.is_ok_and(|o| o.status.success()),
        "openapi-spec-validator is missing: run `make setup-openapi` (a Python venv with \
         `pip install openapi-spec-validator`, in the tools cache); `make test` does this first"
    );
    PathBuf::from("openapi-spec-validator")
}
