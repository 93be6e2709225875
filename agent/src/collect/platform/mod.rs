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

/// Load average rounded to the two decimals the kernel reports.
#[cfg(unix)]
fn unix_load_average() -> Option<[f64; 3]> {
    let l = sysinfo::System::load_average().ok()?;
    let r = |v: f64| super::round_to(v, 2);
    Some([r(l.one), r(l.five), r(l.fifteen)])
}
