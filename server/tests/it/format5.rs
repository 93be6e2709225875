//! Data format 5 (the tsdb's version-3 aggregate blocks): a directory of
//! format 4, with aggregate blocks of version 2, opens, upgrades, serves its
//! aggregates, has them rewritten in the current version by the next
//! roll-up, and
//! checks, backs up and restores clean across the change.

use std::path::Path;

use axum::http::{Method, StatusCode};
use server::ops::format::DATA_FORMAT_VERSION;

use crate::common::{Session, T0, TestApp, cpu_points, report};
use crate::ops::{close, format_file, ingest, pack_dir, unpack};

/// The fixture of format 4: an admin `alice` and her agent `nas` with two
/// hours of reports at 5 s (T0 − 3 h to T0 − 1 h), sealed and rolled up
/// into 1 m and 1 h aggregate blocks of version 2.
const FORMAT_4_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/data-format-4.tar.zst"
);

/// Reports of the fixture and of the test (three hours before T0).
const START: i64 = T0 - 3 * 3_600_000;
const REPORTS: i64 = 3 * 720;
/// The fixture holds the first two hours; the test writes the third.
const IN_FIXTURE: i64 = 2 * 720;

/// A one-decimal random walk in [0, 100]: noisy like a core's load, so the
/// roll-up's integer layouts and entropy-coded columns are exercised.
fn walk_cpu(i: i64) -> f64 {
    let mut v = 500i64;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..=i {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        v = (v + ((x >> 33) % 121) as i64 - 60).clamp(0, 1000);
    }
    v as f64 / 10.0
}

fn expected() -> Vec<(i64, f64)> {
    // One pass instead of `walk_cpu` per point.
    let mut v = 500i64;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..REPORTS)
        .map(|i| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            v = (v + ((x >> 33) % 121) as i64 - 60).clamp(0, 1000);
            (START + i * 5_000, v as f64 / 10.0)
        })
        .collect()
}

async fn ingest_range(app: &TestApp, token: &str, from: i64, to: i64) {
    let all = expected();
    for chunk in all[from as usize..to as usize].chunks(360) {
        let reports = chunk.iter().map(|(ts, v)| report(*ts, *v)).collect();
        ingest(app, token, reports).await;
    }
}

/// `[ts, avg, min, max]` points as numbers.
async fn points(app: &TestApp, who: &Session, query: &str) -> Vec<[f64; 4]> {
    cpu_points(app, who, 1, query)
        .await
        .iter()
        .map(|p| {
            let n = |i: usize| p[i].as_f64().unwrap_or(f64::NAN);
            [n(0), n(1), n(2), n(3)]
        })
        .collect()
}

/// Checks the minute and hour aggregates of the first `upto` reports
/// against the samples.
async fn assert_aggregates(app: &TestApp, who: &Session, upto: i64) {
    let all = expected();
    for (tier, step) in [("1m", 60_000i64), ("1h", 3_600_000)] {
        let got = points(app, who, &format!("start=-4h&tier={tier}&max_points=1000")).await;
        let per = (step / 5_000) as usize;
        let want: Vec<[f64; 4]> = all[..upto as usize]
            .chunks(per)
            .map(|b| {
                let vals: Vec<f64> = b.iter().map(|p| p.1).collect();
                [
                    b[0].0 as f64,
                    vals.iter().sum::<f64>() / vals.len() as f64,
                    vals.iter().copied().fold(f64::INFINITY, f64::min),
                    vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                ]
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{tier}: {got:?}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g[0], w[0], "{tier} bucket time");
            assert!((g[1] - w[1]).abs() < 1e-9, "{tier} avg {g:?} vs {w:?}");
            assert_eq!((g[2], g[3]), (w[2], w[3]), "{tier} min/max at {}", w[0]);
        }
    }
}

/// Writes the format-4 fixture with the code of a format-4 release. Run by
/// hand on the release that defines the format:
/// `cargo test -p server --test it make_format_4_fixture -- --ignored`.
#[tokio::test]
#[ignore = "writes the fixture; run by hand on the release that defines the format"]
async fn make_format_4_fixture() {
    make_fixture(FORMAT_4_FIXTURE, 4).await;
}

