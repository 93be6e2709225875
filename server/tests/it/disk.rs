//! A full disk, for real: the data directory on a small tmpfs that the test
//! mounts (root only; CI runs as root), filled to the last byte. Ingest
//! answers 507 meanwhile, `/api/health` says `degraded`, reads go on, and
//! once space is freed ingest works again without a restart; after a
//! restart every acknowledged report is there.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use server::config::ServeArgs;

use crate::common::{Reply, Session, T0, TestApp, cpu_points, report};

/// The tmpfs, unmounted (lazily, so open files do not stop it) on drop.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// An app whose data directory is a fresh tmpfs of `size_mib`, or `None`
/// (with a message) where mounting is not allowed.
fn app_on_tmpfs(size_mib: u64, args: ServeArgs) -> Option<(TestApp, Tmpfs)> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m,mode=0700")])
        .arg("tmpfs")
        .arg(dir.path())
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs (needs root): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let tmpfs = Tmpfs(dir.path().to_path_buf());
    let clock = std::sync::Arc::new(storage::clock::ManualClock::new(T0));
    let state = TestApp::open_state(dir.path(), args.clone(), clock.clone());
    Some((
        TestApp {
            dir,
            state,
            clock,
            args,
        },
        tmpfs,
    ))
}

fn free_bytes(dir: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(dir).unwrap();
    s.blocks_available() * s.fragment_size()
}

/// Writes a file until the file system has at most `leave` bytes free (0:
/// to the last byte); returns its path.
fn fill(dir: &Path, leave: u64) -> std::path::PathBuf {
    let path = dir.join("ballast");
    let mut f = std::fs::File::create(&path).unwrap();
    if leave > 0 {
        let mib = vec![7u8; 1 << 20];
        while free_bytes(dir) > leave {
            f.write_all(&mib).unwrap();
        }
        return path;
    }
    for chunk in [1 << 20, 4096, 1] {
        let bytes = vec![7u8; chunk];
        loop {
            if let Err(e) = f.write_all(&bytes) {
                assert_eq!(e.raw_os_error(), Some(28), "full, not {e}");
                break;
            }
        }
    }
    path
}

struct Reporter {
    token: String,
    next: i64,
    /// Timestamps of every acknowledged report.
    acked: Vec<i64>,
}

impl Reporter {
    /// Sends the next report; remembers it when acknowledged.
    async fn send(&mut self, app: &TestApp) -> Reply {
        let ts = T0 - 3_600_000 + self.next * 5_000;
        self.next += 1;
        let r = app
            .post(
                "/api/ingest",
                json!({ "reports": [report(ts, (self.next % 100) as f64)] }),
                &[("x-agent-token", &self.token)],
            )
            .await;
        if r.status == StatusCode::OK {
            self.acked.push(ts);
        }
        r
    }

    /// `stored` holds every acknowledged report. A refused one may be there
    /// too (its journal write got through before the failure, and the
    /// engine's recovery kept it; the agent sends it again anyway), but
    /// nothing that was never sent.
    fn check(&self, stored: &[i64]) {
        for ts in &self.acked {
            assert!(
                stored.contains(ts),
                "acknowledged report {ts} lost: {stored:?}"
            );
        }
        let sent = |ts: &i64| {
            (ts - (T0 - 3_600_000)) % 5_000 == 0 && *ts < T0 - 3_600_000 + self.next * 5_000
        };
        assert!(stored.iter().all(sent), "{stored:?}");
    }

    /// Sends until the answer is `want` (at most `within`); every answer
    /// on the way must be 200 or `want`.
    async fn until(&mut self, app: &TestApp, want: StatusCode, within: Duration) -> Reply {
        let deadline = Instant::now() + within;
        loop {
            let r = self.send(app).await;
            if r.status == want {
                return r;
            }
            assert!(
                r.status == StatusCode::OK || r.status == StatusCode::INSUFFICIENT_STORAGE,
                "{}: {}",
                r.status,
                r.text
            );
            assert!(
                Instant::now() < deadline,
                "no {want} within {within:?}: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn health(app: &TestApp) -> serde_json::Value {
    let r = app.get("/api/health", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    r.body
}

async fn stored(app: &TestApp, who: &Session, agent: u64) -> Vec<i64> {
    cpu_points(app, who, agent, "start=-2h&tier=5s&max_points=5000")
        .await
        .iter()
        .map(|p| p[0].as_i64().unwrap())
        .collect()
}

/// Fill (to `leave` bytes free), refuse, free, recover, restart: the whole
/// journey on one app. The refusal must mention `says`.
async fn full_disk_journey(min_free_bytes: u64, leave: u64, says: &str) {
    let args = ServeArgs {
        min_free_bytes: Some(min_free_bytes),
        ..Default::default()
    };
    let Some((mut app, tmpfs)) = app_on_tmpfs(64, args) else {
        return;
    };
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    let mut agent_side = Reporter {
        token,
        next: 0,
        acked: Vec::new(),
    };
    for _ in 0..20 {
        let r = agent_side.send(&app).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    let ballast = fill(app.dir.path(), leave);
    let refused = agent_side
        .until(
            &app,
            StatusCode::INSUFFICIENT_STORAGE,
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(refused.code(), "insufficient_storage", "{}", refused.text);
    assert!(refused.text.contains(says), "{}", refused.text);
    // Still refused, not a 500, however often the agent retries.
    for _ in 0..5 {
        let r = agent_side.send(&app).await;
        assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{}", r.text);
    }
    let h = health(&app).await;
    assert_eq!(h["status"], "degraded", "{h}");
    assert!(
        h["storage"]["status"].as_str().unwrap().contains("disk"),
        "{h}"
    );
    // Reads go on.
    assert_eq!(stored(&app, &alice, agent).await, agent_side.acked);

    std::fs::remove_file(ballast).unwrap();
    agent_side
        .until(&app, StatusCode::OK, Duration::from_secs(10))
        .await;
    for _ in 0..5 {
        let r = agent_side.send(&app).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while health(&app).await["status"] != "ok" {
        assert!(Instant::now() < deadline, "{}", health(&app).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent_side.check(&stored(&app, &alice, agent).await);

    app.restart();
    let alice = app.login("alice").await;
    agent_side.check(&stored(&app, &alice, agent).await);
    drop(app);
    drop(tmpfs);
}

/// `min_free_bytes` refuses ingest before fjall ever meets a full disk (4
/// MiB are left free, under the 8 MiB margin: the refusal comes from the
/// check, not from a failed write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_ingest_with_507_and_recovers_without_a_restart() {
    full_disk_journey(8 << 20, 4 << 20, "less than min_free_bytes (8 MiB)").await;
}

/// With no margin the engine's own write fails (ENOSPC; fjall poisons
/// itself): answered 507 as well, and the engine is reopened in process once
/// there is space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_fails_on_a_full_disk_is_recovered_by_reopening_the_engine() {
    full_disk_journey(
        0,
        0,
        "disk is full: a write of the time-series store failed",
    )
    .await;
}
