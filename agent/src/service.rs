//! `install-service`: a hardened systemd unit and its environment file.
//!
//! The unit runs under a dynamic user with a read-only view of the system;
//! the only writable place is its `StateDirectory`, which holds the spool.
//! Server and token go to a root-only environment file that systemd reads
//! before dropping privileges, so the dynamic user never needs to read a
//! config file. A rejected token exits with [`crate::error::EXIT_CONFIG`], which the unit
//! does not restart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::{Config, InstallArgs};

/// Where `install-service` puts the environment file with server and token.
pub const ENV_FILE: &str = "/etc/statusmonitor-agent/agent.env";
/// The spool under the unit's `StateDirectory`.
pub const SERVICE_SPOOL_DIR: &str = "/var/lib/statusmonitor-agent/spool";

/// The unit as shipped (`packaging/systemd/`, also in `make dist`): the one
/// source of truth, with the installed binary's path put into `ExecStart`.
pub const UNIT_TEMPLATE: &str = include_str!("../../packaging/systemd/statusmonitor-agent.service");
/// The binary path in [`UNIT_TEMPLATE`].
const TEMPLATE_BINARY: &str = "/usr/local/bin/statusmonitor-agent";

/// The unit file text, with `binary` in `ExecStart` and `ExecStartPre`.
pub fn unit(binary: &Path) -> String {
    UNIT_TEMPLATE
        .replace(
            &format!("ExecStart={TEMPLATE_BINARY} "),
            &format!("ExecStart={} ", binary.display()),
        )
        .replace(
            &format!("ExecStartPre=-+{TEMPLATE_BINARY} "),
            &format!("ExecStartPre=-+{} ", binary.display()),
        )
}

/// The environment file: every setting that differs from the defaults.
/// `reveal_token` is false for `--dry-run`, which must not print the secret.
pub fn env_file(config: &Config, reveal_token: bool) -> anyhow::Result<String> {
    let (server, token) = config
        .endpoint()
        .context("install-service needs the server and token (run `setup` first, or pass them)")?;
    let mut s = String::from(
        "# Written by statusmonitor-agent install-service. Root-only: holds the token.\n",
    );
    writeln!(s, "STATUSMONITOR_AGENT_SERVER={server}")?;
    let token = if reveal_token {
        token.expose().to_owned()
    } else {
        "<redacted>".to_owned()
    };
    writeln!(s, "STATUSMONITOR_AGENT_TOKEN={token}")?;
    writeln!(
        s,
        "STATUSMONITOR_AGENT_INTERVAL={}ms",
        config.interval.as_millis()
    )?;
    let list = |name: &str, v: &[String], s: &mut String| -> std::fmt::Result {
        if v.is_empty() {
            Ok(())
        } else {
            writeln!(s, "STATUSMONITOR_AGENT_{name}={}", v.join(","))
        }
    };
    list("MOUNTS", &config.filter.mounts, &mut s)?;
    list("EXCLUDE_MOUNTS", &config.filter.exclude_mounts, &mut s)?;
    list("IFACES", &config.filter.ifaces, &mut s)?;
    list("EXCLUDE_IFACES", &config.filter.exclude_ifaces, &mut s)?;
    if config.filter.include_loopback {
        writeln!(s, "STATUSMONITOR_AGENT_INCLUDE_LOOPBACK=true")?;
    }
    if let Some(ca) = &config.ca_cert {
        writeln!(s, "STATUSMONITOR_AGENT_CA_CERT={}", ca.path.display())?;
    }
    if config.auto_update {
        writeln!(s, "STATUSMONITOR_AGENT_AUTO_UPDATE=true")?;
    }
    Ok(s)
}

pub fn install(args: &InstallArgs, config: &Config) -> anyhow::Result<()> {
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("finding this executable")?,
    };
    let binary = std::fs::canonicalize(&binary).unwrap_or(binary);
    let unit = unit(&binary);
    if args.dry_run {
        println!("# {}\n{unit}", args.unit_path.display());
        println!("# {ENV_FILE}\n{}", env_file(config, false)?);
        warn_private_binary(&binary);
        return Ok(());
    }
    if !cfg!(target_os = "linux") {
        bail!("install-service writes a systemd unit and works on Linux only (try --dry-run)");
    }
    let env = env_file(config, true)?;
    write_private(Path::new(ENV_FILE), &env)?;
    std::fs::write(&args.unit_path, unit)
        .with_context(|| format!("writing {} (run as root)", args.unit_path.display()))?;
    warn_private_binary(&binary);
    println!(
        "Wrote {} and {ENV_FILE}.\nNow run: systemctl daemon-reload && systemctl enable --now statusmonitor-agent",
        args.unit_path.display()
    );
    Ok(())
}

/// The dynamic user cannot run a binary from a home directory.
fn warn_private_binary(binary: &Path) {
    if binary.starts_with("/root") || binary.starts_with("/home") {
        eprintln!(
            "warning: {} is in a home directory the service cannot read; copy it to /usr/local/bin and pass --binary",
            binary.display()
        );
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir: PathBuf = path.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating {} (run as root)", dir.display()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    opts.open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {} (run as root)", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EXIT_CONFIG;

    #[test]
    fn unit_is_hardened_and_does_not_restart_on_a_refused_token() {
        let u = unit(Path::new("/usr/local/bin/statusmonitor-agent"));
        for line in [
            "DynamicUser=yes",
            "ProtectSystem=strict",
            "StateDirectory=statusmonitor-agent",
            "Restart=on-failure",
            "RestartPreventExitStatus=78",
            "NoNewPrivileges=yes",
            "ExecStart=/usr/local/bin/statusmonitor-agent run --spool-dir /var/lib/statusmonitor-agent/spool",
            "ExecStartPre=-+/usr/local/bin/statusmonitor-agent update --if-auto-update",
        ] {
            assert!(u.lines().any(|l| l == line), "missing {line}");
        }
    }

    #[test]
    fn the_shipped_unit_agrees_with_the_code() {
        for needed in [
            format!("EnvironmentFile={ENV_FILE}"),
            format!("--spool-dir {SERVICE_SPOOL_DIR}"),
            format!("RestartPreventExitStatus={EXIT_CONFIG}"),
        ] {
            assert!(UNIT_TEMPLATE.contains(&needed), "missing {needed}");
        }
        let u = unit(Path::new("/opt/sm/agent"));
        assert!(u.contains("ExecStart=/opt/sm/agent run --spool-dir"), "{u}");
        assert!(
            u.contains("ExecStartPre=-+/opt/sm/agent update --if-auto-update"),
            "{u}"
        );
        assert!(!u.contains(TEMPLATE_BINARY));
    }
}
