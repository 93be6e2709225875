//! The command-line surface: `once`, `setup`, `install-service --dry-run`, `simulate`.

use std::io::Write;
use std::process::{Command, Stdio};

use storage::model::wire::IngestBatch;

use crate::fake_server::FakeServer;

pub fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_statusmonitor-agent"));
    // Nothing from the developer's environment or config may leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("STATUSMONITOR_AGENT_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn once_prints_an_ingest_batch_with_host_and_one_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent()
        .args(["once", "--config"])
        .arg(dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let batch: IngestBatch = serde_json::from_slice(&out.stdout).expect("stdout is an IngestBatch");
    let host = batch.host.expect("host facts");
    assert!(!host.hostname.is_empty());
    assert_eq!(batch.reports.len(), 1);
    let r = &batch.reports[0];
    assert!(r.ts_ms > 1_700_000_000_000);
    if cfg!(target_os = "linux") {
        let cpu = r.cpu.as_ref().expect("cpu on linux");
        assert_eq!(cpu.cores_pct.len() as u32, host.cores.unwrap());
        assert!(r.memory.is_some() && r.uptime_s.is_some() && r.load.is_some());
        assert!(
            r.networks.iter().all(|n| n.iface != "lo"),
            "loopback skipped by default"
        );
    }
}

#[test]
fn setup_checks_the_server_and_writes_a_private_config() {
    let server = FakeServer::start(200);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sub/agent.toml");
    let mut child = agent()
        .arg("setup")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write!(
        child.stdin.take().unwrap(),
        "not a url\n{}/\ns3cret-token\n",
        server.url
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("must start with http"),
        "a bad answer is explained: {stderr}"
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!("server = \"{}\"", server.url)),
        "{text}"
    );
    assert!(text.contains("token = \"s3cret-token\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "config holds the token: owner only");
    }
    assert_eq!(
        server.state.lock().unwrap().tokens,
        vec!["s3cret-token".to_string()]
    );
}

#[test]
fn setup_refuses_a_rejected_token() {
    let server = FakeServer::start(401);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let out = agent()
        .args([
            "setup",
            "--server",
            &server.url,
            "--token",
            "bad",
            "--config",
        ])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("regenerate it in the dashboard"));
    assert!(!config.exists());
}

#[test]
fn install_service_dry_run_prints_a_hardened_unit_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent()
        .args([
            "install-service",
            "--dry-run",
            "--binary",
            "/usr/local/bin/statusmonitor-agent",
        ])
        .args([
            "--server",
            "http://monitor:8420",
            "--token",
            "topsecret",
            "--config",
        ])
        .arg(dir.path().join("none.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=statusmonitor-agent",
        "Restart=on-failure",
    ] {
        assert!(stdout.contains(line), "{line} missing:\n{stdout}");
    }
    assert!(stdout.contains("STATUSMONITOR_AGENT_SERVER=http://monitor:8420"));
    assert!(
        !stdout.contains("topsecret"),
        "dry run must not print the token"
    );
}

#[test]
fn simulate_plays_one_agent_per_token_and_prints_a_summary() {
    let server = FakeServer::start(200);
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, "sim-a\nsim-b\n\n# comment\nsim-c\n").unwrap();
    let out = agent()
        .args([
            "simulate",
            "--server",
            &server.url,
            "--interval",
            "200ms",
            "--duration",
            "1s",
        ])
        .args(["--concurrency", "2", "--tokens-file"])
        .arg(&tokens)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("reports/s") && stdout.contains("p99"),
        "{stdout}"
    );
    let s = server.state.lock().unwrap();
    for t in ["sim-a", "sim-b", "sim-c"] {
        assert!(
            s.tokens.iter().filter(|x| *x == t).count() >= 3,
            "{t}: {:?}",
            s.tokens
        );
    }
    let hosts: Vec<_> = s.accepted.iter().filter_map(|b| b.host.as_ref()).collect();
    assert_eq!(hosts.len(), 3, "host facts once per synthetic agent");
    assert!(
        s.accepted
            .iter()
            .all(|b| b.reports[0].cpu.as_ref().unwrap().cores_pct.len() == 8)
    );
}

