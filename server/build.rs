//! Records the git revision for `--version` and `/api/health`, and embeds
//! the agent binaries that `make build` put in `target/agents/` (see
//! [`embed_agents`]).

fn main() {
    embed_agents();
    git_revision();
}

/// Writes `$OUT_DIR/agents.rs`: one `include_bytes!` per
/// `statusmonitor-agent-linux-<arch>` file in the agents directory
/// (`STATUSMONITOR_AGENTS_DIR`, default `<workspace>/target/agents`, where
/// `agent/scripts/cross.sh agents` puts them). Missing files are simply not
/// embedded: the server still builds, and `/download/agent/...` answers 404
/// saying how to build them.
fn embed_agents() {
    use std::fmt::Write as _;
    use std::path::PathBuf;
    println!("cargo:rerun-if-env-changed=STATUSMONITOR_AGENTS_DIR");
    let dir = match std::env::var_os("STATUSMONITOR_AGENTS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("../target/agents"),
    };
    // Watched even while empty: a path that does not exist would make cargo
    // run this script (and rebuild the server) on every build.
    if std::fs::create_dir_all(&dir).is_ok() {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_string();
            let platform = name.strip_prefix("statusmonitor-agent-")?;
            let valid = platform.starts_with("linux-")
                && platform.len() <= 32
                && platform.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            (valid && entry.path().is_file()).then(|| (platform.to_string(), entry.path()))
        })
        .collect();
    found.sort();
    let mut code = String::from(
        "/// Agent binaries embedded at build time: (platform, bytes).\npub static EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for (platform, path) in &found {
        println!("cargo:rerun-if-changed={}", path.display());
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        writeln!(
            code,
            "    ({platform:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("write to a String");
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("agents.rs");
    std::fs::write(out, code).expect("write $OUT_DIR/agents.rs");
}

fn git_revision() {
    // Set from outside (a container build without .git) it wins.
    if let Ok(rev) = std::env::var("STATUSMONITOR_GIT_REVISION")
        && !rev.trim().is_empty()
        && rev != "unknown"
    {
        println!("cargo:rustc-env=STATUSMONITOR_GIT_REVISION={}", rev.trim());
        println!("cargo:rerun-if-env-changed=STATUSMONITOR_GIT_REVISION");
        return;
    }
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    let rev = if dirty { format!("{rev}-dirty") } else { rev };
    println!("cargo:rustc-env=STATUSMONITOR_GIT_REVISION={rev}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    println!("cargo:rerun-if-env-changed=STATUSMONITOR_GIT_REVISION");
}
