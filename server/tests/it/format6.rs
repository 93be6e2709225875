//! Data format 6 (the tsdb's version-4 aggregate blocks, head rows as scaled
//! integers): a directory of format 5, with aggregate blocks of version 3,
//! opens, upgrades, serves its aggregates, has them rewritten in version 4
//! by the next roll-up, and checks, backs up and restores clean across the
//! change. The data and the steps are those of `format5`.

use crate::format5::{fixture_opens_upgrades_and_its_aggregates_are_rewritten, make_fixture};

/// The fixture of format 5: an admin `alice` and her agent `nas` with two
/// hours of reports at 5 s (T0 − 3 h to T0 − 1 h), sealed and rolled up
/// into 1 m and 1 h aggregate blocks of version 3.
const FORMAT_5_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/data-format-5.tar.zst"
);

/// Writes the format-5 fixture with the code of a format-5 release. Run by
/// hand on the release that defines the format:
/// `cargo test -p server --test it make_format_5_fixture -- --ignored`.
#[tokio::test]
#[ignore = "writes the fixture; run by hand on the release that defines the format"]
async fn make_format_5_fixture() {
    make_fixture(FORMAT_5_FIXTURE, 5).await;
}

#[tokio::test]
async fn the_format_5_fixture_opens_upgrades_and_its_aggregates_are_rewritten() {
    fixture_opens_upgrades_and_its_aggregates_are_rewritten(FORMAT_5_FIXTURE, 5).await;
}
