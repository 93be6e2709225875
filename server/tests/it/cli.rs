//! The `statusmonitor` binary itself: start-up, configuration errors, the data
//! directory lock, graceful shutdown. Each failure must be one line naming the
//! problem, a non-zero exit, and no change to existing data.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{BIN, free_port};

pub(crate) fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env("STATUSMONITOR_LOG", "warn")
        .output()
        .expect("run statusmonitor")
}

/// Starts the binary and waits until `/api/health` answers.
pub(crate) fn start(args: &[&str], cwd: &Path) -> (Child, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut all = vec!["--listen", &listen];
    all.extend_from_slice(args);
    let child = Command::new(BIN)
        .args(&all)
        .current_dir(cwd)
        .env("STATUSMONITOR_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn statusmonitor");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if ureq::get(&format!("http://{listen}/api/health"))
            .call()
            .is_ok()
        {
            return (child, port);
        }
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line of error: {text:?}");
    text
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in walk(dir) {
        if entry.ends_with("statusmonitor.lock") || entry.ends_with("control.sock") {
            continue;
        }
        let bytes = std::fs::read(&entry).unwrap();
        files.push((entry.display().to_string(), bytes));
    }
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn starts_with_no_configuration_and_prints_the_url() {
    let cwd = tempfile::tempdir().unwrap();
    let (mut child, port) = start(&[], cwd.path());
    assert!(
        cwd.path().join("data").is_dir(),
        "default data dir ./data created"
    );
    let health: serde_json::Value = ureq::get(&format!("http://127.0.0.1:{port}/api/health"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    // SIGTERM: graceful stop with exit code 0.
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    let mut log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        log.push_str(&line.unwrap());
    }
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        log.push_str(&line.unwrap());
    }
    assert!(
        log.contains(&format!("open http://127.0.0.1:{port}")),
        "prints the URL: {log}"
    );
}

#[test]
fn second_server_on_the_same_data_dir_exits_naming_it() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("shared-data");
    let data_arg = data.to_str().unwrap();
    let (mut first, _) = start(&["--data-dir", data_arg], cwd.path());
    let before = snapshot(&data);
    let port = free_port().to_string();
    let started = Instant::now();
    let out = run(
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data_arg,
        ],
        cwd.path(),
    );
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(5), "exits at once");
    let line = stderr_line(&out);
    assert!(line.contains("in use by another statusmonitor"), "{line}");
    assert!(
        line.contains(&data.canonicalize().unwrap().display().to_string()),
        "{line}"
    );
    assert_eq!(snapshot(&data), before, "nothing touched");
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn port_in_use_is_one_clear_line() {
    let cwd = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&["--listen", &addr], cwd.path());
    assert!(!out.status.success());
    let line = stderr_line(&out);
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
    assert!(
        line.to_lowercase().contains("address already in use"),
        "{line}"
    );
}

#[test]
fn config_file_errors_are_one_clear_line() {
    let cwd = tempfile::tempdir().unwrap();
    let unknown = cwd.path().join("unknown.toml");
    std::fs::write(&unknown, "listen = \"127.0.0.1:1\"\nretention = \"1d\"\n").unwrap();
    let out = run(&["--config", unknown.to_str().unwrap()], cwd.path());
    assert!(!out.status.success());
    let line = stderr_line(&out);
    assert!(line.contains("unknown field `retention`"), "{line}");
    assert!(line.contains("unknown.toml"), "names the file: {line}");

    let malformed = cwd.path().join("malformed.toml");
    std::fs::write(&malformed, "listen = [\n").unwrap();
    let out = run(&["--config", malformed.to_str().unwrap()], cwd.path());
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("malformed.toml is invalid"));

    let out = run(&["--config", "/nonexistent/statusmonitor.toml"], cwd.path());
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("cannot read config file /nonexistent/statusmonitor.toml"));
    assert!(
        !cwd.path().join("data").exists(),
        "no data directory created on a config error"
    );
}

