//! Operations: the released data-directory formats (fixtures), online backup
//! and restore, `check`, corrupt chunks, the service files.

use std::path::Path;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Session, T0, TestApp};

/// The fixture of format 1: the layout the first release wrote (no top-level
/// `FORMAT` file; `tsdb/FORMAT` 1; catalog records of version 1).
const FORMAT_1_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/data-format-1.tar.zst"
);

/// The fixture's reports: three hours at 5 s before `T0`.
const FIXTURE_REPORTS: i64 = 3 * 720;

fn fixture_cpu(i: i64) -> f64 {
    ((i * 7) % 1000) as f64 / 10.0
}

fn report(ts: i64, cpu: f64) -> Value {
    json!({
        "ts_ms": ts,
        "interval_ms": 5000,
        "cpu": { "total_pct": cpu, "cores_pct": [cpu], "cores_mhz": [3400] },
        "load": [0.5, 0.4, 0.3],
        "memory": { "total_bytes": 16_000_000_000u64, "used_bytes": 8_000_000_000u64,
                    "available_bytes": 8_000_000_000u64, "swap_total_bytes": 0,
                    "swap_used_bytes": 0 },
        "disks": [ { "mount": "/", "total_bytes": 500_000_000_000u64, "used_bytes": 200_000_000_000u64,
                     "read_bps": 1024, "write_bps": 20480 } ],
        "networks": [ { "iface": "eth0", "rx_bps": 120000, "tx_bps": 64000 } ],
        "uptime_s": 86400
    })
}

async fn ingest(app: &TestApp, token: &str, reports: Vec<Value>) {
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
    let r = app
        .call_as(
            who,
            Method::GET,
            &format!("/api/history/{agent}/cpu?{query}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"] == "cpu.total_pct")
        .map(|s| {
            s["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// Packs every file of `dir` (but the lock) into a `.tar.zst` at `out`.
fn pack_dir(dir: &Path, out: &Path) {
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
    app.state.engine.run_maintenance().unwrap();
    app.state.flush().unwrap();
    let TestApp { dir, state, .. } = app;
    drop(state);
    pack_dir(dir.path(), Path::new(FORMAT_1_FIXTURE));
}
