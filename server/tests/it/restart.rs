//! A server restart with a real agent (the agent library's `run`, spooling
//! and retrying as in production) does not make the agent look offline.
//!
//! The product case is a 5 s agent, a 20 s offline rule and outages of 35,
//! 40 and 45 s; the same logic runs here scaled down five times (1 s agent
//! interval, 4 s offline limit, outages of 7, 8 and 9 s), the three outages
//! in parallel, each against its own server. Before the shared backoff the
//! agent waited 1, 2, 4, 8 s… between tries, so after an outage of 7 to 9 s
//! its next try came up to 8 s after the server was back: longer than the
//! limit, and the rule fired for an agent that had been running all along.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{free_port, spawn_server, wall_ms as now_ms};

const PASSWORD: &str = "correct horse battery";
/// The agent's interval and the offline limit, in seconds.
const INTERVAL_S: u64 = 1;
const LIMIT_S: u64 = 4;

fn start(data: &Path, port: u16) -> Child {
    spawn_server(data, port, &["--offline-check-interval", "200ms"])
}

/// SIGTERM and wait: a graceful stop, as `systemctl stop` does.
fn stop(mut server: Child) {
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();
}

struct Client {
    url: String,
    bearer: String,
}

impl Client {
    fn get(&self, path: &str) -> Value {
        let mut r = ureq::get(&format!("{}{path}", self.url))
            .header("authorization", &self.bearer)
            .call()
            .unwrap();
        r.body_mut().read_json().unwrap()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let mut r = ureq::post(&format!("{}{path}", self.url))
            .header("authorization", &self.bearer)
            .send_json(body)
            .unwrap();
        r.body_mut().read_json().unwrap()
    }

    /// Creates an agent and its offline rule; (agent id, token, rule id).
    fn agent_with_offline_rule(&self, name: &str) -> (u64, String, u64) {
        let created = self.post("/api/agents", json!({ "name": name }));
        let id = created["agent"]["id"].as_u64().unwrap();
        let rule = self.post(
            "/api/rules",
            json!({ "agent_id": id, "metric": "offline", "duration_s": LIMIT_S,
                    "name": format!("{name} offline") }),
        );
        (
            id,
            created["token"].as_str().unwrap().to_string(),
            rule["id"].as_u64().unwrap(),
        )
    }

    fn firing(&self, rule: u64) -> bool {
        self.get("/api/rules")
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == rule)
            .is_some_and(|r| !r["firing"].as_array().unwrap().is_empty())
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut(&Client) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One outage of `outage` against its own server; panics on a false alarm.
fn restart_after(outage: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let server = start(&data, port);
    let url = format!("http://127.0.0.1:{port}");
    let account = json!({ "username": "alice", "password": PASSWORD });
    ureq::post(&format!("{url}/api/auth/register"))
        .send_json(&account)
        .unwrap();
    let mut r = ureq::post(&format!("{url}/api/auth/token"))
        .send_json(&account)
        .unwrap();
    let login: Value = r.body_mut().read_json().unwrap();
    let client = Client {
        bearer: format!("Bearer {}", login["access_token"].as_str().unwrap()),
        url: url.clone(),
    };
    let (agent_id, token, agent_rule) = client.agent_with_offline_rule("nas");
    // The control: an agent that reports once and then never again. Its
    // rule fires once the offline check after the restart is past the point
    // where the real agent's would have fired too.
    let (_, silent_token, silent_rule) = client.agent_with_offline_rule("gone");
    ureq::post(&format!("{url}/api/ingest"))
        .header("x-agent-token", &silent_token)
        .send_json(
            json!({ "reports": [{ "ts_ms": now_ms(), "interval_ms": INTERVAL_S * 1000,
                                         "cpu": { "total_pct": 1.0 } }] }),
        )
        .unwrap();

    // The real agent, at a 1 s interval.
    let spool = dir.path().join("spool");
    let args = agent::config::AgentArgs {
        config: Some(spool.join("none.toml")),
        server: Some(url.clone()),
        token: Some(agent::config::parse_token(&token).unwrap()),
        interval: Some(Duration::from_secs(INTERVAL_S)),
        spool_dir: Some(spool),
        ..Default::default()
    };
    let config = agent::config::Config::resolve(&args).unwrap();
    let halt = Arc::new(AtomicBool::new(false));
    let agent_thread = {
        let halt = halt.clone();
        std::thread::spawn(move || agent::run::run(&config, halt))
    };
    let last_seen = |c: &Client| {
        c.get(&format!("/api/agents/{agent_id}"))["last_seen_ms"]
            .as_i64()
            .unwrap_or(0)
    };
    client.wait_for("the agent's first report", Duration::from_secs(10), |c| {
        last_seen(c) > 0
    });

    stop(server);
    std::thread::sleep(outage);
    let restarted_ms = now_ms();
    let server = start(&data, port);

    client.wait_for(
        "the silent agent's rule to fire (the offline check is past the limit)",
        Duration::from_secs(LIMIT_S + 3 * INTERVAL_S + 10),
        |c| c.firing(silent_rule),
    );
    assert!(
        last_seen(&client) >= restarted_ms,
        "the agent reported again after the restart"
    );
    assert!(
        !client.firing(agent_rule),
        "after a {outage:?} outage the running agent was taken for offline"
    );
    let events = client.get("/api/alerts?limit=100");
    let false_alarms: Vec<&Value> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["rule_id"] == agent_rule)
        .collect();
    assert!(
        false_alarms.is_empty(),
        "after a {outage:?} outage: {false_alarms:?}"
    );

    halt.store(true, Ordering::Relaxed);
    agent_thread.join().unwrap().unwrap();
    stop(server);
}

#[test]
fn a_server_restart_does_not_make_a_running_agent_look_offline() {
    let runs: Vec<_> = [7, 8, 9]
        .into_iter()
        .map(|s| std::thread::spawn(move || restart_after(Duration::from_secs(s))))
        .collect();
    let failures: Vec<String> = runs
        .into_iter()
        .filter_map(|t| t.join().err())
        .map(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}