#[test]
fn flags_win_over_environment_and_file() {
    let cwd = tempfile::tempdir().unwrap();
    let file = cwd.path().join("sm.toml");
    std::fs::write(&file, "data_dir = \"from-file\"\n").unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            "from-flag",
        ])
        .env("STATUSMONITOR_LISTEN", format!("127.0.0.1:{port}"))
        .env("STATUSMONITOR_DATA_DIR", "from-env")
        .current_dir(cwd.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ureq::get(&format!("http://127.0.0.1:{port}/api/health"))
        .call()
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "server did not come up on the env port"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cwd.path().join("from-flag").is_dir());
    assert!(!cwd.path().join("from-env").exists());
    assert!(!cwd.path().join("from-file").exists());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn data_dir_that_is_a_file_is_refused() {
    let cwd = tempfile::tempdir().unwrap();
    let file = cwd.path().join("not-a-dir");
    std::fs::write(&file, "precious").unwrap();
    let out = run(
        &[
            "--data-dir",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        cwd.path(),
    );
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("is not a directory"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
}

#[test]
fn version_names_the_git_revision() {
    let out = run(&["--version"], Path::new("."));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("statusmonitor 0."), "{text}");
    assert!(text.contains('('), "revision in parentheses: {text}");
}

/// Every entry under `dir` (directories too) whose mode lets the group or
/// others in, with its mode.
#[cfg(unix)]
fn shared_entries(dir: &Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            out.push((d.clone(), mode));
        }
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                todo.push(path);
            } else if meta.permissions().mode() & 0o077 != 0 {
                out.push((path, meta.permissions().mode() & 0o7777));
            }
        }
    }
    out
}

/// The data directory holds the JWT signing secret: a fresh one, everything
/// the running server writes into it, and a backup taken through the control
/// socket are for the server's user only, whatever the caller's umask.
#[cfg(unix)]
#[test]
fn a_fresh_data_directory_and_its_backup_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    let data_s = data.to_str().unwrap();
    let (mut child, port) = start(&["--data-dir", data_s], cwd.path());
    // Something in the catalog: the first account (and its session).
    let url = format!("http://127.0.0.1:{port}");
    let password = "correct horse battery staple";
    ureq::post(&format!("{url}/api/auth/register"))
        .send_json(serde_json::json!({ "username": "alice", "password": password }))
        .unwrap();
    ureq::post(&format!("{url}/api/auth/token"))
        .send_json(serde_json::json!({ "username": "alice", "password": password }))
        .unwrap();
    let backup = cwd.path().join("b.tar.zst");
    let out = run(
        &[
            "backup",
            "--data-dir",
            data_s,
            "--to",
            backup.to_str().unwrap(),
        ],
        cwd.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(data.join("catalog.redb").is_file() && data.join("tsdb").is_dir());
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(shared_entries(&data), vec![], "while running");
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(shared_entries(&data), vec![], "after a graceful stop");
}

/// A data directory made by an older version (0755, files 0644) is closed at
/// start, with a warning that says what was wrong.
#[cfg(unix)]
#[test]
fn an_open_data_directory_is_closed_at_start_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("notes.txt"), b"left by someone").unwrap();
    std::fs::set_permissions(
        data.join("notes.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (mut child, _port) = start(&["--data-dir", data.to_str().unwrap()], cwd.path());
    assert_eq!(shared_entries(&data), vec![]);
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
    let mut log = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        log.push_str(&line.unwrap());
    }
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        log.push_str(&line.unwrap());
    }
    assert!(log.contains("was open to other users (mode 0755)"), "{log}");
    assert!(
        log.contains("entries of the data directory readable by other users: 1"),
        "{log}"
    );
}

