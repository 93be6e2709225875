//! The shipped unit passes `systemd-analyze verify` (where systemd is
//! installed: Debian package `systemd`), with this build's binary in ExecStart.

use std::path::Path;
use std::process::Command;

#[test]
fn the_agent_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
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
