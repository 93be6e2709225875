//! Following the server's build: `statusmonitor-agent update` and
//! `auto_update = true`. The server carries the agent
//! (`GET /download/agent/linux-<arch>`) and lists its SHA-256 in
//! `GET /download/agent/SHA256SUMS`, asked over the same TLS settings as
//! the reports.
//!
//! Replacing: when the server lists another SHA-256 for this platform than
//! the executable has, the server's build is downloaded to a temporary file
//! beside the executable, its SHA-256 checked, and only then renamed over it
//! (atomic on one file system). A failed or unverifiable download leaves the
//! old binary as it was, and no temporary file.
//!
//! Who replaces it:
//! - Under systemd the running agent cannot: the hardened unit mounts the
//!   system read-only (`ProtectSystem=strict`) for a dynamic user. The unit
//!   runs `statusmonitor-agent update --if-auto-update` before each start
//!   with full privileges (`ExecStartPre=-+…`; `-`: a failure still starts
//!   the old binary). The running agent only asks the server, every
//!   [`CHECK_EVERY`] (`--update-every`): when a later check finds another
//!   build it stops with [`crate::error::EXIT_UPGRADED`], `Restart=` starts
//!   the unit again, and its pre-start installs the build. The check at
//!   start only logs a build the pre-start did not install (so a server
//!   whose download keeps failing costs one restart per check, not a loop).
//! - Elsewhere the running agent replaces itself and executes the new
//!   build in its own place, with the same arguments.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::Config;

/// How often the running agent asks the server for another build.
pub const CHECK_EVERY: Duration = Duration::from_secs(6 * 3600);
/// The download's bound when the unit runs `update` before a start: the
/// whole pre-start must end within systemd's start timeout (90 s).
pub const PRE_START_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest agent binary accepted (a static agent is about 5 MB).
const MAX_BYTES: u64 = 64 << 20;
/// Time for the whole download: a slow link may need more than one
/// report's timeout for a few megabytes.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// What one update did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server carries this very build.
    Current,
    /// The server has no agent for this platform (or none at all).
    NotOffered,
    /// `path` now holds the server's build, whose SHA-256 is `sha256`.
    Replaced { path: PathBuf, sha256: String },
}

/// What the server offers, against this executable.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// The server carries this very build.
    Current,
    /// The server has no agent for this platform (or none at all).
    NotOffered,
    /// The server lists this other SHA-256 for this platform.
    Other { sha256: String },
}

/// This platform as the server names it (`linux-x86_64`).
pub fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// Checks the server and replaces `exe` when it has another build.
pub fn update(config: &Config, exe: &Path) -> Result<Outcome, String> {
    update_within(config, exe, DOWNLOAD_TIMEOUT)
}

/// [`update`] with the download bounded by `download_timeout`.
pub fn update_within(
    config: &Config,
    exe: &Path,
    download_timeout: Duration,
) -> Result<Outcome, String> {
    match check(config, exe)? {
        Offer::Current => Ok(Outcome::Current),
        Offer::NotOffered => Ok(Outcome::NotOffered),
        Offer::Other { sha256 } => {
            install(config, exe, &sha256, download_timeout)?;
            Ok(Outcome::Replaced {
                path: exe.to_path_buf(),
                sha256,
            })
        }
    }
}

/// Asks the server's `SHA256SUMS` whether it has another build than `exe`.
pub fn check(config: &Config, exe: &Path) -> Result<Offer, String> {
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
        404 => return Ok(Offer::NotOffered),
        s => return Err(format!("{sums_url}: the server answered {s}")),
    }
    let sums = sums
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .map_err(|e| format!("{sums_url}: {e}"))?;
    let Some(expected) = listed_sha256(&sums, &platform) else {
        return Ok(Offer::NotOffered);
    };
    let current = sha256_of(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    Ok(if current == expected {
        Offer::Current
    } else {
        Offer::Other { sha256: expected }
    })
}

/// Downloads the server's build to a temporary file beside `exe`, checks
/// that its SHA-256 is `expected`, and renames it over `exe`. On any error
/// `exe` is as it was and the temporary file is gone.
pub fn install(
    config: &Config,
    exe: &Path,
    expected: &str,
    download_timeout: Duration,
) -> Result<(), String> {
    let server = config.server.as_deref().ok_or("no server configured")?;
    let dir = exe.parent().ok_or("the executable has no directory")?;
    let tmp = dir.join(format!(
        ".statusmonitor-agent.update.{}",
        std::process::id()
    ));
    // A file left by a run that died half-way (same pid after a reboot).
    let _ = std::fs::remove_file(&tmp);
    let download = crate::send::http_agent(download_timeout, config.ca_cert.as_ref());
    let result = download_to(&download, server, &platform(), expected, &tmp)
        .and_then(|()| replace(&tmp, exe));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `statusmonitor-agent update`: replaces this executable with the
/// server's build, or says it is current. An error (unreachable server,
/// checksum mismatch, no build for this platform) leaves it as it was.
pub fn command(args: &crate::config::UpdateArgs) -> anyhow::Result<()> {
    let config = Config::resolve(&args.agent)?;
    if args.if_auto_update && !config.auto_update {
        println!("auto_update is off: not asking the server for another build");
        return Ok(());
    }
    let exe =
        std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find this executable: {e}"))?;
    let timeout = if args.if_auto_update {
        PRE_START_DOWNLOAD_TIMEOUT
    } else {
        DOWNLOAD_TIMEOUT
    };
    match update_within(&config, &exe, timeout).map_err(|e| anyhow::anyhow!("update: {e}"))? {
        Outcome::Current => println!("{} is the server's build already", exe.display()),
        Outcome::NotOffered => anyhow::bail!(
            "update: the server offers no agent for {} (see its /download/agent/SHA256SUMS)",
            platform()
        ),
        Outcome::Replaced { path, sha256 } => {
            println!(
                "replaced {} with the server's build (SHA-256 {sha256})",
                path.display()
            );
        }
    }
    Ok(())
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
    std::fs::rename(tmp, exe).map_err(|e| format!("cannot replace {}: {e}", exe.display()))
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
