//! Mounted real filesystems: total/used bytes and read/write bytes per second.
//!
//! The mount list is re-read every tick (mounts come and go); pseudo
//! filesystems are skipped ([`super::platform::is_pseudo_fs`]) as are mounts
//! the [`Filter`] rejects. I/O counters are per device, so two mounts of one
//! device report the same rates. A device whose counters are unknown (both
//! zero, e.g. an overlay root in a container) has no rates rather than zeros.

use std::collections::BTreeMap;
use std::time::Instant;

use storage::model::wire::Disk;
use sysinfo::{DiskRefreshKind, Disks};

use super::Filter;
use super::platform;
use super::rate::Rates;

pub(super) struct DiskCollector {
    disks: Option<Disks>,
    filter: Filter,
    io: Rates<2>,
}

fn refresh_kind() -> DiskRefreshKind {
    DiskRefreshKind::nothing().with_storage().with_io_usage()
}

impl DiskCollector {
    pub(super) fn new(filter: Filter) -> Self {
        let disks = Disks::new_with_refreshed_list_specifics(refresh_kind()).ok();
        if disks.is_none() {
            tracing::info!("disk metrics are not available on this OS");
        }
        Self {
            disks,
            filter,
            io: Rates::new(),
        }
    }

    pub(super) fn collect(&mut self, now: Instant) -> Vec<Disk> {
        let Some(disks) = self.disks.as_mut() else {
            return Vec::new();
        };
        disks.refresh_specifics(true, refresh_kind());
        // Keyed by mount point: sorted output, and a mount listed twice counts once.
        let mut out = BTreeMap::new();
        for d in disks.iter() {
            let Some(mount) = d.mount_point().to_str().and_then(super::label) else {
                continue;
            };
            let mount = mount.as_str();
            let fs = d.file_system().to_string_lossy();
            let total = d.total_space();
            if total == 0
                || platform::is_pseudo_fs(&fs, mount)
                || !self.filter.mount_allowed(mount)
                || out.contains_key(mount)
            {
                continue;
            }
            let usage = d.usage();
            let counters = [usage.total_read_bytes, usage.total_written_bytes];
            let rates = if counters == [0, 0] {
                None
            } else {
                self.io.update(mount, counters, now)
            };
            out.insert(
                mount.to_owned(),
                Disk {
                    mount: mount.to_owned(),
                    total_bytes: total,
                    used_bytes: total.saturating_sub(d.available_space()),
                    read_bps: rates.map(|r| r[0]),
                    write_bps: rates.map(|r| r[1]),
                },
            );
        }
        self.io.end_round();
        out.into_values().take(super::MAX_ITEMS).collect()
    }
}