/// Every setting is read from its flag, its `STATUSMONITOR_AGENT_*`
/// variable and its TOML key alike (one definition serves all three): the
/// unit's environment file shows what was read, and a bad value of the
/// settings it does not show is refused naming the setting.
#[test]
fn every_setting_is_read_from_its_flag_its_variable_and_its_file_key() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("none.toml");
    // (flag, variable, TOML line) for the same value.
    let settings = [
        (
            "--server=http://monitor:8420",
            "SERVER=http://monitor:8420",
            "server = \"http://monitor:8420\"",
        ),
        ("--token=t0ken", "TOKEN=t0ken", "token = \"t0ken\""),
        ("--interval=2s", "INTERVAL=2s", "interval = \"2s\""),
        (
            "--mounts=/,/data*",
            "MOUNTS=/,/data*",
            "mounts = [\"/\", \"/data*\"]",
        ),
        (
            "--exclude-mounts=/boot*",
            "EXCLUDE_MOUNTS=/boot*",
            "exclude_mounts = [\"/boot*\"]",
        ),
        ("--ifaces=eth*", "IFACES=eth*", "ifaces = [\"eth*\"]"),
        (
            "--exclude-ifaces=docker*",
            "EXCLUDE_IFACES=docker*",
            "exclude_ifaces = [\"docker*\"]",
        ),
        (
            "--include-loopback",
            "INCLUDE_LOOPBACK=true",
            "include_loopback = true",
        ),
        (
            "--spool-dir=/var/spool/sm",
            "SPOOL_DIR=/var/spool/sm",
            "spool_dir = \"/var/spool/sm\"",
        ),
        ("--spool-max=1000", "SPOOL_MAX=1000", "spool_max = 1000"),
        ("--timeout=30s", "TIMEOUT=30s", "timeout = \"30s\""),
    ];
    let dry_run = || {
        let mut c = agent();
        c.args([
            "install-service",
            "--dry-run",
            "--binary",
            "/usr/bin/sm-agent",
        ]);
        c
    };
    let shown = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let env: Vec<String> = stdout
            .lines()
            .filter(|l| l.starts_with("STATUSMONITOR_AGENT_"))
            .map(str::to_string)
            .collect();
        env
    };
    let by_flags = shown(
        dry_run()
            .args(settings.iter().map(|s| s.0))
            .arg("--config")
            .arg(&none)
            .output()
            .unwrap(),
    );
    let mut c = dry_run();
    for (_, var, _) in &settings {
        let (k, v) = var.split_once('=').unwrap();
        c.env(format!("STATUSMONITOR_AGENT_{k}"), v);
    }
    let by_env = shown(c.env("STATUSMONITOR_AGENT_CONFIG", &none).output().unwrap());
    let file = dir.path().join("agent.toml");
    let lines: Vec<&str> = settings.iter().map(|s| s.2).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let by_file = shown(dry_run().arg("--config").arg(&file).output().unwrap());
    for line in [
        "STATUSMONITOR_AGENT_SERVER=http://monitor:8420",
        "STATUSMONITOR_AGENT_INTERVAL=2000ms",
        "STATUSMONITOR_AGENT_MOUNTS=/,/data*",
        "STATUSMONITOR_AGENT_EXCLUDE_MOUNTS=/boot*",
        "STATUSMONITOR_AGENT_IFACES=eth*",
        "STATUSMONITOR_AGENT_EXCLUDE_IFACES=docker*",
        "STATUSMONITOR_AGENT_INCLUDE_LOOPBACK=true",
    ] {
        assert!(by_flags.iter().any(|l| l == line), "{line}: {by_flags:?}");
    }
    assert_eq!(by_env, by_flags);
    assert_eq!(by_file, by_flags);

    // Settings the environment file leaves out: a bad value from any
    // source is refused, naming it.
    for (flag, var, key, bad) in [
        ("--spool-max", "SPOOL_MAX", "spool_max", "0"),
        ("--timeout", "TIMEOUT", "timeout", "\"soon\""),
    ] {
        let plain = bad.trim_matches('"');
        let outs = [
            dry_run()
                .arg(format!("{flag}={plain}"))
                .arg("--config")
                .arg(&none)
                .output(),
            dry_run()
                .env(format!("STATUSMONITOR_AGENT_{var}"), plain)
                .arg("--config")
                .arg(&none)
                .output(),
            {
                std::fs::write(&file, format!("{key} = {bad}\n")).unwrap();
                dry_run().arg("--config").arg(&file).output()
            },
        ];
        for (source, out) in ["flag", "env", "file"].iter().zip(outs) {
            let out = out.unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{key} from {source}");
            assert!(
                stderr.contains(flag) || stderr.contains(var) || stderr.contains(key),
                "{key} from {source}: {stderr}"
            );
        }
    }
}

/// The README's table of options is what `statusmonitor-agent run --help`
/// offers: every option of the help has a row with its variable, and every
/// row names an option the binary has.
#[test]
fn readme_configuration_table_matches_help() {
    use std::collections::BTreeMap;
    let out = agent().args(["run", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let mut from_help: BTreeMap<String, Option<String>> = BTreeMap::new();
    let options = help.split("Options:").nth(1).expect("an Options section");
    let mut current: Option<String> = None;
    for line in options.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("--") {
            let flag = rest.split([' ', '=', '[']).next().unwrap().to_string();
            from_help.insert(flag.clone(), None);
            current = Some(flag);
        } else if trimmed.starts_with('-') {
            // `-h, --help`: not a setting.
            current = None;
        }
        if let (Some(flag), Some(at)) = (&current, line.find("[env: ")) {
            let env = line[at + 6..].split(['=', ']']).next().unwrap().to_string();
            from_help.insert(flag.clone(), Some(env));
        }
    }
    assert!(from_help.len() > 10, "parsed the help: {help}");

    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = readme
        .split("| flag | env | default |")
        .nth(1)
        .expect("the options table");
    let mut from_readme: BTreeMap<String, Option<String>> = BTreeMap::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let list = |cell: &str| -> Vec<String> {
            cell.split(',')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect()
        };
        let (flags, envs) = (list(cells[1]), list(cells[2]));
        assert_eq!(flags.len(), envs.len(), "a variable per flag: {row}");
        for (flag, env) in flags.iter().zip(envs) {
            let flag = flag
                .strip_prefix("--")
                .unwrap_or_else(|| panic!("a flag in the first column: {row}"));
            let env = env
                .strip_prefix("..._")
                .map(|e| format!("STATUSMONITOR_AGENT_{e}"));
            assert!(
                from_readme.insert(flag.to_string(), env).is_none(),
                "one row per flag: {flag}"
            );
        }
    }
    from_help.remove("help");
    assert_eq!(from_readme, from_help, "README table vs --help");
}