/// Writes this release's fixture (`fixture`, data format `version`): two
/// hours of one agent, sealed and rolled up. Shared with later formats'
/// tests, whose fixtures hold the same data in their blocks.
pub(crate) async fn make_fixture(fixture: &str, version: u32) {
    let app = TestApp::new();
    let alice = app.register_and_login("alice").await;
    let (agent, token) = app.create_agent(&alice, "nas").await;
    assert_eq!(agent, 1);
    ingest_range(&app, &token, 0, IN_FIXTURE).await;
    app.clock.advance(10 * 60_000);
    app.state.engine().run_maintenance().unwrap();
    assert_aggregates(&app, &alice, IN_FIXTURE).await;
    let dir = close(app);
    assert_eq!(
        format_file(dir.path()),
        Some(format!("statusmonitor-data {version}\n"))
    );
    pack_dir(dir.path(), Path::new(fixture));
}

#[tokio::test]
async fn the_format_4_fixture_opens_upgrades_and_its_aggregates_are_rewritten() {
    fixture_opens_upgrades_and_its_aggregates_are_rewritten(FORMAT_4_FIXTURE, 4).await;
}

/// A fixture made by [`make_fixture`] with the code of data format
/// `version` opens, upgrades, reads its blocks back, has them rewritten in
/// the current version by a late hour's roll-up, checks clean, and backs up
/// and restores to the same aggregates.
pub(crate) async fn fixture_opens_upgrades_and_its_aggregates_are_rewritten(
    fixture: &str,
    version: u32,
) {
    assert_eq!(walk_cpu(3), expected()[3].1);
    let dir = tempfile::tempdir().unwrap();
    unpack(Path::new(fixture), dir.path());
    assert_eq!(
        format_file(dir.path()),
        Some(format!("statusmonitor-data {version}\n"))
    );
    let app = TestApp::on_dir(dir, T0 + 10 * 60_000);
    assert_eq!(
        format_file(app.dir.path()).as_deref(),
        Some(format!("statusmonitor-data {DATA_FORMAT_VERSION}\n").as_str()),
        "upgraded on open"
    );
    let alice = app.login("alice").await;
    // The older version's blocks read back as they were written.
    assert_aggregates(&app, &alice, IN_FIXTURE).await;

    // The third hour arrives late: the roll-up merges it into the same 6 h
    // block of minutes and 7 d block of hours, decoding the older block and
    // writing the current version.
    let nas_token = rotate_token(&app, &alice).await;
    ingest_range(&app, &nas_token, IN_FIXTURE, REPORTS).await;
    app.clock.advance(10 * 60_000);
    let engine = app.state.engine();
    tokio::task::spawn_blocking(move || engine.run_maintenance().map(|_| ()))
        .await
        .unwrap()
        .unwrap();
    assert_aggregates(&app, &alice, REPORTS).await;
    let raw = points(&app, &alice, "start=-4h&tier=5s&max_points=5000").await;
    assert_eq!(raw.len(), REPORTS as usize);

    // `check` is clean, and a backup restores to the same aggregates.
    let dir = close(app);
    let lock = server::datadir::DataDir::lock(dir.path()).unwrap();
    let report = server::ops::check::check_dir(lock.path());
    assert!(report.is_clean(), "{}", report.render());
    drop(lock);
    let app = TestApp::on_dir(dir, T0 + 20 * 60_000);
    let archive = app.dir.path().with_extension("upgraded.tar.zst");
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
    assert_eq!(manifest.data_format, DATA_FORMAT_VERSION);
    drop(close(app));
    let restored = tempfile::tempdir().unwrap();
    server::ops::backup::restore(&archive, restored.path(), false).unwrap();
    let _ = std::fs::remove_file(&archive);
    assert!(server::ops::check::check_dir(restored.path()).is_clean());
    let copy = TestApp::on_dir(restored, T0 + 20 * 60_000);
    let alice = copy.login("alice").await;
    assert_aggregates(&copy, &alice, REPORTS).await;
}

/// A new ingest token for agent 1 (the fixture's token is not kept).
async fn rotate_token(app: &TestApp, who: &Session) -> String {
    let r = app
        .call_as(who, Method::POST, "/api/agents/1/regenerate-token", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["token"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no token in {}", r.text))
}
