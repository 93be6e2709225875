//! CPU: total and per-core usage (one decimal, as the kernel's tick counters
//! allow) and per-core current frequency in whole MHz.

use storage::model::wire::Cpu;
use sysinfo::System;

use super::round_to;

/// `None` when the OS lists no CPUs (usage unavailable). Usage covers the
/// time since the previous call.
pub(super) fn collect(system: &mut System) -> Option<Cpu> {
    system.refresh_cpu_usage();
    system.refresh_cpu_frequency();
    let cpus = system.cpus();
    if cpus.is_empty() {
        return None;
    }
    let pct = |v: f32| round_to(f64::from(v).clamp(0.0, 100.0), 1);
    let cores_mhz: Vec<u64> = cpus.iter().map(|c| c.frequency()).collect();
    Some(Cpu {
        total_pct: pct(system.global_cpu_usage()),
        cores_pct: cpus.iter().map(|c| pct(c.usage())).collect(),
        // 0 MHz means "unknown" to sysinfo: leave the whole list out, so the
        // list stays aligned with the cores.
        cores_mhz: if cores_mhz.contains(&0) {
            Vec::new()
        } else {
            cores_mhz
        },
    })
}
