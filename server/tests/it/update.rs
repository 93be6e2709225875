//! Following the server's build with the real agent binary against the real
//! server binary (`--agent-binaries DIR`): `statusmonitor-agent update`
//! (what the systemd unit runs before each start with `auto_update` on),
//! and the running agent's restart after an update, with and without
//! systemd.
//!
//! The server carries a "newer build": this workspace's agent with one byte
//! more (still a runnable agent, with another SHA-256); the machine starts
//! with the agent as built ("older").

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::install::{Server, files_under, platform, served_agent, text};

/// The agent's "older" (as built) and "newer" (served) builds.
fn builds() -> (Vec<u8>, Vec<u8>) {
    let older = std::fs::read(served_agent()).unwrap();
    let mut newer = older.clone();
    newer.push(0);
    (older, newer)
}

/// An agents directory serving `newer`, and the path of that file.
fn serving(newer: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join(format!("statusmonitor-agent-{}", platform()));
    std::fs::write(&file, newer).unwrap();
    (dir, file)
}

/// `bytes` installed as `bin` (mode 0755), as the installer leaves it.
fn install_as(bin: &Path, bytes: &[u8]) {
    std::fs::write(bin, bytes).unwrap();
    std::fs::set_permissions(bin, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `bin update` with `args`, reporting to `server`, no config file.
fn update(bin: &Path, server: &Server, work: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin)
        .arg("update")
        .args(["--server", &server.url, "--config"])
        .arg(work.join("none.toml"))
        .args(args)
        .env_remove("STATUSMONITOR_AGENT_AUTO_UPDATE")
        .output()
        .expect("run the agent")
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Polls `done` every 50 ms for at most `limit`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The exit status of `child` within `limit`.
fn exit_of(child: &mut Child, limit: Duration) -> ExitStatus {
    let mut status = None;
    wait_for("the agent to exit", limit, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

/// Whether process `pid` now runs the file at `bin` (its executable is
/// that inode, not the replaced one).
fn runs(pid: u32, bin: &Path) -> bool {
    std::fs::metadata(format!("/proc/{pid}/exe")).is_ok_and(|m| m.ino() == inode(bin))
}

#[test]
fn the_update_command_replaces_the_binary_refuses_a_mismatch_and_is_a_no_op_when_current() {
    let (older, newer) = builds();
    let (agents, served) = serving(&newer);
    let server = Server::start(agents.path());
    let work = tempfile::tempdir().unwrap();
    let bin_dir = work.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let bin = bin_dir.join("statusmonitor-agent");
    install_as(&bin, &older);

    // `--if-auto-update` without auto_update (the unit's pre-start on a
    // machine that did not opt in): nothing asked, nothing changed.
    let out = update(&bin, &server, work.path(), &["--if-auto-update"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("auto_update is off"), "{}", text(&out));
    assert_eq!(std::fs::read(&bin).unwrap(), older);

    // Another build on the server: downloaded, checked, renamed over the
    // binary (a new inode, mode 0755, no temporary file left).
    let before = inode(&bin);
    let out = update(&bin, &server, work.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("replaced"), "{}", text(&out));
    assert_eq!(std::fs::read(&bin).unwrap(), newer);
    assert_ne!(inode(&bin), before, "replaced by a rename, not rewritten");
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(files_under(&bin_dir), std::slice::from_ref(&bin));

    // The new binary is the server's build: exit 0, the file untouched.
    let current = inode(&bin);
    let out = update(&bin, &server, work.path(), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already"), "{}", text(&out));
    assert_eq!(inode(&bin), current);

    // The served file no longer matches the SHA-256 the server lists: the
    // update is refused, naming the mismatch, and the binary stays as it was.
    install_as(&bin, &older);
    let mut tampered = newer.clone();
    tampered[100] ^= 0xff;
    std::fs::write(&served, &tampered).unwrap();
    let out = update(&bin, &server, work.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("checksum mismatch"), "{}", text(&out));
    assert_eq!(std::fs::read(&bin).unwrap(), older);
    assert_eq!(
        files_under(&bin_dir),
        std::slice::from_ref(&bin),
        "no temporary file left"
    );
}

/// The running agent with `auto_update` finds the server's newer build.
/// Without systemd it replaces itself and executes the new build in its
/// place (same pid). Under systemd (`INVOCATION_ID`) it leaves its binary
/// alone and exits 75, which the unit's `Restart=on-failure` restarts
/// after its pre-start (`update --if-auto-update`, with full privileges)
/// installed the build: played here step by step.
#[test]
fn auto_update_restarts_into_the_new_build_with_and_without_systemd() {
    let (older, newer) = builds();
    let (agents, _served) = serving(&newer);
    let server = Server::start(agents.path());
    let (_, token) = server.create_agent("updating");
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("statusmonitor-agent");
    // Each start logs to its own file: the update checks are the barriers.
    let agent = |systemd: bool, log: &str| {
        let log = std::fs::File::create(work.path().join(log)).unwrap();
        let mut cmd = Command::new(&bin);
        cmd.args(["run", "--server", &server.url, "--token", &token])
            .arg("--config")
            .arg(work.path().join("none.toml"))
            .arg("--spool-dir")
            .arg(work.path().join("spool"))
            .args(["--interval", "1s", "--auto-update", "--update-every", "1s"])
            .env("STATUSMONITOR_AGENT_LOG", "warn,agent::run=debug")
            .stdout(Stdio::null())
            .stderr(log);
        if systemd {
            cmd.env("INVOCATION_ID", "0123456789abcdef");
        } else {
            cmd.env_remove("INVOCATION_ID");
        }
        cmd.spawn().expect("start the agent")
    };
    let log = |name: &str| std::fs::read_to_string(work.path().join(name)).unwrap_or_default();

    // Without systemd: the same process goes on as the new build.
    install_as(&bin, &older);
    let mut child = agent(false, "plain.log");
    wait_for(
        "the agent to run the new build",
        Duration::from_secs(60),
        || std::fs::read(&bin).unwrap() == newer && runs(child.id(), &bin),
    );
    assert!(child.try_wait().unwrap().is_none(), "{}", log("plain.log"));
    child.kill().unwrap();
    child.wait().unwrap();

    // Under systemd: the check at start only warns (the pre-start did not
    // install it); the next one, a second later, exits 75.
    install_as(&bin, &older);
    let mut child = agent(true, "first.log");
    let status = exit_of(&mut child, Duration::from_secs(60));
    let first = log("first.log");
    assert_eq!(
        status.code(),
        Some(75),
        "the code Restart= acts on: {first}"
    );
    assert!(first.contains("did not install"), "{first}");
    assert_eq!(std::fs::read(&bin).unwrap(), older, "the unit installs it");
    // ExecStartPre=-+… update --if-auto-update, with the unit's environment.
    let out = Command::new(&bin)
        .args(["update", "--if-auto-update", "--config"])
        .arg(work.path().join("none.toml"))
        .env("STATUSMONITOR_AGENT_SERVER", &server.url)
        .env("STATUSMONITOR_AGENT_AUTO_UPDATE", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&bin).unwrap(), newer);
    // ExecStart again: the new build runs, finds itself current at two
    // checks, and stays.
    let mut child = agent(true, "second.log");
    wait_for("two update checks", Duration::from_secs(60), || {
        log("second.log").matches("nothing to do").count() >= 2
    });
    assert!(runs(child.id(), &bin));
    assert!(child.try_wait().unwrap().is_none(), "{}", log("second.log"));
    child.kill().unwrap();
    child.wait().unwrap();
}
