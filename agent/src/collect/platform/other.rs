//! Other Unix systems (FreeBSD...): load average, few pseudo filesystems.

pub fn load_average() -> Option<[f64; 3]> {
    super::unix_load_average()
}

pub fn is_pseudo_fs(fs: &str, _mount: &str) -> bool {
    matches!(fs, "devfs" | "procfs" | "fdescfs" | "tmpfs" | "nullfs")
}

pub fn is_loopback(iface: &str) -> bool {
    iface.starts_with("lo")
}
