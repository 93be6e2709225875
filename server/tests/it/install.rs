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
fn platform() -> String {
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

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every file (not directory) under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
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
