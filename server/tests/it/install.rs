//! The agent downloads and `/install.sh`: the endpoints on the app, and the
//! script run for real (`sh`, `curl`, `sha256sum`) against the real server
//! binary into a temporary `--prefix`, installing the real agent binary,
//! which then reports to that server.
//!
//! The agent binary is the one cargo builds for this workspace
//! (`target/<profile>/statusmonitor-agent`; `cargo test --workspace` builds
//! it, and [`agent_binary`] asks cargo for it when it is missing). The server serves
//! it with `--agent-binaries DIR`, as a server built without the static
//! agents can.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};
use server::config::ServeArgs;
use sha2::{Digest, Sha256};

use crate::common::TestApp;

const BIN: &str = env!("CARGO_BIN_EXE_statusmonitor");
const PASSWORD: &str = "correct horse battery";

/// This machine's platform as the server names it.
pub(crate) fn platform() -> String {
    format!("linux-{}", std::env::consts::ARCH)
}

/// The agent binary of this workspace: the one `cargo test --workspace`
/// built, or, when there is none yet (`cargo test -p server`), built here.
/// Not rebuilt when it exists: cargo would build it for the agent's features
/// alone, different from the workspace's, and the next workspace build would
/// build it back.
fn agent_binary() -> &'static Path {
    static AGENT: OnceLock<PathBuf> = OnceLock::new();
    AGENT.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/it-<hash>
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let bin = profile_dir.join("statusmonitor-agent");
        if bin.is_file() {
            return bin;
        }
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--quiet",
                "-p",
                "agent",
                "--bin",
                "statusmonitor-agent",
            ])
            .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("run cargo to build the agent");
        assert!(status.success(), "cargo build -p agent failed");
        assert!(bin.is_file(), "no agent binary at {}", bin.display());
        bin
    })
}

/// [`agent_binary`] without its symbols where binutils' `strip` is there
/// (11 MB instead of 28: the tests download and hash it a dozen times).
pub(crate) fn served_agent() -> &'static Path {
    static STRIPPED: OnceLock<PathBuf> = OnceLock::new();
    STRIPPED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join("statusmonitor-agent-stripped");
        let tmp = dir.join(format!(
            "statusmonitor-agent-stripped.{}",
            std::process::id()
        ));
        let stripped = Command::new("strip")
            .arg("-o")
            .arg(&tmp)
            .arg(agent_binary())
            .status()
            .is_ok_and(|s| s.success())
            && std::fs::rename(&tmp, &out).is_ok();
        if stripped {
            out
        } else {
            agent_binary().to_path_buf()
        }
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every file (not directory) under `dir`.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

// ---- the endpoints, on the app ----

