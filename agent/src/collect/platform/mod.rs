//! What differs per OS: load average, pseudo filesystems, loopback names.
//! One file per OS, chosen with `cfg(target_os)`, all with the same functions.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::*;

#[cfg(target_os = "windows")]
mod windows;
#[cfg(target_os = "windows")]
pub use windows::*;

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod other;
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
pub use other::*;

/// A filesystem's space as `statvfs` gives it, in bytes: what `df` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Size (`f_blocks`).
    pub total: u64,
    /// Free blocks, including those reserved for root (`f_bfree`).
    pub free: u64,
    /// What an unprivileged user can still write (`f_bavail`).
    pub available: u64,
}

/// The space of the filesystem mounted at `mount`; `None` where `statvfs`
/// fails or does not exist.
#[cfg(unix)]
pub fn space(mount: &str) -> Option<Space> {
    let s = rustix::fs::statvfs(mount).ok()?;
    let unit = if s.f_frsize > 0 {
        s.f_frsize
    } else {
        s.f_bsize
    };
    Some(Space {
        total: s.f_blocks.checked_mul(unit)?,
        free: s.f_bfree.checked_mul(unit)?,
        available: s.f_bavail.checked_mul(unit)?,
    })
}

#[cfg(not(unix))]
pub fn space(_mount: &str) -> Option<Space> {
    None
}

/// Load average rounded to the two decimals the kernel reports.
#[cfg(unix)]
fn unix_load_average() -> Option<[f64; 3]> {
    let l = sysinfo::System::load_average().ok()?;
    let r = |v: f64| super::round_to(v, 2);
    Some([r(l.one), r(l.five), r(l.fifteen)])
}
