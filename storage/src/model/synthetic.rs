//! A synthetic machine: what `statusmonitor-agent simulate` sends and what
//! the benchmarks (the engine's, the server's footprint run) store, so every
//! figure measured on "the benchmark's workload" is measured on one model.
//!
//! Each metric is a bounded random walk, at the precision the real agent
//! reports it with: percentages with 1 decimal, load averages with 2 (the
//! 5 and 15 minute ones following the 1 minute one as the kernel's moving
//! averages do), memory and disk usage in whole 4 KiB pages, rates and MHz
//! as integers. Disk I/O is bursty: idle in most reports, then a walk.

use super::wire::{Container, Cpu, Disk, HostFacts, Memory, Network, Report};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;
/// Cores of every synthetic machine.
pub const CORES: usize = 8;

/// splitmix64: a small deterministic generator, no dependency (also the
/// benchmarks' jitter and picks).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn sym(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// One bounded random-walk step from `v`.
    fn walk(&mut self, v: f64, step: f64, lo: f64, hi: f64) -> f64 {
        (v + self.sym() * step).clamp(lo, hi)
    }
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

/// Bytes in whole 4 KiB pages, as the kernel counts memory and most file
/// systems count blocks.
fn pages(v: f64) -> u64 {
    ((v / 4096.0).round() * 4096.0) as u64
}

/// One synthetic machine: 8 cores, 2 mounts, 2 interfaces (38 series), and
/// optionally containers (9 series each).
pub struct Machine {
    rng: Rng,
    cpu: f64,
    cores: [f64; CORES],
    mhz: [f64; CORES],
    load: [f64; 3],
    mem_used: f64,
    mem_cache: f64,
    swap_used: f64,
    disk_used: [f64; 2],
    disk_io: [[f64; 2]; 2],
    net: [[f64; 2]; 2],
    uptime_s: u64,
    /// Per container: CPU %, memory used, rx, tx, block read, block write.
    containers: Vec<[f64; 6]>,
}

impl Machine {
    /// Machine `seed`'s host facts (`sim-00042`).
    pub fn facts(seed: u64) -> HostFacts {
        HostFacts {
            hostname: format!("sim-{seed:05}"),
            os: Some("Debian GNU/Linux 12".into()),
            kernel: Some("6.1.0-sim".into()),
            arch: Some("x86_64".into()),
            cpu_model: Some("Simulated 8-core CPU".into()),
            cores: Some(CORES as u32),
        }
    }