#[tokio::test]
async fn agent_downloads_carry_their_sha256_and_the_sums_list_them() {
    let bins = tempfile::tempdir().unwrap();
    std::fs::write(
        bins.path().join("statusmonitor-agent-linux-x86_64"),
        b"x86 agent",
    )
    .unwrap();
    std::fs::write(
        bins.path().join("statusmonitor-agent-linux-aarch64"),
        b"arm agent",
    )
    .unwrap();
    std::fs::write(bins.path().join("notes.txt"), b"not an agent").unwrap();
    let app = TestApp::with_args(ServeArgs {
        agent_binaries: Some(bins.path().to_path_buf()),
        ..Default::default()
    });

    let r = app.get("/download/agent/linux-x86_64", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.text, "x86 agent");
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    assert_eq!(
        r.headers["x-checksum-sha256"].to_str().unwrap(),
        sha256_hex(b"x86 agent")
    );
    assert!(
        r.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("statusmonitor-agent-linux-x86_64")
    );

    let r = app.get("/download/agent/SHA256SUMS", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.text,
        format!(
            "{}  statusmonitor-agent-linux-aarch64\n{}  statusmonitor-agent-linux-x86_64\n",
            sha256_hex(b"arm agent"),
            sha256_hex(b"x86 agent")
        )
    );

    for path in [
        "/download/agent/linux-riscv64",
        "/download/agent/notes.txt",
        "/download/agent/..%2F..%2Fetc%2Fpasswd",
    ] {
        let r = app.get(path, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_eq!(r.code(), "not_found");
        let msg = r.body["error"].as_str().unwrap();
        assert!(
            msg.contains("it has: linux-aarch64, linux-x86_64"),
            "{path}: {msg}"
        );
    }
}

#[tokio::test]
async fn a_server_without_agents_says_how_to_build_them() {
    let empty = tempfile::tempdir().unwrap();
    let app = TestApp::with_args(ServeArgs {
        agent_binaries: Some(empty.path().to_path_buf()),
        ..Default::default()
    });
    for path in ["/download/agent/SHA256SUMS", "/download/agent/linux-x86_64"] {
        let r = app.get(path, &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
        assert_eq!(r.code(), "not_found");
        assert!(
            r.body["error"].as_str().unwrap().contains("has none"),
            "{}",
            r.text
        );
    }
    // The built-in set: whatever this build carries, a 404 names `make build`.
    let app = TestApp::new();
    let r = app.get("/download/agent/SHA256SUMS", &[]).await;
    if r.status == StatusCode::NOT_FOUND {
        assert!(r.text.contains("make build"), "{}", r.text);
    } else {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("statusmonitor-agent-linux-"), "{}", r.text);
    }
}

#[tokio::test]
async fn the_script_names_the_public_url_or_the_request_s_host() {
    let app = TestApp::new();
    let r = app
        .get(
            "/install.sh",
            &[("host", "nas.lan:8420"), ("x-forwarded-proto", "https")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.starts_with("#!/bin/sh\n"));
    assert!(
        r.text.contains("SERVER='https://nas.lan:8420'"),
        "{}",
        r.text
    );
    let r = app.get("/install.sh", &[("host", "a'$(id)")]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.code(), "bad_request");

    let app = TestApp::with_args(ServeArgs {
        public_url: Some("https://monitor.example/".into()),
        ..Default::default()
    });
    let r = app.get("/install.sh", &[("host", "monitor.example")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("SERVER='https://monitor.example'"),
        "{}",
        r.text
    );
    // The token panel's install line names the public URL too.
    let alice = app.register_and_login("alice").await;
    let created = app
        .call_as(
            &alice,
            axum::http::Method::POST,
            "/api/agents",
            Some(json!({ "name": "nas" })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["public_url"], "https://monitor.example");
    // Without --public-url the dashboard uses the browser's origin.
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let created = app
        .call_as(
            &alice,
            axum::http::Method::POST,
            "/api/agents",
            Some(json!({ "name": "nas" })),
        )
        .await;
    assert!(created.body.get("public_url").is_none(), "{}", created.text);
}

// ---- the script, run for real ----

#[test]
fn the_script_passes_shellcheck() {
    let script = server::download::install::render("http://127.0.0.1:8420");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("install.sh");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("shellcheck")
        .args(["--shell=sh", "--severity=style"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("shellcheck is not installed ({e}): run `make setup-shellcheck` (Debian: apt-get install shellcheck)")
        });
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_unit_the_script_installs_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("p");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    let bin = prefix.join("bin/statusmonitor-agent");
    std::fs::copy(served_agent(), &bin).unwrap();
    let script = dir.path().join("install.sh");
    std::fs::write(
        &script,
        server::download::install::render("http://127.0.0.1:8420"),
    )
    .unwrap();
    let out = sh(
        &script,
        &["--prefix", prefix.to_str().unwrap(), "--print-unit"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let unit = String::from_utf8(out.stdout).unwrap();
    for line in [
        format!(
            "ExecStart={} run --spool-dir /var/lib/statusmonitor-agent/spool",
            bin.display()
        ),
        format!(
            "EnvironmentFile={}/etc/statusmonitor-agent/agent.env",
            prefix.display()
        ),
        "DynamicUser=yes".to_string(),
        "ProtectSystem=strict".to_string(),
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line} in\n{unit}");
    }
    let path = dir.path().join("statusmonitor-agent.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (make setup-systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

/// A real server on a loopback port, serving `agents_dir`.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    bearer: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(crate) fn start(agents_dir: &Path) -> Server {
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(BIN)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data.path())
            .arg("--agent-binaries")
            .arg(agents_dir)
            .env("STATUSMONITOR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{url}/api/health")).call().is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let account = json!({ "username": "alice", "password": PASSWORD });
        ureq::post(&format!("{url}/api/auth/register"))
            .send_json(&account)
            .unwrap();
        let login: Value = ureq::post(&format!("{url}/api/auth/token"))
            .send_json(&account)
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        Server {
            child,
            bearer: format!("Bearer {}", login["access_token"].as_str().unwrap()),
            url,
            _data: data,
        }
    }

    /// A new agent: (id, token).
    pub(crate) fn create_agent(&self, name: &str) -> (u64, String) {
        let created: Value = ureq::post(&format!("{}/api/agents", self.url))
            .header("authorization", &self.bearer)
            .send_json(json!({ "name": name }))
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        (
            created["agent"]["id"].as_u64().unwrap(),
            created["token"].as_str().unwrap().to_string(),
        )
    }

    fn agent(&self, id: u64) -> Value {
        ureq::get(&format!("{}/api/agents/{id}", self.url))
            .header("authorization", &self.bearer)
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }

    /// `/install.sh` as `curl -fsSL` gets it, saved to `dir/install.sh`.
    fn script(&self, dir: &Path) -> PathBuf {
        let path = dir.join("install.sh");
        let out = Command::new("curl")
            .args(["-fsSL", &format!("{}/install.sh", self.url), "-o"])
            .arg(&path)
            .output()
            .expect("curl");
        assert!(out.status.success(), "{}", text(&out));
        path
    }
}

fn sh(script: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg(script)
        .args(args)
        .output()
        .expect("run sh")
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A directory serving this machine's agent binary.
fn agents_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        served_agent(),
        dir.path()
            .join(format!("statusmonitor-agent-{}", platform())),
    )
    .unwrap();
    dir
}

#[test]
fn the_script_installs_an_agent_that_reports_upgrades_it_and_uninstalls_it() {
    let agents = agents_dir();
    let server = Server::start(agents.path());
    let work = tempfile::tempdir().unwrap();
    let script = server.script(work.path());
    assert!(
        std::fs::read_to_string(&script)
            .unwrap()
            .contains(&format!("SERVER='{}'", server.url)),
        "the script names the server it came from"
    );
    let prefix = work.path().join("prefix");
    let p = prefix.to_str().unwrap();
    let (id, token) = server.create_agent("installed");

    // A token of the wrong form: refused, nothing installed.
    let out = sh(
        &script,
        &["--prefix", p, "--no-systemd", "--token", "smr_0123abcd"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be an agent token starting with sma_"),
        "{}",
        text(&out)
    );
    assert!(files_under(&prefix).is_empty());

    // Install.
    let out = sh(&script, &["--prefix", p, "--no-systemd", "--token", &token]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let bin = prefix.join("bin/statusmonitor-agent");
    let served = std::fs::read(served_agent()).unwrap();
    assert_eq!(
        sha256_hex(&std::fs::read(&bin).unwrap()),
        sha256_hex(&served),
        "the installed binary is the served one"
    );
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let conf = prefix.join("etc/statusmonitor-agent/agent.env");
    assert_eq!(
        std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
        0o600,
        "the config holds the token: root only"
    );
    let config = std::fs::read_to_string(&conf).unwrap();
    assert!(config.contains(&format!("STATUSMONITOR_AGENT_SERVER={}\n", server.url)));
    assert!(config.contains(&format!("STATUSMONITOR_AGENT_TOKEN={token}\n")));
    assert!(
        !stdout.contains(&token),
        "the token is not printed: {stdout}"
    );

    // The command the script prints runs the agent, which reports and
    // activates its token.
    let run = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Run the agent with:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no run command in {stdout}"))
        .trim()
        .strip_prefix("sh -c '")
        .and_then(|c| c.strip_suffix('\''))
        .unwrap_or_else(|| panic!("odd run command in {stdout}"))
        .to_string();
    let mut agent = Command::new("sh")
        .args(["-c", &run])
        .env("STATUSMONITOR_AGENT_INTERVAL", "1s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = server.agent(id);
        if a["online"] == true && a["token_state"] == "active" {
            break;
        }
        if Instant::now() > deadline {
            let _ = agent.kill();
            panic!("the installed agent did not come online: {a}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.kill().unwrap();
    agent.wait().unwrap();

    // Re-running upgrades in place and keeps the config: without a token
    // the file is untouched; with one, only server and token lines change.
    std::fs::write(&conf, format!("{config}STATUSMONITOR_AGENT_INTERVAL=2s\n")).unwrap();
    let before = std::fs::read(&conf).unwrap();
    let out = sh(&script, &["--prefix", p, "--no-systemd"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept the config"));
    assert_eq!(std::fs::read(&conf).unwrap(), before);
    let out = sh(&script, &["--prefix", p, "--no-systemd", "--token", &token]);
    assert!(out.status.success(), "{}", text(&out));
    let after = std::fs::read_to_string(&conf).unwrap();
    assert!(
        after.contains("STATUSMONITOR_AGENT_INTERVAL=2s\n"),
        "{after}"
    );
    assert_eq!(
        after.matches("STATUSMONITOR_AGENT_TOKEN=").count(),
        1,
        "{after}"
    );
    assert_eq!(
        sha256_hex(&std::fs::read(&bin).unwrap()),
        sha256_hex(&served)
    );
    // No temporary file left behind.
    let temporary: Vec<_> = files_under(&prefix)
        .into_iter()
        .filter(|f| f.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(temporary.is_empty(), "{temporary:?}");

    // The agent's spool is there (it ran); --uninstall --purge removes all.
    assert!(prefix.join("var/lib/statusmonitor-agent/spool").is_dir());
    let out = sh(&script, &["--prefix", p, "--uninstall", "--purge"]);
    assert!(out.status.success(), "{}", text(&out));
    let left: Vec<_> = std::fs::read_dir(&prefix)
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert!(
        !prefix.exists() || left == [0],
        "left behind: {:?}",
        files_under(&prefix)
    );
}

#[test]
fn the_script_refuses_a_tampered_agent_and_an_unknown_architecture() {
    let agents = agents_dir();
    let server = Server::start(agents.path());
    let work = tempfile::tempdir().unwrap();
    let script = server.script(work.path());
    let prefix = work.path().join("prefix");
    let p = prefix.to_str().unwrap();
    let (_, token) = server.create_agent("tampered");

    // An architecture the server has no agent for: named, with what it has.
    let out = sh(
        &script,
        &[
            "--prefix",
            p,
            "--no-systemd",
            "--token",
            &token,
            "--arch",
            "riscv64",
        ],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "unknown architecture linux-riscv64: this server has agents for: {}",
            platform()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        files_under(&prefix).is_empty(),
        "{:?}",
        files_under(&prefix)
    );

    // The file changes under the running server: its download no longer
    // matches the checksum the server lists, and the script refuses it.
    let served = agents
        .path()
        .join(format!("statusmonitor-agent-{}", platform()));
    let mut bytes = std::fs::read(&served).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&served, bytes).unwrap();
    let out = sh(&script, &["--prefix", p, "--no-systemd", "--token", &token]);
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checksum mismatch") && stderr.contains("nothing was installed"),
        "{stderr}"
    );
    assert!(
        files_under(&prefix).is_empty(),
        "{:?}",
        files_under(&prefix)
    );
}

// ---- upgrades: which version each agent runs ----

#[tokio::test]
async fn the_agents_list_marks_an_agent_older_than_the_server() {
    use axum::http::Method;
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (old, old_token) = app.create_agent(&alice, "old").await;
    let (new, new_token) = app.create_agent(&alice, "new").await;
    let (silent, _) = app.create_agent(&alice, "silent").await;
    let batch = json!({ "reports": [crate::common::report(crate::common::T0, 1.0)] });
    let current = format!("statusmonitor-agent/{}", env!("CARGO_PKG_VERSION"));
    for (token, user_agent) in [
        (&old_token, "statusmonitor-agent/0.0.1"),
        (&new_token, current.as_str()),
    ] {
        let r = app
            .post(
                "/api/ingest",
                batch.clone(),
                &[("x-agent-token", token), ("user-agent", user_agent)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let list = app.call_as(&alice, Method::GET, "/api/agents", None).await;
    let find = |id: u64| {
        list.body
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(find(old)["agent_version"], "0.0.1");
    assert_eq!(find(old)["outdated"], true);
    assert_eq!(find(new)["agent_version"], env!("CARGO_PKG_VERSION"));
    assert!(find(new).get("outdated").is_none(), "{}", find(new));
    assert!(find(silent).get("agent_version").is_none());
    let one = app
        .call_as(&alice, Method::GET, &format!("/api/agents/{old}"), None)
        .await;
    assert_eq!(one.body["outdated"], true, "{}", one.text);
    // The upgraded agent's next report clears the mark.
    let r = app
        .post(
            "/api/ingest",
            json!({ "reports": [crate::common::report(crate::common::T0 + 5_000, 1.0)] }),
            &[("x-agent-token", &old_token), ("user-agent", &current)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let one = app
        .call_as(&alice, Method::GET, &format!("/api/agents/{old}"), None)
        .await;
    assert!(one.body.get("outdated").is_none(), "{}", one.text);
}

/// `auto_update = true`: the real agent library against the real app on a
/// loopback port, replacing a copy of the agent that differs from the
/// server's build.
#[tokio::test(flavor = "multi_thread")]
async fn auto_update_replaces_the_binary_only_with_a_verified_download() {
    let agents = agents_dir();
    let app = TestApp::with_args(ServeArgs {
        agent_binaries: Some(agents.path().to_path_buf()),
        ..Default::default()
    });
    let addr = app.serve().await;
    let work = tempfile::tempdir().unwrap();
    let exe = work.path().join("statusmonitor-agent");
    // An "older build": the served one with a byte more.
    let served = std::fs::read(served_agent()).unwrap();
    let mut older = served.clone();
    older.push(0);
    std::fs::write(&exe, &older).unwrap();
    let args = agent::config::AgentArgs {
        config: Some(work.path().join("none.toml")),
        server: Some(format!("http://{addr}")),
        auto_update: Some(true),
        ..Default::default()
    };
    let config = agent::config::Config::resolve(&args).unwrap();
    assert!(config.auto_update);
    let check = {
        let (config, exe) = (config.clone(), exe.clone());
        move || {
            let (config, exe) = (config.clone(), exe.clone());
            async move {
                tokio::task::spawn_blocking(move || agent::update::update(&config, &exe))
                    .await
                    .unwrap()
            }
        }
    };

    let outcome = check().await.unwrap();
    assert_eq!(
        outcome,
        agent::update::Outcome::Replaced {
            path: exe.clone(),
            sha256: sha256_hex(&served)
        }
    );
    assert_eq!(std::fs::read(&exe).unwrap(), served);
    assert_eq!(
        std::fs::metadata(&exe).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(check().await.unwrap(), agent::update::Outcome::Current);

    // A download that does not match the listed SHA-256 (the file changed
    // under the server) leaves the running binary as it was.
    std::fs::write(&exe, &older).unwrap();
    let file = agents
        .path()
        .join(format!("statusmonitor-agent-{}", platform()));
    let mut tampered = served.clone();
    tampered[100] ^= 0xff;
    std::fs::write(&file, tampered).unwrap();
    let e = check().await.unwrap_err();
    assert!(e.contains("checksum mismatch"), "{e}");
    assert_eq!(std::fs::read(&exe).unwrap(), older);
    assert_eq!(files_under(work.path()), [exe], "no temporary file left");
}

// ---- the container image, in a real engine ----

/// The static agent `make agents` built for this machine, if it did.
fn static_agent() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/agents")
        .join(format!("statusmonitor-agent-{}", platform()));
    p.is_file().then_some(p)
}

fn podman(args: &[&str]) -> Result<String, String> {
    let out = Command::new("podman")
        .args(args)
        .output()
        .map_err(|e| format!("podman: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// `/download/agent/image/<platform>.tar` loads into Podman (the same
/// `docker save` layout Docker loads), and the container it makes, run as
/// the dashboard's one-liner runs it, reports to the server and comes
/// online. Skipped, saying why, where there is no static agent (`make
/// agents`) or no engine that runs a container (`make setup-engine`).
#[test]
fn the_agent_image_loads_into_a_real_engine_and_its_agent_comes_online() {
    let Some(agent) = static_agent() else {
        eprintln!("SKIPPED: no static agent in target/agents (make agents builds it)");
        return;
    };
    if let Err(e) = podman(&["--version"]) {
        eprintln!("SKIPPED: podman is not installed ({e}): make setup-engine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        &agent,
        dir.path()
            .join(format!("statusmonitor-agent-{}", platform())),
    )
    .unwrap();
    let server = Server::start(dir.path());
    let tar = dir.path().join("image.tar");
    let out = Command::new("curl")
        .args([
            "-fsSL",
            &format!("{}/download/agent/image/{}.tar", server.url, platform()),
            "-o",
        ])
        .arg(&tar)
        .output()
        .expect("curl");
    assert!(out.status.success(), "{}", text(&out));
    let loaded = podman(&["load", "-i", &tar.to_string_lossy()]).expect("podman load");
    let tag = server::download::image::tag(server::config::VERSION);
    assert!(
        loaded.contains(&format!("statusmonitor-agent:{tag}")),
        "{loaded}"
    );
    let _ = podman(&["rmi", "-f", &format!("statusmonitor-agent:{tag}")]);

    let (id, token) = server.create_agent("boxed");
    // The dashboard's line, as pasted; `docker` is Podman here.
    let line = ui::components::token_panel::docker_command(&server.url, &token);
    struct Remove;
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = podman(&["rm", "-f", "-t", "0", "statusmonitor-agent"]);
            let _ = podman(&["rmi", "-f", "statusmonitor-agent:latest"]);
            let _ = podman(&["volume", "rm", "-f", "statusmonitor-agent"]);
        }
    }
    drop(Remove);
    let _cleanup = Remove;
    let run = |docker: &str| {
        let out = Command::new("sh")
            .args(["-c", &format!("{docker}; {line}")])
            .output()
            .expect("run sh");
        if out.status.success() {
            Ok(())
        } else {
            Err(text(&out))
        }
    };
    // Inside another container crun refuses the default limits and cgroup
    // layout; runc with the current limits runs (as agent/tests/engine.rs).
    let started = run("docker() { podman \"$@\"; }").or_else(|first| {
        let _ = podman(&["rm", "-f", "statusmonitor-agent"]);
        run(
            "docker() { if [ \"$1\" = run ]; then shift; podman --runtime runc run \
             --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \"$@\"; else podman \"$@\"; fi; }",
        )
        .map_err(|e| format!("{first}\nthen with runc: {e}"))
    });
    if let Err(e) = started {
        eprintln!("SKIPPED: podman cannot start a container here: {e}");
        return;
    }
    let name = "statusmonitor-agent";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = server.agent(id);
        if a["online"] == true && a["token_state"] == "active" {
            break;
        }
        if Instant::now() > deadline {
            let logs = podman(&["logs", name]).unwrap_or_else(|e| e);
            panic!("the agent in the container did not come online: {a}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
