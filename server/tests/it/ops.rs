//! Operations: the released data-directory formats (fixtures), online backup
//! and restore, `check`, corrupt chunks, the service files.

use std::path::Path;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use server::ops::format::DATA_FORMAT_VERSION;

use crate::common::{Session, T0, TestApp, cpu_points, report};

/// The fixture of format 1: the layout the first release wrote (no top-level
/// `FORMAT` file; `tsdb/FORMAT` 1; catalog records of version 1).
pub(crate) const FORMAT_1_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/data-format-1.tar.zst"
);

/// The fixture's reports: three hours at 5 s before `T0`.
const FIXTURE_REPORTS: i64 = 3 * 720;

fn fixture_cpu(i: i64) -> f64 {
    ((i * 7) % 1000) as f64 / 10.0
}

/// A CPU % of report `i` that no codec predicts (one decimal, 0 to 100).
fn noisy_cpu(i: i64) -> f64 {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) % 1001) as f64 / 10.0
}

pub(crate) async fn ingest(app: &TestApp, token: &str, reports: Vec<Value>) {
    let r = app
        .post(
            "/api/ingest",
            json!({ "host": { "hostname": "nas", "cores": 1 }, "reports": reports }),
            &[("x-agent-token", token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// `(ts, value)` of `cpu.total_pct` of `agent` from the history API.
async fn cpu(app: &TestApp, who: &Session, agent: u64, query: &str) -> Vec<(i64, f64)> {
    cpu_points(app, who, agent, query)
        .await
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// Packs every file of `dir` (but the lock) into a `.tar.zst` at `out`.
pub(crate) fn pack_dir(dir: &Path, out: &Path) {
    let file = std::fs::File::create(out).unwrap();
    let zst = zstd::Encoder::new(file, 19).unwrap();
    let mut tar = tar::Builder::new(zst);
    tar.follow_symlinks(false);
    let mut entries: Vec<_> = walk(dir);
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(dir).unwrap();
        if rel == Path::new(server::datadir::LOCK_FILE) {
            continue;
        }
        tar.append_path_with_name(&path, rel).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Writes the format-1 fixture with the code of the first release. Kept so
/// the fixture can be re-made from that release's tree; run by hand:
/// `cargo test -p server --test it make_format_1_fixture -- --ignored`.
#[tokio::test]
#[ignore = "writes the fixture; run by hand on the release that defines the format"]
async fn make_format_1_fixture() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    assert_eq!(agent, 1);
    let start = T0 - FIXTURE_REPORTS * 5_000;
    for batch in (0..FIXTURE_REPORTS).collect::<Vec<_>>().chunks(360) {
        let reports = batch
            .iter()
            .map(|&i| report(start + i * 5_000, fixture_cpu(i)))
            .collect();
        ingest(&app, &token, reports).await;
    }
    app.clock.advance(10 * 60_000);
    app.state.engine().run_maintenance().unwrap();
    app.state.flush().unwrap();
    let TestApp { dir, state, .. } = app;
    drop(state);
    pack_dir(dir.path(), Path::new(FORMAT_1_FIXTURE));
}

/// Unpacks a `.tar.zst` into `dir`.
pub(crate) fn unpack(archive: &Path, dir: &Path) {
    let file = std::fs::File::open(archive).unwrap();
    tar::Archive::new(zstd::Decoder::new(file).unwrap())
        .unpack(dir)
        .unwrap();
}

/// Closes the app's stores and hands back its directory.
pub(crate) fn close(app: TestApp) -> tempfile::TempDir {
    let TestApp { dir, state, .. } = app;
    state.flush().unwrap();
    drop(state);
    dir
}

pub(crate) fn format_file(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("FORMAT")).ok()
}

#[tokio::test]
async fn the_format_1_fixture_opens_upgrades_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    unpack(Path::new(FORMAT_1_FIXTURE), dir.path());
    assert_eq!(format_file(dir.path()), None, "format 1 has no FORMAT file");
    let app = TestApp::on_dir(dir, T0 + 10 * 60_000);
    assert_eq!(
        format_file(app.dir.path()).as_deref(),
        Some(format!("statusmonitor-data {DATA_FORMAT_VERSION}\n").as_str()),
        "upgraded on open"
    );
    let alice = app.login("alice").await;
    let r = app
        .call_as(&alice, Method::GET, "/api/agents/1", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["name"], "nas");

    let start = T0 - FIXTURE_REPORTS * 5_000;
    let expected: Vec<(i64, f64)> = (0..FIXTURE_REPORTS)
        .map(|i| (start + i * 5_000, fixture_cpu(i)))
        .collect();
    let raw = cpu(&app, &alice, 1, "start=-4h&tier=5s&max_points=5000").await;
    assert_eq!(raw, expected, "every raw sample, from sealed blocks");
    let hours = cpu(&app, &alice, 1, "start=-4h&tier=1h").await;
    assert_eq!(hours.len(), 3, "{hours:?}");
    for (h, (ts, avg)) in hours.iter().enumerate() {
        let want: f64 = expected[h * 720..(h + 1) * 720]
            .iter()
            .map(|p| p.1)
            .sum::<f64>()
            / 720.0;
        assert_eq!(*ts, start + h as i64 * 3_600_000);
        assert!((avg - want).abs() < 1e-6, "hour {h}: {avg} != {want}");
    }

    // Upgraded once: a second open finds the current format and the same data.
    let mut app = app;
    app.restart();
    let alice = app.login("alice").await;
    assert_eq!(
        cpu(&app, &alice, 1, "start=-4h&tier=5s&max_points=5000").await,
        expected
    );
}

#[test]
fn a_directory_of_a_newer_format_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    unpack(Path::new(FORMAT_1_FIXTURE), dir.path());
    std::fs::write(dir.path().join("FORMAT"), "statusmonitor-data 99\n").unwrap();
    let before = std::fs::read(dir.path().join("catalog.redb")).unwrap();
    let out = crate::cli::run(
        &[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("format 99") && err.contains("newer StatusMonitor"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("catalog.redb")).unwrap(),
        before
    );
    assert_eq!(
        format_file(dir.path()).as_deref(),
        Some("statusmonitor-data 99\n")
    );
}

/// Reports per agent in the ingest test: two hours at 5 s.
const INGEST_MAX: i64 = 1_440;

/// Ingests report `i` of agent `off` until `stop`, counting acknowledgements.
fn spawn_ingest(
    app: &TestApp,
    token: String,
    off: f64,
    acked: std::sync::Arc<std::sync::atomic::AtomicI64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    use std::sync::atomic::Ordering;
    let router = app.router();
    tokio::spawn(async move {
        use tower::ServiceExt;
        let start = T0 - 2 * 3_600_000;
        for i in 0..INGEST_MAX {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let body = json!({ "reports": [report(start + i * 5_000, off + (i % 40) as f64)] });
            let req = axum::http::Request::post("/api/ingest")
                .header("content-type", "application/json")
                .header("x-agent-token", &token)
                .body(axum::body::Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            let r = router.clone().oneshot(req).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            acked.store(i + 1, Ordering::SeqCst);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_backup_during_sustained_ingest_restores_to_one_point_in_time() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut agents = Vec::new();
    for (name, off) in [("a", 0.0), ("b", 50.0)] {
        let (id, token) = app.create_agent(&alice, name).await;
        let acked = Arc::new(AtomicI64::new(0));
        let task = spawn_ingest(&app, token.clone(), off, acked.clone(), stop.clone());
        agents.push((id, token, off, acked, task));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Both agents have 100 reports acknowledged (a task that sent all of its
    // reports first is done, not stalled; one that panicked has failed).
    while agents
        .iter()
        .any(|a| a.3.load(Ordering::SeqCst) < 100 && !a.4.is_finished())
    {
        assert!(std::time::Instant::now() < deadline, "ingest stalled");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before: Vec<i64> = agents.iter().map(|a| a.3.load(Ordering::SeqCst)).collect();
    let archive = app.dir.path().join("..").join(format!(
        "backup-{}.tar.zst",
        app.dir.path().file_name().unwrap().to_string_lossy()
    ));
    let s = app.state.clone();
    let path = archive.clone();
    let manifest = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::create(&path).unwrap();
        server::ops::backup::backup(
            &s.catalog,
            &s.engine(),
            s.data_dir.path(),
            s.clock.now_ms(),
            file,
        )
        .unwrap()
    })
    .await
    .unwrap();
    let after: Vec<i64> = agents.iter().map(|a| a.3.load(Ordering::SeqCst)).collect();
    // Ingest goes on after the backup, then stops.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.store(true, Ordering::SeqCst);
    for a in &mut agents {
        (&mut a.4).await.unwrap();
    }
    assert_eq!(manifest.data_format, DATA_FORMAT_VERSION);
    assert!(manifest.tsdb_entries > 0 && manifest.catalog_records > 0);

    let restored = tempfile::tempdir().unwrap();
    server::ops::backup::restore(&archive, restored.path(), false).unwrap();
    let _ = std::fs::remove_file(&archive);
    assert!(
        server::ops::check::check_dir(restored.path()).is_clean(),
        "a restored backup checks clean"
    );
    let copy = TestApp::on_dir(restored, T0);
    // The copy's first maintenance pass (it seals the windows of two hours
    // ago) is done before the copy is read: what is compared is the backup,
    // not a read racing that pass.
    let engine = copy.state.engine();
    tokio::task::spawn_blocking(move || engine.run_maintenance().map(|_| ()))
        .await
        .unwrap()
        .unwrap();
    let alice_copy = copy.login("alice").await;
    let start = T0 - 2 * 3_600_000;
    for (k, (id, token, off, _, _)) in agents.iter().enumerate() {
        let got = cpu(&copy, &alice_copy, *id, "start=-3h&tier=5s&max_points=5000").await;
        let n = got.len() as i64;
        // A prefix of what was sent: nothing missing in between, nothing half-written.
        let want: Vec<(i64, f64)> = (0..n)
            .map(|i| (start + i * 5_000, off + (i % 40) as f64))
            .collect();
        assert_eq!(got, want, "agent {id}");
        assert!(
            before[k] <= n && n <= after[k],
            "agent {id}: {n} reports in the backup, acknowledged {} before and {} after it",
            before[k],
            after[k]
        );
        // Every other series of those reports is there too.
        let r = copy
            .call_as(
                &alice_copy,
                Method::GET,
                &format!("/api/history/{id}/memory?start=-3h&tier=5s&max_points=5000"),
                None,
            )
            .await;
        let mem = r.body["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["metric"] == "mem.used_bytes")
            .unwrap()["points"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(mem as i64, n, "agent {id}: memory series");
        // The source at the backup point answers the same.
        let source = cpu(&app, &alice, *id, "start=-3h&tier=5s&max_points=5000").await;
        assert_eq!(&source[..n as usize], &got[..]);
        // The restored server takes the agent's token.
        let r = copy
            .post(
                "/api/ingest",
                json!({ "reports": [report(T0, 1.0)] }),
                &[("x-agent-token", token)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}

#[tokio::test]
async fn the_admin_downloads_a_backup_over_http_and_nobody_else_may() {
    use tower::ServiceExt;
    let app = TestApp::with_open_registration();
    let alice = app.register_and_login("alice").await;
    let bob = app.register_and_login("bob").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    let reports = (0..50)
        .map(|i| report(T0 - 600_000 + i * 5_000, i as f64))
        .collect();
    ingest(&app, &token, reports).await;

    let r = app
        .call_as(&bob, Method::POST, "/api/admin/backup", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.post("/api/admin/backup", json!({}), &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    let req = axum::http::Request::post("/api/admin/backup")
        .header("authorization", alice.bearer())
        .header("accept-encoding", "gzip")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.router().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zstd");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".tar.zst")
    );
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &bytes).unwrap();
    let restored = tempfile::tempdir().unwrap();
    server::ops::backup::restore(file.path(), restored.path(), false).unwrap();
    let copy = TestApp::on_dir(restored, T0);
    // The copy's first maintenance pass (it seals the windows of two hours
    // ago) is done before the copy is read: what is compared is the backup,
    // not a read racing that pass.
    let engine = copy.state.engine();
    tokio::task::spawn_blocking(move || engine.run_maintenance().map(|_| ()))
        .await
        .unwrap()
        .unwrap();
    let alice_copy = copy.login("alice").await;
    assert_eq!(
        cpu(&copy, &alice_copy, agent, "start=-1h&tier=5s").await,
        cpu(&app, &alice, agent, "start=-1h&tier=5s").await
    );
    assert_eq!(
        cpu(
            &copy,
            &alice_copy,
            agent,
            "start=-1h&tier=5s&max_points=5000"
        )
        .await
        .len(),
        50
    );
}

#[test]
fn the_server_unit_passes_systemd_analyze_verify() {
    // Not a skip: a missing tool must not pass for a verified unit.
    assert!(
        std::process::Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok(),
        "systemd-analyze is not installed: run `make setup-systemd` (Debian: apt-get install systemd)"
    );
    let shipped = include_str!("../../../packaging/systemd/statusmonitor.service");
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=statusmonitor",
        "ExecStart=/usr/local/bin/statusmonitor serve --data-dir /var/lib/statusmonitor",
    ] {
        assert!(shipped.lines().any(|l| l == line), "missing {line}");
    }
    let unit = shipped.replace(
        "ExecStart=/usr/local/bin/statusmonitor ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_statusmonitor")),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statusmonitor.service");
    std::fs::write(&path, unit).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify only warns about unknown keys and bad values: any output is a failure.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

/// The (only) table file of the raw partition holding `ts`.
fn raw_table(dir: &Path, ts: i64) -> std::path::PathBuf {
    let (_, path) = storage::tsdb::backup::keyspace_paths(&dir.join("tsdb"))
        .unwrap()
        .into_iter()
        .find(|(name, _)| {
            storage::tsdb::Tier::parse_partition(name).is_some_and(|(tier, a, b)| {
                tier == storage::tsdb::Tier::Raw5s && (a..b).contains(&ts)
            })
        })
        .expect("a raw partition");
    let tables = walk(&path.join("tables"));
    assert_eq!(tables.len(), 1, "{tables:?}");
    tables[0].clone()
}

#[tokio::test]
async fn a_flipped_byte_in_a_block_is_reported_by_check_and_costs_only_its_range() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let start = T0 - FIXTURE_REPORTS * 5_000;
    // Four agents' three hours of noisy values: raw blocks of a few KB, so
    // the raw table holds many of fjall's 4 KiB blocks.
    let mut agents = Vec::new();
    for name in ["a0", "a1", "a2", "a3"] {
        let (id, token) = app.create_agent(&alice, name).await;
        for batch in (0..FIXTURE_REPORTS).collect::<Vec<_>>().chunks(720) {
            let reports = batch
                .iter()
                .map(|&i| report(start + i * 5_000, noisy_cpu(i)))
                .collect();
            ingest(&app, &token, reports).await;
        }
        agents.push(id);
    }
    app.clock.advance(10 * 60_000);
    app.state.engine().run_maintenance().unwrap();
    let dir = close(app);

    // A typo is not a new, clean directory.
    let missing = dir.path().join("no-such-dir");
    let out = crate::cli::run(
        &["check", "--data-dir", missing.to_str().unwrap()],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(!missing.exists());

    // Clean first.
    let out = crate::cli::run(
        &["check", "--data-dir", dir.path().to_str().unwrap()],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("no damage found"), "{stdout}");

    // One byte of the first data block of the raw partition's table: agent
    // one's first hour.
    let table = raw_table(dir.path(), start);
    let mut bytes = std::fs::read(&table).unwrap();
    bytes[100] ^= 0x55;
    std::fs::write(&table, bytes).unwrap();

    let out = crate::cli::run(
        &["check", "--data-dir", dir.path().to_str().unwrap()],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("damage found"), "{stderr}");
    assert!(stdout.contains("DAMAGE"), "{stdout}");
    let damaged: Vec<&str> = stdout.lines().filter(|l| l.contains("agent ")).collect();
    assert!(
        damaged.iter().any(|l| l.contains("raw.")
            && l.contains(&format!("agent {}, tier 5s, window {start}..", agents[0]))),
        "names the file, agent, tier and hour: {stdout}"
    );
    // The (agent, window) pairs check named: one table block (4 KiB of
    // compressed raw blocks) may hold several hours, of more than one agent.
    let lost: Vec<(u64, i64)> = damaged
        .iter()
        .filter_map(|l| {
            let agent = l.split("agent ").nth(1)?.split(',').next()?.parse().ok()?;
            let window = l
                .split(", window ")
                .nth(1)?
                .split("..")
                .next()?
                .parse()
                .ok()?;
            Some((agent, window))
        })
        .collect();
    assert!(lost.contains(&(agents[0], start)), "{lost:?}");
    assert!(
        lost.len() <= agents.len() * 3 / 2 && !lost.iter().any(|(a, _)| *a == agents[3]),
        "one flipped byte costs a table block, not every hour: {lost:?}"
    );

    // The server opens and answers; only the damaged hours are missing.
    let app = TestApp::on_dir(dir, T0 + 10 * 60_000);
    let alice = app.login("alice").await;
    let expected: Vec<(i64, f64)> = (0..FIXTURE_REPORTS)
        .map(|i| (start + i * 5_000, noisy_cpu(i)))
        .collect();
    let q = "start=-4h&tier=5s&max_points=5000";
    for agent in &agents {
        let got = cpu(&app, &alice, *agent, q).await;
        let want: Vec<(i64, f64)> = expected
            .iter()
            .copied()
            .filter(|(ts, _)| !lost.contains(&(*agent, ts - ts.rem_euclid(3_600_000))))
            .collect();
        assert!(
            got == want,
            "agent {agent}: {} points, want {} (lost {lost:?})",
            got.len(),
            want.len()
        );
    }
    // Longer ranges (aggregate tiers) still answer too.
    assert_eq!(
        cpu(&app, &alice, agents[0], "start=-4h&tier=1h")
            .await
            .len(),
        3
    );
}

/// An archive with this manifest and nothing else.
fn archive_with_manifest(path: &Path, manifest: &Value) {
    let file = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(zstd::Encoder::new(file, 3).unwrap());
    let json = serde_json::to_vec(manifest).unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, "MANIFEST.json", json.as_slice())
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn backup_and_restore_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap();
    let (mut server, port) = crate::cli::start(&["--data-dir", data_s], tmp.path());
    let url = format!("http://127.0.0.1:{port}");
    ureq::post(&format!("{url}/api/auth/register"))
        .send_json(json!({ "username": "alice", "password": crate::common::PASSWORD }))
        .unwrap();
    let mut r = ureq::post(&format!("{url}/api/auth/token"))
        .send_json(json!({ "username": "alice", "password": crate::common::PASSWORD }))
        .unwrap();
    let body: Value = r.body_mut().read_json().unwrap();
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let mut r = ureq::post(&format!("{url}/api/agents"))
        .header("authorization", &bearer)
        .send_json(json!({ "name": "nas" }))
        .unwrap();
    let created: Value = r.body_mut().read_json().unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let reports: Vec<Value> = (0..20)
        .map(|i| report(now - 100_000 + i * 5_000, i as f64))
        .collect();
    ureq::post(&format!("{url}/api/ingest"))
        .header("x-agent-token", &token)
        .send_json(json!({ "reports": reports }))
        .unwrap();

    // From the running server, through its control socket.
    let online = tmp.path().join("online.tar.zst");
    let online_s = online.to_str().unwrap();
    let out = crate::cli::run(
        &["backup", "--data-dir", data_s, "--to", online_s],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backup of"));
    // It never overwrites a file.
    let out = crate::cli::run(
        &["backup", "--data-dir", data_s, "--to", online_s],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));

    server.kill().unwrap();
    server.wait().unwrap();

    // From the stopped server's directory, directly.
    let offline = tmp.path().join("offline.tar.zst");
    let out = crate::cli::run(
        &[
            "backup",
            "--data-dir",
            data_s,
            "--to",
            offline.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Restore into a fresh directory, and the server runs on it.
    let copy = tmp.path().join("copy");
    let copy_s = copy.to_str().unwrap();
    let out = crate::cli::run(
        &["restore", "--from", online_s, "--data-dir", copy_s],
        tmp.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("no damage found"), "{stdout}");

    // An occupied directory is refused, and left as it is.
    let before = std::fs::read(copy.join("catalog.redb")).unwrap();
    let out = crate::cli::run(
        &[
            "restore",
            "--from",
            offline.to_str().unwrap(),
            "--data-dir",
            copy_s,
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not empty") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(copy.join("catalog.redb")).unwrap(), before);
    // --force replaces it.
    let out = crate::cli::run(
        &[
            "restore",
            "--from",
            offline.to_str().unwrap(),
            "--data-dir",
            copy_s,
            "--force",
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Foreign versions and non-backups are refused before anything is touched.
    let manifest = |backup_version: u32, data_format: u32| {
        json!({ "kind": "statusmonitor-backup", "backup_version": backup_version,
                "data_format": data_format, "tsdb_format": 1, "catalog_record_version": 1,
                "created_ms": 0, "created_by": "9.9.9 (future)",
                "catalog_records": 0, "tsdb_entries": 0 })
    };
    let fresh = tmp.path().join("fresh");
    for (m, expect) in [
        (manifest(2, 2), "backup format 2 is unknown"),
        (manifest(1, 99), "restore it with a newer version"),
        (json!({ "hello": 1 }), "manifest is unreadable"),
    ] {
        let foreign = tmp.path().join("foreign.tar.zst");
        archive_with_manifest(&foreign, &m);
        let out = crate::cli::run(
            &[
                "restore",
                "--from",
                foreign.to_str().unwrap(),
                "--data-dir",
                fresh.to_str().unwrap(),
            ],
            tmp.path(),
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{expect}: {err}");
        assert!(!fresh.exists(), "nothing created");
    }
    let out = crate::cli::run(
        &[
            "restore",
            "--from",
            copy.join("catalog.redb").to_str().unwrap(),
            "--data-dir",
            fresh.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(!fresh.exists(), "nothing created");

    // The restored directory serves the data.
    let (mut server, port) = crate::cli::start(&["--data-dir", copy_s], tmp.path());
    let url = format!("http://127.0.0.1:{port}");
    let mut r = ureq::post(&format!("{url}/api/auth/token"))
        .send_json(json!({ "username": "alice", "password": crate::common::PASSWORD }))
        .unwrap();
    let body: Value = r.body_mut().read_json().unwrap();
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let agent = created["agent"]["id"].as_u64().unwrap();
    let mut r = ureq::get(&format!("{url}/api/history/{agent}/cpu?start=-10m&tier=5s"))
        .header("authorization", &bearer)
        .call()
        .unwrap();
    let h: Value = r.body_mut().read_json().unwrap();
    let points = crate::common::cpu_series_points(&h);
    assert_eq!(points, 20);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The fixture of format 3: the layout before accounts could be managed
/// (catalog records of version 1, `session_keys`), with an admin `alice`, a
/// user `bob`, an agent `nas` of alice's with an hour of reports and a rule.
const FORMAT_3_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/data-format-3.tar.zst"
);

/// Writes the format-3 fixture with the code of a format-3 release. Run by
/// hand on the release that defines the format:
/// `cargo test -p server --test it make_format_3_fixture -- --ignored`.
#[tokio::test]
#[ignore = "writes the fixture; run by hand on the release that defines the format"]
async fn make_format_3_fixture() {
    let app = TestApp::with_open_registration();
    let alice = app.register_and_login("alice").await;
    let _bob = app.register_and_login("bob").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    assert_eq!(agent, 1);
    let start = T0 - 720 * 5_000;
    let reports = (0..720)
        .map(|i| report(start + i * 5_000, fixture_cpu(i)))
        .collect();
    ingest(&app, &token, reports).await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/rules",
            Some(json!({ "agent_id": agent, "metric": "cpu_pct", "comparison": "gt", "threshold": 90 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.state.flush().unwrap();
    let TestApp { dir, state, .. } = app;
    drop(state);
    assert_eq!(
        format_file(dir.path()).as_deref(),
        Some("statusmonitor-data 3\n")
    );
    pack_dir(dir.path(), Path::new(FORMAT_3_FIXTURE));
}

#[tokio::test]
async fn the_format_3_fixture_opens_upgrades_and_its_accounts_can_be_managed() {
    let dir = tempfile::tempdir().unwrap();
    unpack(Path::new(FORMAT_3_FIXTURE), dir.path());
    assert_eq!(
        format_file(dir.path()).as_deref(),
        Some("statusmonitor-data 3\n")
    );
    let mut app = TestApp::on_dir(dir, T0 + 60_000);
    assert_eq!(
        format_file(app.dir.path()).as_deref(),
        Some(format!("statusmonitor-data {DATA_FORMAT_VERSION}\n").as_str()),
        "upgraded on open"
    );
    // Version-1 user records read as enabled accounts that never logged in.
    let alice = app.login("alice").await;
    let r = app
        .call_as(&alice, Method::GET, "/api/admin/users", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let names: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(r.body[0]["agent_count"], 1);
    assert_eq!(r.body[0]["last_login_ms"], T0 + 60_000);
    assert_eq!(r.body[1]["last_login_ms"], Value::Null);
    assert_eq!(r.body[1]["disabled"], false);
    let bob = app.login("bob").await;
    // A version-1 agent record reads back whole; its data and rule are there.
    let r = app
        .call_as(&alice, Method::GET, "/api/agents/1", None)
        .await;
    assert_eq!(r.body["name"], "nas");
    assert_eq!(r.body["host"]["hostname"], "nas");
    let raw = cpu(&app, &alice, 1, "start=-2h&tier=5s&max_points=5000").await;
    assert_eq!(raw.len(), 720);
    let r = app.call_as(&alice, Method::GET, "/api/rules", None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.text);
    // Disabling rewrites bob as a version-2 record, which survives a restart.
    let r = app
        .call_as(
            &alice,
            Method::PATCH,
            &format!("/api/admin/users/{}", bob.user_id),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.restart();
    assert_eq!(
        app.login_reply("bob", crate::common::PASSWORD).await.status,
        StatusCode::FORBIDDEN
    );
    let dir = close(app);
    let dir_lock = server::datadir::DataDir::lock(dir.path()).unwrap();
    let report = server::ops::check::check_dir(dir_lock.path());
    assert!(report.is_clean(), "{}", report.render());
}

/// The fixture of format 4: an account with an agent, its reports, a rule,
/// and an uptime check with an alert rule (made before agent-run checks).
const FORMAT_4_CHECKS_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/data-format-4-checks.tar.zst"
);

/// Writes the format-4 fixture with the code of a format-4 release. Run by
/// hand on the release that defines the format:
/// `cargo test -p server --test it make_format_4_checks_fixture -- --ignored`.
#[tokio::test]
#[ignore = "writes the fixture; run by hand on the release that defines the format"]
async fn make_format_4_checks_fixture() {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    assert_eq!(agent, 1);
    let start = T0 - 720 * 5_000;
    let reports = (0..720)
        .map(|i| report(start + i * 5_000, fixture_cpu(i)))
        .collect();
    ingest(&app, &token, reports).await;
    let r = app
        .call_as(
            &alice,
            Method::POST,
            "/api/checks",
            Some(json!({ "name": "router", "kind": "tcp", "target": "192.0.2.1:80" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let check = r.body["id"].as_u64().unwrap();
    let r = app
        .call_as(
            &alice,
            Method::POST,
            &format!("/api/checks/{check}/rules"),
            Some(json!({ "metric": "check_down" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.state.flush().unwrap();
    let TestApp { dir, state, .. } = app;
    drop(state);
    assert_eq!(
        format_file(dir.path()).as_deref(),
        Some("statusmonitor-data 4\n")
    );
    pack_dir(dir.path(), Path::new(FORMAT_4_CHECKS_FIXTURE));
}

#[tokio::test]
async fn the_format_4_fixture_opens_upgrades_and_its_check_can_move_to_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    unpack(Path::new(FORMAT_4_CHECKS_FIXTURE), dir.path());
    assert_eq!(
        format_file(dir.path()).as_deref(),
        Some("statusmonitor-data 4\n")
    );
    let mut app = TestApp::on_dir(dir, T0 + 60_000);
    assert_eq!(
        format_file(app.dir.path()).as_deref(),
        Some(format!("statusmonitor-data {DATA_FORMAT_VERSION}\n").as_str()),
        "upgraded on open"
    );
    let alice = app.login("alice").await;
    let raw = cpu(&app, &alice, 1, "start=-2h&tier=5s&max_points=5000").await;
    assert_eq!(raw.len(), 720);
    let r = app.call_as(&alice, Method::GET, "/api/checks", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let check = &r.body[0];
    assert_eq!(check["spec"]["name"], "router");
    assert_eq!(
        check["runner"],
        Value::Null,
        "format-4 checks run on the server"
    );
    let id = check["id"].as_u64().unwrap();
    let r = app
        .call_as(
            &alice,
            Method::GET,
            &format!("/api/checks/{id}/rules"),
            None,
        )
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.text);
    // The new table takes an assignment, which survives a restart.
    let r = app
        .call_as(
            &alice,
            Method::PUT,
            &format!("/api/checks/{id}"),
            Some(json!({ "name": "router", "kind": "tcp", "target": "192.0.2.1:80", "runner": 1 })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.restart();
    let alice = app.login("alice").await;
    let r = app
        .call_as(&alice, Method::GET, &format!("/api/checks/{id}"), None)
        .await;
    assert_eq!(r.body["runner"], 1, "{}", r.text);
}
