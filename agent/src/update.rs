//! `auto_update = true`: the agent replaces itself with the build its server
//! carries (`GET /download/agent/linux-<arch>`), checked against the
//! server's `SHA256SUMS` over the same TLS settings as its reports.
//!
//! The check runs at start and every [`CHECK_EVERY`]. When the server lists
//! another SHA-256 for this platform than this executable has, the new build
//! is downloaded to a temporary file beside the executable, its SHA-256
//! checked, and only then renamed over it (atomic on one file system); the
//! agent then stops with [`crate::error::EXIT_UPGRADED`] so systemd starts
//! the new one (`Restart=on-failure`), or, outside systemd, executes it in
//! its place. A failed or unverifiable download leaves the old binary, which
//! keeps running. The shipped hardened unit mounts `/usr/local/bin`
//! read-only (`ProtectSystem=strict`, a dynamic user): there the agent says
//! so once per check, and re-running the install line upgrades it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::Config;

/// How often the server is asked for a newer build.
pub const CHECK_EVERY: Duration = Duration::from_secs(6 * 3600);
/// The largest agent binary accepted (a static agent is about 5 MB).
const MAX_BYTES: u64 = 64 << 20;
/// Time for the whole download: a slow link may need more than one
/// report's timeout for a few megabytes.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// What one check did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server carries this very build.
    Current,
    /// The server has no agent for this platform (or none at all).
    NotOffered,
    /// `path` now holds the server's build, whose SHA-256 is `sha256`.
    Replaced { path: PathBuf, sha256: String },
}

/// This platform as the server names it (`linux-x86_64`).
pub fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// Checks the server and replaces `exe` when it has another build.
pub fn update(config: &Config, exe: &Path) -> Result<Outcome, String> {
    let server = config.server.as_deref().ok_or("no server configured")?;
    let http = crate::send::http_agent(config.timeout, config.ca_cert.as_ref());
    let platform = platform();
    let sums_url = format!("{server}/download/agent/SHA256SUMS");
    let mut sums = http
        .get(&sums_url)
        .call()
        .map_err(|e| format!("{sums_url}: {}", crate::send::transport_error(&e)))?;
    match sums.status().as_u16() {
        200 => {}
        404 => return Ok(Outcome::NotOffered),
        s => return Err(format!("{sums_url}: the server answered {s}")),
    }
    let sums = sums
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .map_err(|e| format!("{sums_url}: {e}"))?;
    let Some(expected) = listed_sha256(&sums, &platform) else {
        return Ok(Outcome::NotOffered);
    };
    let current = sha256_of(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    if current == expected {
        return Ok(Outcome::Current);
    }

    let dir = exe.parent().ok_or("the executable has no directory")?;
    let tmp = dir.join(format!(
        ".statusmonitor-agent.update.{}",
        std::process::id()
    ));
    let download = crate::send::http_agent(DOWNLOAD_TIMEOUT, config.ca_cert.as_ref());
    let result = download_to(&download, server, &platform, &expected, &tmp)
        .and_then(|()| replace(&tmp, exe));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| Outcome::Replaced {
        path: exe.to_path_buf(),
        sha256: expected,
    })
}

/// The SHA-256 `sums` (sha256sum's format) lists for `platform`'s agent.
fn listed_sha256(sums: &str, platform: &str) -> Option<String> {
    let name = format!("statusmonitor-agent-{platform}");
    sums.lines().find_map(|line| {
        let (hash, file) = line.split_once("  ")?;
        (file == name && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| hash.to_ascii_lowercase())
    })
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads the agent into `tmp` (mode 0755), hashing as it goes; an
/// answer that is not `expected` is an error.
fn download_to(
    http: &ureq::Agent,
    server: &str,
    platform: &str,
    expected: &str,
    tmp: &Path,
) -> Result<(), String> {
    let url = format!("{server}/download/agent/{platform}");
    let mut answer = http
        .get(&url)
        .call()
        .map_err(|e| format!("{url}: {}", crate::send::transport_error(&e)))?;
    if answer.status().as_u16() != 200 {
        return Err(format!("{url}: the server answered {}", answer.status()));
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o755);
    }
    let mut file = opts
        .open(tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let mut body = answer.body_mut().as_reader().take(MAX_BYTES + 1);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = body.read(&mut buf).map_err(|e| format!("{url}: {e}"))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > MAX_BYTES {
            return Err(format!("{url}: larger than {MAX_BYTES} bytes"));
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    }
    file.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let got = hex(&hasher.finalize());
    if got != expected {
        return Err(format!(
            "checksum mismatch: {url} has SHA-256 {got}, the server lists {expected}; kept the running version"
        ));
    }
    Ok(())
}

fn replace(tmp: &Path, exe: &Path) -> Result<(), String> {
    std::fs::rename(tmp, exe).map_err(|e| {
        format!(
            "cannot replace {}: {e} (the hardened service cannot write its own binary: \
             run the install line again to upgrade)",
            exe.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sums_line_of_this_platform_is_found_and_checked() {
        let h = "a".repeat(64);
        let sums = format!(
            "{h}  statusmonitor-agent-linux-aarch64\n{}  statusmonitor-agent-linux-x86_64\n",
            "B".repeat(64)
        );
        assert_eq!(listed_sha256(&sums, "linux-x86_64"), Some("b".repeat(64)));
        assert_eq!(listed_sha256(&sums, "linux-aarch64"), Some(h));
        assert_eq!(listed_sha256(&sums, "linux-armv7"), None);
        assert_eq!(
            listed_sha256("zz  statusmonitor-agent-linux-x86_64", "linux-x86_64"),
            None
        );
    }
}
