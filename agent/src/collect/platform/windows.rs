//! Windows: no load average; every listed volume is real storage.

/// Windows has no load average: left out of the report.
pub fn load_average() -> Option<[f64; 3]> {
    None
}

pub fn is_pseudo_fs(_fs: &str, _mount: &str) -> bool {
    false
}

pub fn is_loopback(iface: &str) -> bool {
    iface.starts_with("Loopback")
}
