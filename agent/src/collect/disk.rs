//! Mounted real filesystems: size, used and available bytes as `df` shows
//! them, and read/write bytes per second.
//!
//! Space comes from `statvfs`: used = size − free blocks (`f_bfree`), so the
//! blocks reserved for root do not count as used, and available is
//! `f_bavail`; the percentage is used ÷ (used + available), like `df`'s. Where
//! `statvfs` is missing, sysinfo's size and available space stand in (used =
//! size − available).
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

/// What sysinfo reads of each mount: its I/O counters, and its space only
/// where this module cannot `statvfs` itself (on Unix it does, after the
/// filters, rather than sysinfo for every mount: a machine running
/// containers has dozens of overlay and shm mounts).
fn refresh_kind() -> DiskRefreshKind {
    let kind = DiskRefreshKind::nothing().with_io_usage();
    if cfg!(unix) {
        kind
    } else {
        kind.with_storage()
    }
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
            // Before statvfs: a machine running containers has two or
            // three pseudo mounts (overlay, shm, …) per container.
            if platform::is_pseudo_fs(&fs, mount)
                || !self.filter.mount_allowed(mount)
                || out.contains_key(mount)
            {
                continue;
            }
            let (total, used, available) = match platform::space(mount) {
                Some(s) if s.total > 0 => (
                    s.total,
                    s.total.saturating_sub(s.free),
                    s.available.min(s.free),
                ),
                _ => {
                    let (total, available) = (d.total_space(), d.available_space());
                    (total, total.saturating_sub(available), available)
                }
            };
            if total == 0 {
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
                    used_bytes: used,
                    available_bytes: Some(available),
                    read_bps: rates.map(|r| r[0]),
                    write_bps: rates.map(|r| r[1]),
                },
            );
        }
        self.io.end_round();
        out.into_values().take(super::MAX_ITEMS).collect()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    fn run(cmd: &mut Command) {
        let out = cmd.output().expect("run a command");
        assert!(out.status.success(), "{cmd:?}: {out:?}");
    }

    /// Unmounts on drop, also when an assertion fails.
    struct Mounted(PathBuf);

    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    /// `df`'s size, used and available bytes and its rounded-up percentage.
    fn df(mount: &Path) -> (u64, u64, u64, u64) {
        let out = Command::new("df")
            .args(["-B1", "--output=size,used,avail,pcent"])
            .arg(mount)
            .output()
            .expect("df");
        let text = String::from_utf8(out.stdout).expect("df prints UTF-8");
        let v: Vec<u64> = text
            .lines()
            .nth(1)
            .expect("a line of figures")
            .split_whitespace()
            .map(|f| f.trim_end_matches('%').parse().expect("df prints numbers"))
            .collect();
        (v[0], v[1], v[2], v[3])
    }

    /// On an ext4 filesystem with half its blocks reserved for root, the
    /// agent reports what `df` says: used = size − free (the reservation is
    /// not "used"), available on its own, and the same percentage.
    /// Needs root (mount); skipped with a message otherwise.
    #[test]
    fn disk_figures_match_df_on_an_ext4_with_half_reserved() {
        let uid = Command::new("id").arg("-u").output().expect("id -u").stdout;
        if String::from_utf8_lossy(&uid).trim() != "0" {
            eprintln!(
                "SKIPPED disk_figures_match_df_on_an_ext4_with_half_reserved: needs root to loop-mount"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("ext4.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "50"])
            .arg(&image));
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount));
        let _mounted = Mounted(mount.clone());
        // 8 MiB of data, on disk.
        std::fs::write(mount.join("data"), vec![7u8; 8 << 20]).unwrap();
        run(Command::new("sync").arg("-f").arg(&mount));

        let name = mount.to_str().unwrap().to_owned();
        let mut collector = DiskCollector::new(Filter {
            mounts: vec![name.clone()],
            ..Filter::default()
        });
        let disks = collector.collect(Instant::now());
        let d = disks
            .iter()
            .find(|d| d.mount == name)
            .unwrap_or_else(|| panic!("{name} not among {disks:?}"));
        let (size, used, avail, pcent) = df(&mount);
        assert_eq!(
            (d.total_bytes, d.used_bytes, d.available_bytes),
            (size, used, Some(avail))
        );
        assert!(used >= 8 << 20, "the data counts as used: {used}");
        // df rounds the percentage up.
        let pct = d.used_pct().unwrap();
        assert_eq!(pct.ceil() as u64, pcent, "{pct}");
        // The old figure (size − available) counted the reservation as used.
        let old = (size - avail) as f64 * 100.0 / size as f64;
        assert!(old > 50.0 && old - pct > 25.0, "{old} vs {pct}");
    }
}
