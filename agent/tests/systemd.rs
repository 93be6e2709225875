//! The shipped unit passes `systemd-analyze verify` with this build's binary
//! in ExecStart. Needs systemd-analyze (`make setup-systemd`, Debian package
//! `systemd`); without it the test fails saying so.

use std::path::Path;
use std::process::Command;

#[test]
fn the_agent_unit_passes_systemd_analyze_verify() {
    // Not a skip: a missing tool must not pass for a verified unit.
    assert!(
        Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok(),
        "systemd-analyze is not installed: run `make setup-systemd` (Debian: apt-get install systemd)"
    );
    let unit = agent::service::unit(Path::new(env!("CARGO_BIN_EXE_statusmonitor-agent")));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statusmonitor-agent.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify only warns about unknown keys and bad values: any output is a failure.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}