/// Options of `serve` before a subcommand are refused, not ignored: this
/// used to back up `./data` instead of the directory named.
#[test]
fn subcommands_refuse_the_options_of_serve() {
    let cwd = tempfile::tempdir().unwrap();
    let srv = cwd.path().join("srv");
    std::fs::create_dir(&srv).unwrap();
    std::fs::create_dir(cwd.path().join("data")).unwrap();
    let to = cwd.path().join("b.tar.zst");
    let out = run(
        &[
            "--data-dir",
            srv.to_str().unwrap(),
            "backup",
            "--to",
            to.to_str().unwrap(),
        ],
        cwd.path(),
    );
    assert!(!out.status.success());
    let line = stderr_line(&out);
    assert!(line.contains("--data-dir"), "names the option: {line}");
    assert!(!to.exists(), "nothing backed up");
    for sub in [
        &["check", "--listen", "127.0.0.1:1"][..],
        &["restore", "--from", "x.tar.zst", "--raw-retention", "1d"][..],
        &["backup", "--to", "x.tar.zst", "--jwt-secret", "s"][..],
    ] {
        let out = run(sub, cwd.path());
        assert!(!out.status.success(), "{sub:?}");
        let line = stderr_line(&out);
        assert!(line.contains(sub[sub.len() - 2]), "{sub:?}: {line}");
    }
}

/// Runs the binary with extra environment variables.
fn run_env(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .env("STATUSMONITOR_LOG", "warn")
        .output()
        .expect("run statusmonitor")
}

/// `backup`, `restore` and `check` find the data directory as `serve` does:
/// flag, then `STATUSMONITOR_DATA_DIR`, then the config file's `data_dir`
/// (`--config` or `STATUSMONITOR_CONFIG`), then `./data`. A missing
/// directory is named in the error, which shows the one each chose.
#[test]
fn subcommands_take_the_data_dir_from_env_and_config_file() {
    let cwd = tempfile::tempdir().unwrap();
    let file = cwd.path().join("sm.toml");
    std::fs::write(&file, "data_dir = \"/nonexistent/from-file\"\n").unwrap();
    let f = file.to_str().unwrap();
    let to = cwd.path().join("b.tar.zst");
    let to = to.to_str().unwrap();
    let cases: [(&[&str], &[(&str, &str)], &str); 6] = [
        (&["check", "--config", f], &[], "/nonexistent/from-file"),
        (
            &["backup", "--to", to],
            &[("STATUSMONITOR_CONFIG", f)],
            "/nonexistent/from-file",
        ),
        (
            &["check"],
            &[("STATUSMONITOR_DATA_DIR", "/nonexistent/from-env")],
            "/nonexistent/from-env",
        ),
        (
            &["backup", "--to", to, "--config", f],
            &[("STATUSMONITOR_DATA_DIR", "/nonexistent/from-env")],
            "/nonexistent/from-env",
        ),
        (
            &[
                "check",
                "--config",
                f,
                "--data-dir",
                "/nonexistent/from-flag",
            ],
            &[("STATUSMONITOR_DATA_DIR", "/nonexistent/from-env")],
            "/nonexistent/from-flag",
        ),
        (&["check"], &[], "data"),
    ];
    for (args, env, dir) in cases {
        let out = run_env(args, env, cwd.path());
        assert!(!out.status.success(), "{args:?} {env:?}");
        let line = stderr_line(&out);
        assert!(
            line.contains(&format!("data directory {dir} does not exist"))
                || line.contains(&format!("data directory ./{dir} does not exist")),
            "{args:?} {env:?}: {line}"
        );
    }
    // restore writes where the file says: into the file's directory.
    let target = cwd.path().join("restored");
    std::fs::write(
        &file,
        format!("data_dir = \"{}\"\n", target.to_str().unwrap()),
    )
    .unwrap();
    let out = run_env(
        &["restore", "--from", "/nonexistent/b.tar.zst"],
        &[("STATUSMONITOR_CONFIG", f)],
        cwd.path(),
    );
    assert!(!out.status.success());
    stderr_line(&out);
    // A typo in the file is an error for the subcommands too.
    std::fs::write(&file, "data_dri = \"x\"\n").unwrap();
    let out = run_env(&["check", "--config", f], &[], cwd.path());
    assert!(stderr_line(&out).contains("unknown field `data_dri`"));
}

