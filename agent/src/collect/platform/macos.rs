//! macOS: load from the kernel, APFS system volumes that are not user data.

/// Load average 1/5/15 minutes.
pub fn load_average() -> Option<[f64; 3]> {
    super::unix_load_average()
}

pub fn is_pseudo_fs(fs: &str, mount: &str) -> bool {
    matches!(fs, "devfs" | "autofs" | "nullfs")
        || matches!(
            mount,
            "/System/Volumes/VM"
                | "/System/Volumes/Preboot"
                | "/System/Volumes/Update"
                | "/System/Volumes/xarts"
                | "/System/Volumes/iSCPreboot"
                | "/System/Volumes/Hardware"
                | "/private/var/vm"
        )
}

pub fn is_loopback(iface: &str) -> bool {
    iface == "lo0"
}
