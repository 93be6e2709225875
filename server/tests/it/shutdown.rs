//! A graceful stop (SIGTERM, as `systemctl stop` sends) empties the engine's
//! journal every time, also while agents are still sending: the next start
//! replays nothing, every acknowledged report is in tables, and the open
//! windows are sealed into blocks (no head rows are left).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use storage::tsdb::{Engine, EngineConfig, ManualClock, QueryRequest, Tier};

use crate::common::{PASSWORD, free_port, report, spawn_server, wall_ms};

/// Logs in as a new admin and creates one agent; its (id, token).
fn agent(url: &str) -> (u64, String) {
    ureq::post(&format!("{url}/api/auth/register"))
        .send_json(json!({ "username": "admin", "password": PASSWORD }))
        .unwrap();
    let mut r = ureq::post(&format!("{url}/api/auth/token"))
        .send_json(json!({ "username": "admin", "password": PASSWORD }))
        .unwrap();
    let body: Value = r.body_mut().read_json().unwrap();
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let mut r = ureq::post(&format!("{url}/api/agents"))
        .header("authorization", &bearer)
        .send_json(json!({ "name": "busy" }))
        .unwrap();
    let body: Value = r.body_mut().read_json().unwrap();
    (
        body["agent"]["id"].as_u64().unwrap(),
        body["token"].as_str().unwrap().to_string(),
    )
}

#[test]
fn a_graceful_stop_during_ingest_leaves_nothing_to_replay() {
    // Three rounds: the stop lands at a different point of the sender's
    // requests and of the maintenance passes each time.
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let mut server = spawn_server(&data, port, &[]);
        let (id, token) = agent(&url);
        // An agent sending one report per request as fast as it is answered,
        // 5 s apart in its timestamps, from an hour ago on.
        let from = wall_ms() - 3_600_000;
        let accepted = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sender = {
            let (accepted, done, url) = (accepted.clone(), done.clone(), url.clone());
            std::thread::spawn(move || {
                let http = ureq::Agent::new_with_defaults();
                let mut n = 0i64;
                while !done.load(Ordering::Relaxed) && n < 700 {
                    let body = json!({ "reports": [report(from + n * 5_000, 20.0)] });
                    let sent = http
                        .post(&format!("{url}/api/ingest"))
                        .header("x-agent-token", &token)
                        .send_json(body);
                    match sent {
                        Ok(r) if r.status() == 200 => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            n += 1;
                        }
                        // The server is going away.
                        _ => break,
                    }
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while accepted.load(Ordering::Relaxed) < 100 + 50 * round {
            assert!(Instant::now() < deadline, "the sender got too few answers");
            std::thread::sleep(Duration::from_millis(2));
        }
        Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        let status = server.wait().unwrap();
        done.store(true, Ordering::Relaxed);
        sender.join().unwrap();
        assert!(status.success(), "round {round}: graceful stop {status:?}");
        let acked = accepted.load(Ordering::Relaxed) as usize;

        let engine = Engine::open(
            &data.join("tsdb"),
            EngineConfig::default(),
            Arc::new(ManualClock::new(wall_ms())),
        )
        .unwrap();
        assert_eq!(
            engine.journal_batches_replayed(),
            0,
            "round {round}: the journal held batches after a graceful stop ({acked} reports acknowledged)"
        );
        // Every window, the open one too, was sealed into blocks.
        assert_eq!(
            engine.stats().head_bytes,
            0,
            "round {round}: head rows left after a graceful stop"
        );
        let res = engine
            .query(&QueryRequest {
                agent: id,
                metrics: vec!["cpu.total_pct".into()],
                start_ms: from,
                stop_ms: wall_ms(),
                label_filter: None,
                tier: Some(Tier::Raw5s),
                interval_ms: None,
                max_points: 0,
            })
            .unwrap();
        let points: usize = res.series.iter().map(|s| s.points.len()).sum();
        assert!(
            points >= acked,
            "round {round}: {points} stored of {acked} acknowledged"
        );
    }
}
