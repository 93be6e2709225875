//! Starting the server under test, shared by the `http`, `startup` and
//! `soak` benchmarks (each includes this file with `#[path]`).

// Each benchmark uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Spawns the server on `listen` with `data_dir` and `extra` arguments:
/// this build's binary, or another build (a "before" of a before/after
/// comparison) named by `STATUSMONITOR_BENCH_SERVER`. It logs at `warn`
/// unless `STATUSMONITOR_LOG` says otherwise (then its output is shown).
pub fn spawn_server(listen: &str, data_dir: &Path, extra: &[&str]) -> Child {
    let bin = std::env::var("STATUSMONITOR_BENCH_SERVER")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_statusmonitor").to_string());
    let log = std::env::var("STATUSMONITOR_LOG").ok();
    Command::new(bin)
        .args(["--listen", listen, "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("STATUSMONITOR_LOG", log.as_deref().unwrap_or("warn"))
        .stdout(if log.is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start statusmonitor")
}

/// Polls `GET {base}/api/health` every `poll` until it answers; panics after
/// `max`. Returns when it answered.
pub fn wait_healthy(base: &str, max: Duration, poll: Duration) -> Instant {
    let url = format!("{base}/api/health");
    let start = Instant::now();
    while ureq::get(&url).call().is_err() {
        assert!(
            start.elapsed() < max,
            "server at {base} did not answer in {max:?}"
        );
        std::thread::sleep(poll);
    }
    Instant::now()
}
