//! Test harness: a real app on a temporary data directory.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use serde_json::{Value, json};
use server::config::{Config, PasswordCost, ServeArgs};
use server::datadir::DataDir;
use server::state::AppState;
use storage::clock::ManualClock;
use tower::ServiceExt;

/// 2026-01-01T00:00:00Z: tests start here and move the clock by hand.
pub const T0: i64 = 1_767_225_600_000;

pub struct TestApp {
    /// Declared before `dir`, so it is dropped first: the stores close (and
    /// a maintenance pass in flight ends) while their directory still exists.
    pub state: AppState,
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    /// The settings the app was started with; `restart` keeps them.
    pub args: ServeArgs,
}

/// A response, decoded.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with_args(ServeArgs::default())
    }

    /// An app started with `--open-registration`, for tests with several users.
    pub fn with_open_registration() -> TestApp {
        TestApp::with_args(ServeArgs {
            open_registration: Some(true),
            ..Default::default()
        })
    }

    /// An app with these settings on a fresh data directory.
    pub fn with_args(args: ServeArgs) -> TestApp {
        TestApp::on_dir_with(tempfile::tempdir().expect("temp dir"), args, T0)
    }

    /// An app on an existing directory, its clock at `now_ms`.
    pub fn on_dir(dir: tempfile::TempDir, now_ms: i64) -> TestApp {
        TestApp::on_dir_with(dir, ServeArgs::default(), now_ms)
    }

    fn on_dir_with(dir: tempfile::TempDir, args: ServeArgs, now_ms: i64) -> TestApp {
        let clock = Arc::new(ManualClock::new(now_ms));
        let state = TestApp::open_state(dir.path(), args.clone(), clock.clone());
        TestApp {
            dir,
            state,
            clock,
            args,
        }
    }

    pub fn open_state(
        path: &std::path::Path,
        args: ServeArgs,
        clock: Arc<ManualClock>,
    ) -> AppState {
        let mut config = Config::resolve(args).expect("valid test config");
        config.data_dir = path.to_path_buf();
        // Argon2 at production cost would make the suite take minutes.
        config.password_cost = PasswordCost::INSECURE_FAST_FOR_TESTS;
        let data_dir = DataDir::open(path).expect("open data dir");
        AppState::open_with_clock(config, data_dir, clock).expect("open app state")
    }

    /// Drops the state (closing every store) and opens the same directory again,
    /// as a restart would.
    pub fn restart(&mut self) {
        let args = self.args.clone();
        let path = self.dir.path().to_path_buf();
        let placeholder = {
            // The old state must be gone before the directory can be locked again.
            let tmp = tempfile::tempdir().expect("temp dir");
            let s = TestApp::open_state(tmp.path(), ServeArgs::default(), self.clock.clone());
            std::mem::replace(&mut self.state, s)
        };
        drop(placeholder);
        self.state = TestApp::open_state(&path, args, self.clock.clone());
    }

    pub fn router(&self) -> axum::Router {
        server::app(self.state.clone())
    }

    /// One request through the whole app (middleware included), no socket.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            req = req.header(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).expect("json"))
            }
            None => Body::empty(),
        };
        let response = self
            .router()
            .oneshot(req.body(body).expect("request"))
            .await
            .expect("infallible");
        Reply::read(response).await
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.call(Method::GET, path, None, headers).await
    }

    pub async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        self.call(Method::POST, path, Some(body), headers).await
    }

    /// Serves the app on a loopback port (for WebSockets and real clients).
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        addr
    }
}

impl Reply {
    pub async fn read(response: axum::response::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// The `code` of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery";

/// A logged-in user as a client sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: u64,
    pub access: String,
    pub refresh: String,
    /// `Cookie` header value carrying both session cookies.
    pub cookie: String,
}

impl Session {
    /// `Authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.access)
    }

    pub fn from_reply(reply: &Reply) -> Session {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let access = reply.body["access_token"]
            .as_str()
            .expect("access")
            .to_string();
        let refresh = reply.body["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_string();
        Session {
            user_id: reply.body["user"]["id"].as_u64().expect("user id"),
            cookie: format!("sm_access={access}; sm_refresh={refresh}"),
            access,
            refresh,
        }
    }
}

impl TestApp {
    pub async fn register(&self, username: &str) -> Reply {
        self.post(
            "/api/auth/register",
            serde_json::json!({ "username": username, "password": PASSWORD }),
            &[],
        )
        .await
    }

    pub async fn login_reply(&self, username: &str, password: &str) -> Reply {
        self.post(
            "/api/auth/token",
            serde_json::json!({ "username": username, "password": password }),
            &[],
        )
        .await
    }

    pub async fn login(&self, username: &str) -> Session {
        Session::from_reply(&self.login_reply(username, PASSWORD).await)
    }

