//! Records the git revision for `--version` and `/api/health`.

fn main() {
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