/// A bad duration or URL fails at start with one line naming the setting
/// and where it came from (flag, environment variable, config file), before
/// the data directory is created.
#[test]
fn bad_values_name_the_setting_and_its_source() {
    let cwd = tempfile::tempdir().unwrap();
    let toml = cwd.path().join("sm.toml");
    let t = toml.to_str().unwrap();
    let cases: [(&[&str], &[(&str, &str)], &str, &[&str]); 7] = [
        (
            &["--raw-retention", "12 parsecs"],
            &[],
            "",
            &["--raw-retention", "12 parsecs"],
        ),
        (
            &["serve", "--notify-timeout=0s"],
            &[],
            "",
            &["--notify-timeout", "longer than zero"],
        ),
        (
            &[],
            &[("STATUSMONITOR_RAW_RETENTION", "soon")],
            "",
            &["--raw-retention", "STATUSMONITOR_RAW_RETENTION"],
        ),
        (
            &[],
            &[("STATUSMONITOR_PUBLIC_URL", "mon.example")],
            "",
            &["--public-url", "STATUSMONITOR_PUBLIC_URL"],
        ),
        (
            &["--config", t],
            &[],
            "raw_retention = \"soon\"\n",
            &["raw_retention", "sm.toml"],
        ),
        (
            &["--config", t],
            &[],
            "hour_retention = 5\n",
            &["hour_retention", "sm.toml"],
        ),
        (
            &["--config", t],
            &[],
            "telegram_api_base = \"ftp://x\"\n",
            &["telegram_api_base", "sm.toml"],
        ),
    ];
    for (args, env, file, want) in cases {
        std::fs::write(&toml, file).unwrap();
        let out = run_env(args, env, cwd.path());
        assert!(!out.status.success(), "{args:?} {env:?} {file:?}");
        let line = stderr_line(&out);
        for w in want {
            assert!(
                line.contains(w),
                "{args:?} {env:?} {file:?}: {w} not in {line}"
            );
        }
        assert!(!cwd.path().join("data").exists(), "no data directory");
    }
}

/// The README's configuration table is what `statusmonitor --help` offers:
/// every flag of the help has a row, every row names a flag the binary has,
/// with the same environment variable.
#[test]
fn readme_configuration_table_matches_help() {
    use std::collections::BTreeMap;
    let out = run(&["--help"], Path::new("."));
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    // flag → environment variable, from the help's "Options:" section.
    let mut from_help: BTreeMap<String, Option<String>> = BTreeMap::new();
    let options = help.split("Options:").nth(1).expect("an Options section");
    let mut current: Option<String> = None;
    for line in options.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("--") {
            let flag = rest.split([' ', '=']).next().unwrap().to_string();
            from_help.insert(flag.clone(), None);
            current = Some(flag);
        } else if trimmed.starts_with('-') {
            // `-h, --help`, `-V, --version`: not settings.
            current = None;
        }
        if let (Some(flag), Some(at)) = (&current, line.find("[env: ")) {
            let env = line[at + 6..].split(['=', ']']).next().unwrap().to_string();
            from_help.insert(flag.clone(), Some(env));
        }
    }
    assert!(from_help.len() > 20, "parsed the help: {help}");

    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let table = readme
        .split("| flag | environment |")
        .nth(1)
        .expect("the configuration table");
    let mut from_readme: BTreeMap<String, Option<String>> = BTreeMap::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(|c| c.trim().trim_matches('`')).collect();
        let flag = cells[1]
            .strip_prefix("--")
            .unwrap_or_else(|| panic!("a flag in the first column: {row}"));
        let env = (cells[2] != "none" && !cells[2].is_empty()).then(|| cells[2].to_string());
        assert!(
            from_readme.insert(flag.to_string(), env).is_none(),
            "one row per flag: {flag}"
        );
    }
    for (flag, env) in &from_help {
        assert_eq!(
            from_readme.get(flag),
            Some(env),
            "--{flag}: help has env {env:?}, the README's table {:?}",
            from_readme.get(flag)
        );
    }
    for flag in from_readme.keys() {
        assert!(
            from_help.contains_key(flag),
            "the README's table names --{flag}, which --help does not have"
        );
    }
}