    /// Registers `username` (registration must be open) and logs in.
    pub async fn register_and_login(&self, username: &str) -> Session {
        let r = self.register(username).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        self.login(username).await
    }

    /// Refreshes with a JSON body, as an API client does.
    pub async fn refresh_reply(&self, refresh_token: &str) -> Reply {
        self.post(
            "/api/auth/refresh",
            serde_json::json!({ "refresh_token": refresh_token }),
            &[],
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Session {
        Session::from_reply(&self.refresh_reply(refresh_token).await)
    }

    /// A request as `session` with its bearer token.
    pub async fn call_as(
        &self,
        session: &Session,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let auth = session.bearer();
        self.call(method, path, body, &[("authorization", &auth)])
            .await
    }

    /// Creates an agent as `session`; returns (id, token).
    pub async fn create_agent(&self, session: &Session, name: &str) -> (u64, String) {
        let r = self
            .call_as(
                session,
                Method::POST,
                "/api/agents",
                Some(serde_json::json!({ "name": name })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (
            r.body["agent"]["id"].as_u64().expect("agent id"),
            r.body["token"].as_str().expect("token").to_string(),
        )
    }
}

/// A report at `ts` with CPU at `cpu` %.
pub fn report(ts: i64, cpu: f64) -> Value {
    json!({
        "ts_ms": ts,
        "interval_ms": 5000,
        "cpu": { "total_pct": cpu, "cores_pct": [cpu, cpu / 2.0], "cores_mhz": [3400, 3600] },
        "load": [0.5, 0.4, 0.3],
        "memory": { "total_bytes": 16_000_000_000u64, "used_bytes": 8_000_000_000u64,
                    "available_bytes": 8_000_000_000u64, "swap_total_bytes": 2_000_000_000u64,
                    "swap_used_bytes": 0 },
        "disks": [ { "mount": "/", "total_bytes": 500_000_000_000u64, "used_bytes": 200_000_000_000u64,
                     "read_bps": 1024, "write_bps": 20480 } ],
        "networks": [ { "iface": "eth0", "rx_bps": 120000, "tx_bps": 64000 } ],
        "uptime_s": 86400
    })
}

/// How many points the `cpu.total_pct` series of a history answer has.
pub fn cpu_series_points(history: &Value) -> usize {
    history["series"]
        .as_array()
        .expect("series")
        .iter()
        .find(|s| s["metric"] == "cpu.total_pct")
        .expect("a cpu.total_pct series")["points"]
        .as_array()
        .expect("points")
        .len()
}

/// The points `[ts, avg, min, max]` of `cpu.total_pct` of `agent` from the
/// history API (`query` after the `?`).
pub async fn cpu_points(app: &TestApp, who: &Session, agent: u64, query: &str) -> Vec<Value> {
    let r = app
        .call_as(
            who,
            Method::GET,
            &format!("/api/history/{agent}/cpu?{query}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"] == "cpu.total_pct")
        .map(|s| s["points"].as_array().unwrap().clone())
        .unwrap_or_default()
}

/// The server binary of this build, for tests against the real process.
pub const BIN: &str = env!("CARGO_BIN_EXE_statusmonitor");

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The wall clock in Unix milliseconds (the real binary's clock).
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// Starts the binary on 127.0.0.1:`port` with `--data-dir data` and
/// `args`, logging warnings only, and waits until `/api/health` answers.
pub fn spawn_server(data: &std::path::Path, port: u16, args: &[&str]) -> std::process::Child {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new(BIN)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().expect("a UTF-8 path"),
        ])
        .args(args)
        .env("STATUSMONITOR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn statusmonitor");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{url}/api/health")).call().is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// An app with open registration and these settings, and two users on it:
/// alice (the first, so the admin) and bob.
pub async fn two_users(args: ServeArgs) -> (TestApp, Session, Session) {
    let app = TestApp::with_args(ServeArgs {
        open_registration: Some(true),
        ..args
    });
    let alice = app.register_and_login("alice").await;
    let bob = app.register_and_login("bob").await;
    (app, alice, bob)
}

impl TestApp {
    /// As `who`, a rule "CPU above 50 %" on `agent`; then a report of 99 %
    /// from the agent's `token`, so it fires; waits for the evaluator.
    pub async fn fire_cpu_rule(&self, who: &Session, agent: u64, token: &str) {
        let r = self
            .call_as(
                who,
                Method::POST,
                "/api/rules",
                Some(json!({ "agent_id": agent, "metric": "cpu_pct", "comparison": "gt", "threshold": 50 })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let r = self
            .post(
                "/api/ingest",
                json!({ "reports": [report(storage::clock::Clock::now_ms(&*self.clock), 99.0)] }),
                &[("x-agent-token", token)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        self.state.alerting.settled().await;
    }
}
