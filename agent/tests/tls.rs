//! `--ca-cert`: HTTPS to a server whose certificate a private CA signed.
//!
//! The certificates in `tests/tls/` are test-only and valid until 2126:
//! `ca.pem` a self-signed P-256 CA, `server.pem`/`server.key` a server
//! certificate it signed for `localhost` and 127.0.0.1 (made with `openssl
//! req -x509` and `openssl x509 -req`).

use std::process::{Output, Stdio};
use std::time::Duration;

use crate::cli::agent;
use crate::fake_server::{FakeServer, tls_file};

fn setup(server: &FakeServer, config: &std::path::Path, ca_cert: Option<&str>) -> Output {
    let mut cmd = agent();
    cmd.args(["setup", "--server", &server.url, "--token", "tls-token"]);
    if let Some(file) = ca_cert {
        cmd.arg("--ca-cert").arg(tls_file(file));
    }
    cmd.arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_server_signed_by_the_given_ca_is_trusted_and_setup_remembers_the_ca() {
    let server = FakeServer::start_tls(200);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let out = setup(&server, &config, Some("ca.pem"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let ca = std::fs::canonicalize(tls_file("ca.pem")).unwrap();
    assert!(
        text.contains(&format!("ca_cert = \"{}\"", ca.display())),
        "{text}"
    );
    assert_eq!(server.state.lock().unwrap().accepted.len(), 1);

    // The service gets it too, from that file.
    let out = agent()
        .args([
            "install-service",
            "--dry-run",
            "--binary",
            "/usr/local/bin/a",
        ])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("STATUSMONITOR_AGENT_CA_CERT={}", ca.display())),
        "{stdout}"
    );

    // `run` with nothing but that file: the CA comes from it.
    let mut run = agent()
        .args(["run", "--interval", "1s", "--config"])
        .arg(&config)
        .arg("--spool-dir")
        .arg(dir.path().join("spool"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    server.wait_for(Duration::from_secs(20), "a report over HTTPS", |s| {
        s.accepted.len() >= 2
    });
    run.kill().unwrap();
    run.wait().unwrap();
}

#[test]
fn without_the_ca_the_server_is_not_trusted() {
    let server = FakeServer::start_tls(200);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let out = setup(&server, &config, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("invalid peer certificate") && stderr.contains("--ca-cert"),
        "the error names the certificate and the way out: {stderr}"
    );
    assert!(!config.exists());
    assert!(server.state.lock().unwrap().accepted.is_empty());
}

#[test]
fn a_ca_file_without_a_certificate_is_refused_at_start() {
    let server = FakeServer::start_tls(200);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    // The server's private key is PEM too, but no certificate.
    let out = setup(&server, &config, Some("server.key"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("server.key") && stderr.contains("no certificate"),
        "{stderr}"
    );
    let out = setup(&server, &config, Some("missing.pem"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("missing.pem"), "{stderr}");
    assert_eq!(server.state.lock().unwrap().attempts, 0);
}
