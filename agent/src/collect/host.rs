//! Host facts (hostname, OS, kernel, arch, CPU model, cores) and uptime.

use storage::model::wire::HostFacts;
use sysinfo::System;

/// Seconds since boot, `None` where the OS does not say.
pub(super) fn uptime() -> Option<u64> {
    System::uptime().ok().filter(|&u| u > 0)
}

/// Reads the facts; `system` must have its CPU list refreshed.
pub(super) fn facts(system: Option<&System>) -> HostFacts {
    let non_empty = |s: String| super::label(&s);
    let os = match (System::name().ok(), System::os_version().ok()) {
        (Some(n), Some(v)) if !v.is_empty() => Some(format!("{n} {v}")),
        (Some(n), _) => Some(n),
        (None, _) => System::long_os_version().ok(),
    };
    let cpus = system.map(System::cpus).unwrap_or_default();
    HostFacts {
        hostname: System::host_name()
            .ok()
            .and_then(non_empty)
            .unwrap_or_else(|| "unknown".to_owned()),
        os: os.and_then(non_empty),
        kernel: System::kernel_version().ok().and_then(non_empty),
        arch: non_empty(System::cpu_arch()),
        cpu_model: cpus.first().and_then(|c| non_empty(c.brand().to_owned())),
        cores: u32::try_from(cpus.len()).ok().filter(|&n| n > 0),
    }
}
