//! `run` against the fake server: spool while away, replay oldest first, stop on 401.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::cli::agent;
use crate::fake_server::FakeServer;

/// Starts `run` at 1 s with its own spool; stderr is captured.
fn start_agent(server: &str, token: &str, spool: &Path) -> Child {
    agent()
        .args([
            "run",
            "--interval",
            "1s",
            "--server",
            server,
            "--token",
            token,
            "--spool-dir",
        ])
        .arg(spool)
        .arg("--config")
        .arg(spool.join("none.toml"))
        // Debug level: the token must stay out of the logs even then.
        .env("STATUSMONITOR_AGENT_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Bytes of spooled records (segment files minus their 8-byte headers).
fn spooled_bytes(spool: &Path) -> u64 {
    std::fs::read_dir(spool)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
                .map(|e| e.metadata().map_or(0, |m| m.len().saturating_sub(8)))
                .sum()
        })
        .unwrap_or(0)
}

fn assert_strictly_increasing(ts: &[i64]) {
    assert!(
        ts.windows(2).all(|w| w[0] < w[1]),
        "not oldest first: {ts:?}"
    );
}

#[test]
fn server_down_spools_survives_a_crash_then_replays_oldest_first() {
    // A port nobody listens on: connection refused, like a server that is down.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}");
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_agent(&url, "tok-down", dir.path());

    let until = Instant::now() + Duration::from_secs(10);
    let mut sizes = Vec::new();
    while Instant::now() < until && sizes.len() < 3 {
        std::thread::sleep(Duration::from_millis(1100));
        sizes.push(spooled_bytes(dir.path()));
    }
    assert!(
        sizes.windows(2).all(|w| w[0] < w[1]) && sizes[0] > 0,
        "spool grows while down: {sizes:?}"
    );

    // The agent crashes (SIGKILL) and is started again on the same spool.
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut child = start_agent(&url, "tok-down", dir.path());
    std::thread::sleep(Duration::from_millis(1500));

    // The server comes back on the same port.
    let server = FakeServer::on(TcpListener::bind(addr).unwrap(), 200);
    server.wait_for(Duration::from_secs(15), "the spool to be replayed", |s| {
        s.accepted.iter().map(|b| b.reports.len()).sum::<usize>() >= 6
    });
    let ts = server.accepted_reports();
    assert_strictly_increasing(&ts);
    let before_crash = ts.iter().filter(|&&t| t < killed_at_ms).count();
    assert!(
        before_crash >= 3,
        "reports spooled before the crash are delivered: {ts:?}"
    );
    {
        let s = server.state.lock().unwrap();
        assert!(
            s.accepted[0].reports.len() >= 3,
            "the backlog goes in one batch"
        );
        assert!(
            s.accepted[0].host.is_some(),
            "host facts in the first batch"
        );
        assert!(s.tokens.iter().all(|t| t == "tok-down"));
    }
    // Steady grid: timestamps are whole seconds; none lost while down.
    assert!(ts.iter().all(|t| t % 1000 == 0), "{ts:?}");
    let before: Vec<i64> = ts.iter().copied().filter(|&t| t < killed_at_ms).collect();
    assert!(before.windows(2).all(|w| w[1] - w[0] == 1000), "{ts:?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn server_errors_spool_then_401_stops_with_a_clear_message() {
    let server = FakeServer::start(500);
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_agent(&server.url, "tok-secret-401", dir.path());
    server.wait_for(Duration::from_secs(10), "a 500 to be answered", |s| {
        s.attempts >= 2
    });
    assert!(server.accepted_reports().is_empty());
    server.set_status(200);
    server.wait_for(Duration::from_secs(15), "replay after 500s", |s| {
        s.accepted.iter().map(|b| b.reports.len()).sum::<usize>() >= 3
    });
    assert_strictly_increasing(&server.accepted_reports());
    // Only the first batch carries host facts; they have not changed since.
    {
        let s = server.state.lock().unwrap();
        assert!(s.accepted[0].host.is_some());
        assert!(s.accepted[1..].iter().all(|b| b.host.is_none()));
    }

    server.set_status(401);
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < until, "agent did not stop on 401");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("token wrong, expired or revoked: regenerate it in the dashboard"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("tok-secret-401"),
        "the token is never logged"
    );
}

#[test]
fn refused_report_is_dropped_not_retried_forever() {
    let server = FakeServer::start(422);
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_agent(&server.url, "tok", dir.path());
    server.wait_for(Duration::from_secs(10), "two refusals", |s| s.attempts >= 2);
    server.set_status(200);
    server.wait_for(Duration::from_secs(10), "later reports accepted", |s| {
        !s.accepted.is_empty()
    });
    let reports = |s: &crate::fake_server::State| -> usize {
        s.accepted.iter().map(|b| b.reports.len()).sum()
    };
    let (attempts_before, accepted_before) = {
        let s = server.state.lock().unwrap();
        (s.attempts, reports(&s))
    };
    server.wait_for(Duration::from_secs(10), "three more reports", |s| {
        reports(s) >= accepted_before + 3
    });
    let s = server.state.lock().unwrap();
    // One request per report (and at most one in flight): no retry storm of
    // the refused reports.
    let requests = s.attempts - attempts_before;
    let delivered = reports(&s) - accepted_before;
    assert!(
        requests <= delivered + 1,
        "{requests} requests for {delivered} reports"
    );
    drop(s);
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("fake says 422"));
}

#[test]
fn two_agents_started_together_do_not_retry_at_the_same_instants() {
    let server = FakeServer::start(503);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = start_agent(&server.url, "tok-a", da.path());
    let mut b = start_agent(&server.url, "tok-b", db.path());
    const TRIES: usize = 6;
    let count = |s: &crate::fake_server::State, tok: &str| {
        s.arrivals.iter().filter(|(t, _)| t == tok).count()
    };
    server.wait_for(Duration::from_secs(30), "six tries of each agent", |s| {
        count(s, "tok-a") >= TRIES && count(s, "tok-b") >= TRIES
    });
    for child in [&mut a, &mut b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let s = server.state.lock().unwrap();
    let gaps = |tok: &str| -> Vec<Duration> {
        let at: Vec<Instant> = s
            .arrivals
            .iter()
            .filter(|(t, _)| t == tok)
            .map(|(_, at)| *at)
            .take(TRIES)
            .collect();
        at.windows(2).map(|w| w[1] - w[0]).collect()
    };
    let (ga, gb) = (gaps("tok-a"), gaps("tok-b"));
    // Without jitter both wait exactly 1, 2, 4, 8 s after their first
    // failure; with full jitter two equal waits (within 5 ms) are rare.
    let same = ga
        .iter()
        .zip(&gb)
        .filter(|(x, y)| x.abs_diff(**y) < Duration::from_millis(5))
        .count();
    assert!(same <= 1, "retries in lockstep: {ga:?} and {gb:?}");
    // The first retry comes within one interval, none later than two.
    for g in [&ga, &gb] {
        assert!(g[0] <= Duration::from_millis(1_100), "{g:?}");
        assert!(
            g.iter().all(|d| *d <= Duration::from_millis(2_100)),
            "{g:?}"
        );
    }
}
