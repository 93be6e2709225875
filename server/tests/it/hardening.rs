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
async fn every_answer_carries_the_browser_headers() {
    let app = TestApp::new();
    for path in ["/api/health", "/api/no-such-endpoint", "/metrics"] {
        let r = app.get(path, &[]).await;
        assert_eq!(header(&r, "referrer-policy"), "same-origin", "{path}");
        assert_eq!(header(&r, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
        let csp = header(&r, "content-security-policy");
        assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
}

/// The nonce of the page's policy is on every script of the page, and on
/// nothing else; each load gets a new one.
#[tokio::test]
async fn a_page_allows_only_its_own_nonced_scripts() {
    let app = TestApp::new();
    let mut nonces = Vec::new();
    for path in ["/", "/login", "/no/such/page"] {
        let r = app.get(path, &[("host", "127.0.0.1:8420")]).await;
        assert!(
            header(&r, "content-type").starts_with("text/html"),
            "{path}"
        );
        let csp = header(&r, "content-security-policy");
        for directive in [
            "default-src 'self'",
            "'wasm-unsafe-eval'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "connect-src 'self' ws://127.0.0.1:8420 wss://127.0.0.1:8420",
        ] {
            assert!(csp.contains(directive), "{path}: no {directive} in {csp}");
        }
        // Inline code never; inline style attributes only.
        assert_eq!(
            csp.matches("'unsafe-inline'").count(),
            csp.matches("style-src-attr 'unsafe-inline'").count(),
            "{csp}"
        );
        assert_eq!(
            csp.matches("unsafe-eval").count(),
            csp.matches("'wasm-unsafe-eval'").count()
        );
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("{path}: no nonce in {csp}"))
            .to_string();
        assert_eq!(nonce.len(), 32, "{path}: {nonce}");
        let scripts = r.text.matches("<script").count();
        assert!(
            scripts >= 2,
            "{path}: the theme and hydration scripts: {}",
            r.text
        );
        assert_eq!(
            r.text
                .matches(&format!("<script nonce=\"{nonce}\""))
                .count()
                + r.text
                    .matches(&format!("<script type=\"module\" nonce=\"{nonce}\""))
                    .count(),
            scripts,
            "{path}: a script without this answer's nonce: {}",
            r.text
        );
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "a nonce was used twice");
}

#[tokio::test]
async fn with_a_public_url_only_its_host_addresses_and_local_names_are_served() {
    let app = with_public_url("https://mon.example.org");
    let mut ours = vec![
        "mon.example.org".to_string(),
        "MON.example.org:443".to_string(),
        "127.0.0.1:8420".to_string(),
        "[::1]:8420".to_string(),
        "192.168.1.20".to_string(),
        "localhost:8420".to_string(),
    ];
    if let Some(name) = server::security::machine_hostname() {
        ours.push(format!("{name}:8420"));
    }
    for host in &ours {
        let r = app.get("/api/health", &[("host", host)]).await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {}", r.text);
    }
    for host in [
        ATTACKER,
        "mon.example.org.attacker.example",
        "localhost.attacker.example",
    ] {
        for path in ["/api/health", "/", "/api/auth/registration"] {
            let r = app.get(path, &[("host", host)]).await;
            assert_error(
                &r,
                StatusCode::MISDIRECTED_REQUEST,
                &format!("{host} {path}"),
            );
            assert_eq!(r.code(), "misdirected_request");
            assert!(
                r.body["error"]
                    .as_str()
                    .unwrap()
                    .contains("mon.example.org"),
                "{}",
                r.text
            );
            assert_eq!(header(&r, "x-frame-options"), "DENY");
        }
    }
    // Nothing happens behind a refused request: no account is made.
    let r = app
        .post(
            "/api/auth/register",
            json!({ "username": "mallory", "password": PASSWORD }),
            &[("host", ATTACKER)],
        )
        .await;
    assert_error(&r, StatusCode::MISDIRECTED_REQUEST, "register");
    let r = app.get("/api/auth/registration", &[]).await;
    assert_eq!(r.body["first_account"], true, "{}", r.text);
    // The public host may create the first account.
    let r = app
        .post(
            "/api/auth/register",
            json!({ "username": "alice", "password": PASSWORD }),
            &[("host", "mon.example.org")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// A fresh install without `--public-url`: a rebinding page (its own DNS
/// name in `Host`) cannot create the admin account; an address or a local
/// name can. Later accounts are not held to it.
#[tokio::test]
async fn the_first_account_is_only_made_at_an_address_or_a_local_name() {
    let app = TestApp::with_open_registration();
    let register = |name: &'static str, host: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/api/auth/register",
                json!({ "username": name, "password": PASSWORD }),
                &[("host", host)],
            )
            .await
        }
    };
    // Everything else is served to any Host while --public-url is unset.
    let r = app.get("/api/health", &[("host", ATTACKER)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = register("mallory", ATTACKER).await;
    assert_error(
        &r,
        StatusCode::FORBIDDEN,
        "first account from a foreign name",
    );
    let message = r.body["error"].as_str().unwrap();
    assert!(
        message.contains("first account") && message.contains("rebind.attacker.example"),
        "{message}"
    );
    let r = app.get("/api/auth/registration", &[]).await;
    assert_eq!(
        r.body["first_account"], true,
        "nothing was made: {}",
        r.text
    );

    let r = register("alice", "127.0.0.1:8420").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["is_admin"], true);
    // Open registration: the second account may come from any name.
    let r = register("bob", ATTACKER).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["is_admin"], false);

    for host in ["localhost:8420", "[::1]:8420"] {
        let app = TestApp::new();
        let r = app
            .post(
                "/api/auth/register",
                json!({ "username": "alice", "password": PASSWORD }),
                &[("host", host)],
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{host}: {}", r.text);
    }
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
    assert_eq!(header(&r, "x-frame-options"), "DENY");
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