    /// Machine `seed` (its walks are seeded by it) running `containers`.
    pub fn new(seed: u64, containers: usize) -> Machine {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xDEAD_BEEF);
        let base = 5.0 + rng.sym().abs() * 40.0;
        Machine {
            cpu: base,
            cores: [base; CORES],
            mhz: [2400.0; CORES],
            load: [1.0; 3],
            mem_used: 6.0 * GIB,
            mem_cache: 4.0 * GIB,
            swap_used: 128.0 * MIB,
            disk_used: [120.0 * GIB, 900.0 * GIB],
            disk_io: [[0.0; 2]; 2],
            net: [[200_000.0, 50_000.0], [4_000.0, 4_000.0]],
            uptime_s: 86_400 * (1 + rng.next_u64() % 100),
            containers: vec![[2.0, 200.0 * MIB, 5_000.0, 2_000.0, 0.0, 0.0]; containers],
            rng,
        }
    }

    /// The next report (one step of every walk), stamped `ts_ms`, `interval_ms`
    /// after the previous one.
    pub fn report(&mut self, ts_ms: i64, interval_ms: u32) -> Report {
        let secs = f64::from(interval_ms) / 1000.0;
        let r = &mut self.rng;
        self.cpu = r.walk(self.cpu, 3.0, 0.0, 100.0);
        for c in &mut self.cores {
            *c = r.walk(*c, 6.0, 0.0, 100.0);
        }
        for m in &mut self.mhz {
            *m = r.walk(*m, 150.0, 800.0, 4500.0);
        }
        self.load[0] = r.walk(self.load[0], 0.15, 0.0, 16.0);
        self.load[1] += (self.load[0] - self.load[1]) / 60.0;
        self.load[2] += (self.load[0] - self.load[2]) / 180.0;
        self.mem_used = r.walk(self.mem_used, 8.0 * MIB, 2.0 * GIB, 12.0 * GIB);
        self.mem_cache = r.walk(self.mem_cache, 2.0 * MIB, 1.0 * GIB, 3.5 * GIB);
        if r.chance(0.01) {
            self.swap_used = r.walk(self.swap_used, 4.0 * MIB, 0.0, 2.0 * GIB);
        }
        for d in 0..2 {
            for k in 0..2 {
                self.disk_io[d][k] = if r.chance(0.6) {
                    0.0
                } else {
                    r.walk(self.disk_io[d][k].max(50_000.0), 2_000_000.0, 0.0, 200e6)
                };
            }
            // 1 % of what is written stays.
            self.disk_used[d] += self.disk_io[d][1] * secs * 0.01;
        }
        for n in &mut self.net {
            for v in n.iter_mut() {
                *v = r.walk(*v, 30_000.0, 0.0, 125e6);
            }
        }
        self.uptime_s += u64::from(interval_ms / 1000);
        for c in &mut self.containers {
            c[0] = r.walk(c[0], 1.5, 0.0, 200.0);
            c[1] = r.walk(c[1], MIB, 16.0 * MIB, 1.5 * GIB);
            for v in &mut c[2..4] {
                *v = r.walk(*v, 3_000.0, 0.0, 125e6);
            }
            for v in &mut c[4..6] {
                *v = if r.chance(0.8) {
                    0.0
                } else {
                    r.walk(v.max(4096.0), 100_000.0, 0.0, 50e6)
                };
            }
        }
        Report {
            ts_ms,
            interval_ms: Some(interval_ms),
            cpu: Some(Cpu {
                total_pct: round_to(self.cpu, 1),
                cores_pct: self.cores.iter().map(|c| round_to(*c, 1)).collect(),
                cores_mhz: self.mhz.iter().map(|m| m.round() as u64).collect(),
            }),
            load: Some(self.load.map(|l| round_to(l, 2))),
            memory: Some(Memory {
                total_bytes: 16 << 30,
                used_bytes: pages(self.mem_used),
                available_bytes: Some((16 << 30) - pages(self.mem_used) - pages(self.mem_cache)),
                swap_total_bytes: Some(2 << 30),
                swap_used_bytes: Some(pages(self.swap_used)),
            }),
            disks: ["/", "/data"]
                .iter()
                .enumerate()
                .map(|(d, m)| Disk {
                    mount: (*m).into(),
                    total_bytes: [250u64 << 30, 4000u64 << 30][d],
                    used_bytes: pages(self.disk_used[d]),
                    available_bytes: None,
                    read_bps: Some(self.disk_io[d][0].round() as u64),
                    write_bps: Some(self.disk_io[d][1].round() as u64),
                })
                .collect(),
            networks: ["eth0", "wlan0"]
                .iter()
                .enumerate()
                .map(|(i, n)| Network {
                    iface: (*n).into(),
                    rx_bps: self.net[i][0].round() as u64,
                    tx_bps: self.net[i][1].round() as u64,
                })
                .collect(),
            uptime_s: Some(self.uptime_s),
            temps: Vec::new(),
            containers: (!self.containers.is_empty()).then(|| {
                self.containers
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Container {
                        id: format!("{i:064x}"),
                        name: format!("app-{i}"),
                        image: "nginx:1.27".into(),
                        state: "running".into(),
                        health: None,
                        restarts: Some(0),
                        cpu_pct: Some(round_to(c[0], 1)),
                        mem_used_bytes: Some(pages(c[1])),
                        mem_limit_bytes: Some(2 << 30),
                        net_rx_bps: Some(c[2].round() as u64),
                        net_tx_bps: Some(c[3].round() as u64),
                        block_read_bps: Some(c[4].round() as u64),
                        block_write_bps: Some(c[5].round() as u64),
                    })
                    .collect()
            }),
            processes: None,
            services: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_stay_in_bounds_at_the_agents_precision() {
        let mut m = Machine::new(3, 2);
        let mut previous_uptime = None;
        for i in 0..2_000 {
            let r = m.report(i * 5_000, 5_000);
            let cpu = r.cpu.as_ref().expect("cpu");
            assert!((0.0..=100.0).contains(&cpu.total_pct));
            assert_eq!(cpu.cores_pct.len(), CORES);
            for p in cpu.cores_pct.iter().chain([&cpu.total_pct]) {
                assert!((0.0..=100.0).contains(p), "{p}");
                assert_eq!(round_to(*p, 1), *p);
            }
            let memory = r.memory.as_ref().expect("memory");
            assert_eq!(memory.used_bytes % 4096, 0);
            assert!(memory.used_bytes <= memory.total_bytes);
            for d in &r.disks {
                assert_eq!(d.used_bytes % 4096, 0);
                assert!(d.used_bytes <= d.total_bytes);
            }
            assert_eq!((r.disks.len(), r.networks.len()), (2, 2));
            assert_eq!(r.containers.as_ref().map(Vec::len), Some(2));
            let load = r.load.expect("load");
            assert!(load.iter().all(|l| (0.0..=16.0).contains(l)));
            let uptime = r.uptime_s.expect("uptime");
            if let Some(before) = previous_uptime {
                assert_eq!(uptime, before + 5);
            }
            previous_uptime = Some(uptime);
        }
        // Same seed, same machine.
        assert_eq!(
            Machine::new(7, 0).report(0, 5_000),
            Machine::new(7, 0).report(0, 5_000)
        );
    }
}
