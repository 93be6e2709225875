//! kill -9 during sustained ingest loses no acknowledged report: the real
//! binary is killed while four clients post reports, restarted on the same
//! data directory, and every report it had answered 200 for is in history.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::{free_port, spawn_server};

const STEP_MS: i64 = 5_000;
const CLIENTS: u64 = 4;
const PER_CLIENT: u64 = 400;

fn start(data: &Path) -> (Child, String) {
    let port = free_port();
    (
        spawn_server(data, port, &[]),
        format!("http://127.0.0.1:{port}"),
    )
}

fn login(url: &str) -> String {
    let mut r = ureq::post(&format!("{url}/api/auth/token"))
        .send_json(json!({ "username": "crash", "password": "correct horse battery" }))
        .unwrap();
    let body: Value = r.body_mut().read_json().unwrap();
    format!("Bearer {}", body["access_token"].as_str().unwrap())
}

/// The report with sequence number `k`: its timestamp and CPU value both encode `k`.
fn report(base: i64, k: u64) -> Value {
    json!({ "ts_ms": base + k as i64 * STEP_MS, "interval_ms": 5000,
            "cpu": { "total_pct": (k % 1000) as f64 / 10.0 } })
}

#[test]
fn kill_9_during_sustained_ingest_loses_no_acknowledged_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, url) = start(&data);
    ureq::post(&format!("{url}/api/auth/register"))
        .send_json(json!({ "username": "crash", "password": "correct horse battery" }))
        .unwrap();
    let bearer = login(&url);
    let mut r = ureq::post(&format!("{url}/api/agents"))
        .header("authorization", &bearer)
        .send_json(json!({ "name": "victim" }))
        .unwrap();
    let created: Value = r.body_mut().read_json().unwrap();
    let agent = created["agent"]["id"].as_u64().unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now - 12 * 3_600_000) / STEP_MS * STEP_MS;

    let acked: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let mut url = url;
    for round in 0..3u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (acked, stop, url, token) =
                    (acked.clone(), stop.clone(), url.clone(), token.clone());
                std::thread::spawn(move || {
                    let agent = ureq::Agent::new_with_defaults();
                    for i in 0..PER_CLIENT {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let k = (round * CLIENTS + c) * PER_CLIENT + i;
                        let sent = agent
                            .post(&format!("{url}/api/ingest"))
                            .header("x-agent-token", &token)
                            .send_json(json!({ "reports": [report(base, k)] }));
                        match sent {
                            Ok(r) if r.status() == 200 => {
                                acked.lock().unwrap().insert(k);
                            }
                            // The server is gone: what was not answered is not owed.
                            _ => break,
                        }
                    }
                })
            })
            .collect();
        // Kill while the clients are busy.
        std::thread::sleep(Duration::from_millis(300 + 200 * round));
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        (server, url) = start(&data);
    }

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "the clients got going before the kills: {}",
        acked.len()
    );
    let bearer = login(&url);
    let last = *acked.iter().next_back().unwrap();
    let mut stored: BTreeSet<u64> = BTreeSet::new();
    // 5 s buckets, one report each; read in slices of ≤ 5,000 points.
    let mut from = 0u64;
    while from <= last {
        let to = (from + 4_000).min(last + 1);
        let mut r = ureq::get(&format!(
            "{url}/api/history/{agent}/cpu?tier=5s&max_points=5000&start={}&stop={}",
            base + from as i64 * STEP_MS,
            base + to as i64 * STEP_MS
        ))
        .header("authorization", &bearer)
        .call()
        .unwrap();
        let body: Value = r.body_mut().read_json().unwrap();
        let series = body["series"].as_array().unwrap();
        let cpu = series
            .iter()
            .find(|s| s["metric"] == "cpu.total_pct")
            .expect("cpu series");
        for p in cpu["points"].as_array().unwrap() {
            let k = ((p[0].as_i64().unwrap() - base) / STEP_MS) as u64;
            assert_eq!(
                p[1].as_f64().unwrap(),
                (k % 1000) as f64 / 10.0,
                "value of report {k}"
            );
            stored.insert(k);
        }
        from = to;
    }
    let lost: Vec<u64> = acked.difference(&stored).copied().collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged reports lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
