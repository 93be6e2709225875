//! `statusmonitor check`: integrity of a data directory that no server holds.

use std::fmt::Write as _;
use std::path::Path;

use storage::catalog::CATALOG_FILE;
use storage::catalog::backup::{CatalogCheck, check_file};
use storage::tsdb::backup::TsdbCheck;

use super::format::{DATA_FORMAT_VERSION, read_version};

/// What [`check_dir`] found.
#[derive(Debug, Default)]
pub struct Report {
    pub format: Option<u32>,
    pub catalog: CatalogCheck,
    pub tsdb: TsdbCheck,
    /// Problems outside the two stores, and stores that would not open.
    pub problems: Vec<String>,
}

impl Report {
    /// Every damaged place, one line each.
    pub fn damage(&self) -> Vec<String> {
        let mut out = self.problems.clone();
        out.extend(
            self.catalog
                .problems
                .iter()
                .map(|p| format!("{CATALOG_FILE}: {p}")),
        );
        out.extend(self.tsdb.damage.iter().map(|d| format!("tsdb: {d}")));
        out
    }

    pub fn is_clean(&self) -> bool {
        self.damage().is_empty()
    }

    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "format: {}",
            self.format
                .map_or("none (empty directory)".into(), |v| v.to_string())
        );
        let _ = writeln!(s, "catalog: {} records", self.catalog.records);
        let _ = writeln!(
            s,
            "time series: {} keyspaces, {} series, {} unsealed rows, {} blocks",
            self.tsdb.keyspaces, self.tsdb.series, self.tsdb.head_rows, self.tsdb.blocks
        );
        let damage = self.damage();
        if damage.is_empty() {
            s.push_str("no damage found\n");
        } else {
            let _ = writeln!(s, "DAMAGE ({} places):", damage.len());
            for d in damage {
                let _ = writeln!(s, "  {d}");
            }
        }
        s
    }
}

/// Checks the data directory at `dir`, which the caller has locked.
pub fn check_dir(dir: &Path) -> Report {
    let mut report = Report::default();
    match read_version(dir) {
        Ok(v) => {
            report.format = v;
            if v.is_some_and(|v| v > DATA_FORMAT_VERSION) {
                report
                    .problems
                    .push(format!("format {v:?} is newer than this binary reads"));
                return report;
            }
        }
        Err(e) => report.problems.push(format!("{e:#}")),
    }
    let catalog = dir.join(CATALOG_FILE);
    if catalog.exists() {
        match check_file(&catalog) {
            Ok(c) => report.catalog = c,
            Err(e) => report.problems.push(format!("{CATALOG_FILE}: {e}")),
        }
    }
    let tsdb = dir.join("tsdb");
    if tsdb.exists() {
        match storage::tsdb::backup::check(&tsdb) {
            Ok(t) => report.tsdb = t,
            Err(e) => report.problems.push(format!("tsdb: {e}")),
        }
    }
    report
}
