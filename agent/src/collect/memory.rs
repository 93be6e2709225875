//! Memory and swap in bytes. Swap is left out on machines without any.

use storage::model::wire::Memory;
use sysinfo::{MemoryRefreshKind, System};

pub(super) fn collect(system: &mut System) -> Option<Memory> {
    system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
    let total = system.total_memory();
    if total == 0 {
        return None;
    }
    let swap_total = system.total_swap();
    let has_swap = swap_total > 0;
    Some(Memory {
        total_bytes: total,
        used_bytes: system.used_memory(),
        available_bytes: Some(system.available_memory()).filter(|&a| a > 0),
        swap_total_bytes: has_swap.then_some(swap_total),
        swap_used_bytes: has_swap.then(|| system.used_swap()),
    })
}
