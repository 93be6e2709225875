//! The command-line surface: `once`, `setup`, `install-service --dry-run`, `simulate`.

use std::io::Write;
use std::process::{Command, Stdio};

use storage::model::wire::IngestBatch;

use crate::fake_server::FakeServer;

pub fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_statusmonitor-agent"));
    // Nothing from the developer's environment or config may leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("STATUSMONITOR_AGENT_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn once_prints_an_ingest_batch_with_host_and_one_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent()
        .args(["once", "--config"])
        .arg(dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let batch: IngestBatch = serde_json::from_slice(&out.stdout).expect("stdout is an IngestBatch");
    let host = batch.host.expect("host facts");
    assert!(!host.hostname.is_empty());
    assert_eq!(batch.reports.len(), 1);
    let r = &batch.reports[0];
    assert!(r.ts_ms > 1_700_000_000_000);
    if cfg!(target_os = "linux") {
        let cpu = r.cpu.as_ref().expect("cpu on linux");
        assert_eq!(cpu.cores_pct.len() as u32, host.cores.unwrap());
        assert!(r.memory.is_some() && r.uptime_s.is_some() && r.load.is_some());
        assert!(
            r.networks.iter().all(|n| n.iface != "lo"),
            "loopback skipped by default"
        );
    }
}

#[test]
fn setup_checks_the_server_and_writes_a_private_config() {
    let server = FakeServer::start(200);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sub/agent.toml");
    let mut child = agent()
        .arg("setup")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write!(
        child.stdin.take().unwrap(),
        "not a url\n{}/\ns3cret-token\n",
        server.url
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("must start with http"),
        "a bad answer is explained: {stderr}"
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!("server = \"{}\"", server.url)),
        "{text}"
    );
    assert!(text.contains("token = \"s3cret-token\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "config holds the token: owner only");
    }
    assert_eq!(
        server.state.lock().unwrap().tokens,
        vec!["s3cret-token".to_string()]
    );
}

#[test]
fn setup_refuses_a_rejected_token() {
    let server = FakeServer::start(401);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let out = agent()
        .args([
            "setup",
            "--server",
            &server.url,
            "--token",
            "bad",
            "--config",
        ])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("regenerate it in the dashboard"));
    assert!(!config.exists());
}

#[test]
fn install_service_dry_run_prints_a_hardened_unit_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent()
        .args([
            "install-service",
            "--dry-run",
            "--binary",
            "/usr/local/bin/statusmonitor-agent",
        ])
        .args([
            "--server",
            "http://monitor:8420",
            "--token",
            "topsecret",
            "--config",
        ])
        .arg(dir.path().join("none.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=statusmonitor-agent",
        "Restart=on-failure",
    ] {
        assert!(stdout.contains(line), "{line} missing:\n{stdout}");
    }
    assert!(stdout.contains("STATUSMONITOR_AGENT_SERVER=http://monitor:8420"));
    assert!(
        !stdout.contains("topsecret"),
        "dry run must not print the token"
    );
}

#[test]
fn simulate_plays_one_agent_per_token_and_prints_a_summary() {
    let server = FakeServer::start(200);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, "sim-a\nsim-b\n\n# comment\nsim-c\n").unwrap();
    let out = agent()
        .args([
            "simulate",
            "--server",
            &server.url,
            "--interval",
            "200ms",
            "--duration",
            "1s",
        ])
        .args(["--concurrency", "2", "--tokens-file"])
        .arg(&tokens)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("reports/s") && stdout.contains("p99"),
        "{stdout}"
    );
    let s = server.state.lock().unwrap();
    for t in ["sim-a", "sim-b", "sim-c"] {
        assert!(
            s.tokens.iter().filter(|x| *x == t).count() >= 3,
            "{t}: {:?}",
            s.tokens
        );
    }
    let hosts: Vec<_> = s.accepted.iter().filter_map(|b| b.host.as_ref()).collect();
    assert_eq!(hosts.len(), 3, "host facts once per synthetic agent");
    assert!(
        s.accepted
            .iter()
            .all(|b| b.reports[0].cpu.as_ref().unwrap().cores_pct.len() == 8)
    );
}
