//! `simulate`: a load generator for the server benchmarks. Plays one synthetic
//! agent per token (bounded random walks over 8 cores, 2 mounts, 2 interfaces)
//! on a small pool of threads, each with its own keep-alive HTTP client, and
//! prints reports/s, latency percentiles and errors at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use storage::model::wire::{Cpu, Disk, HostFacts, Memory, Network, Report, Temperature};

use crate::config::{Token, parse_duration, parse_server, parse_token};
use crate::run::now_ms;
use crate::send::{Outcome, Sender, batch_body, http_agent};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Server base URL.
    #[arg(long, env = "STATUSMONITOR_AGENT_SERVER", value_parser = parse_server)]
    pub server: String,
    /// File with one agent token per line; one synthetic agent per token.
    #[arg(long)]
    pub tokens_file: PathBuf,
    /// Report interval of each synthetic agent (may be below 1 s here).
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// How long to run.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    pub duration: Duration,
    /// Sending threads, each with its own keep-alive HTTP client.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: u16,
    /// Timeout of one request.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("`{s}` must be more than zero"));
    }
    Ok(d)
}

/// Xorshift64*: plenty for synthetic metrics, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    fn signed(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// A bounded random-walk step.
    fn walk(&mut self, v: f64, step: f64, lo: f64, hi: f64) -> f64 {
        (v + self.signed() * step).clamp(lo, hi)
    }
}

const CORES: usize = 8;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One synthetic agent: a machine and its connection.
struct FakeAgent {
    sender: Sender,
    host: Option<HostFacts>,
    machine: Machine,
    due: Instant,
}

impl FakeAgent {
    fn new(n: usize, sender: Sender, due: Instant) -> Self {
        Self {
            sender,
            host: Some(Machine::facts(n)),
            machine: Machine::new(n),
            due,
        }
    }

    fn report(&mut self, interval_ms: u32) -> Report {
        self.machine.report(now_ms(), interval_ms)
    }
}

/// One synthetic machine's metrics (bounded random walks): what `simulate`
/// sends, and what benchmarks that backfill history use as values.
pub struct Machine {
    rng: Rng,
    cores: [f64; CORES],
    mhz: [f64; CORES],
    load: f64,
    mem_used: f64,
    disk_used: [f64; 2],
    io: [f64; 4],
    net: [f64; 4],
    temp: f64,
    uptime_s: u64,
}

impl Machine {
    /// Machine number `n`'s host facts (`sim-00042`).
    pub fn facts(n: usize) -> HostFacts {
        HostFacts {
            hostname: format!("sim-{n:05}"),
            os: Some("Debian GNU/Linux 12".into()),
            kernel: Some("6.1.0-sim".into()),
            arch: Some("x86_64".into()),
            cpu_model: Some("Simulated 8-core CPU".into()),
            cores: Some(CORES as u32),
        }
    }

    /// Machine number `n` (its walks are seeded by `n`).
    pub fn new(n: usize) -> Self {
        let mut rng =
            Rng(0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
        let base = 5.0 + (rng.next() % 50) as f64;
        Self {
            rng,
            cores: [base; CORES],
            mhz: [2400.0; CORES],
            load: base / 25.0,
            mem_used: 6.0 * GIB,
            disk_used: [120.0 * GIB, 800.0 * GIB],
            io: [20_000.0, 80_000.0, 0.0, 5_000.0],
            net: [120_000.0, 60_000.0, 2_000.0, 1_000.0],
            temp: 45.0,
            uptime_s: 86_400 + n as u64 * 60,
        }
    }

    /// The next report (one step of every walk), stamped `ts_ms`.
    pub fn report(&mut self, ts_ms: i64, interval_ms: u32) -> Report {
        let r = &mut self.rng;
        for c in &mut self.cores {
            *c = r.walk(*c, 6.0, 0.0, 100.0);
        }
        for m in &mut self.mhz {
            *m = r.walk(*m, 150.0, 800.0, 4500.0);
        }
        self.load = r.walk(self.load, 0.2, 0.0, 16.0);
        self.mem_used = r.walk(self.mem_used, 0.1 * GIB, 1.0 * GIB, 15.0 * GIB);
        for d in &mut self.disk_used {
            *d = r.walk(*d, 0.01 * GIB, 1.0 * GIB, 900.0 * GIB);
        }
        for x in self.io.iter_mut().chain(self.net.iter_mut()) {
            *x = r.walk(*x, 20_000.0, 0.0, 50_000_000.0);
        }
        self.temp = r.walk(self.temp, 1.0, 30.0, 95.0);
        self.uptime_s += u64::from(interval_ms / 1000);
        let pct = |v: f64| (v * 10.0).round() / 10.0;
        let total = self.cores.iter().sum::<f64>() / CORES as f64;
        Report {
            ts_ms,
            interval_ms: Some(interval_ms),
            cpu: Some(Cpu {
                total_pct: pct(total),
                cores_pct: self.cores.iter().map(|&c| pct(c)).collect(),
                cores_mhz: self.mhz.iter().map(|&m| m.round() as u64).collect(),
            }),
            load: Some([
                (self.load * 100.0).round() / 100.0,
                (self.load * 90.0).round() / 100.0,
                (self.load * 80.0).round() / 100.0,
            ]),
            memory: Some(Memory {
                total_bytes: (16.0 * GIB) as u64,
                used_bytes: self.mem_used as u64,
                available_bytes: Some((16.0 * GIB - self.mem_used) as u64),
                swap_total_bytes: Some((2.0 * GIB) as u64),
                swap_used_bytes: Some(0),
            }),
            disks: ["/", "/data"]
                .iter()
                .zip([256.0 * GIB, 1000.0 * GIB])
                .enumerate()
                .map(|(i, (m, total))| Disk {
                    mount: (*m).to_owned(),
                    total_bytes: total as u64,
                    used_bytes: self.disk_used[i] as u64,
                    // No reservation: what is not used is available.
                    available_bytes: Some((total - self.disk_used[i]).max(0.0) as u64),
                    read_bps: Some(self.io[2 * i] as u64),
                    write_bps: Some(self.io[2 * i + 1] as u64),
                })
                .collect(),
            networks: ["eth0", "wlan0"]
                .iter()
                .enumerate()
                .map(|(i, n)| Network {
                    iface: (*n).to_owned(),
                    rx_bps: self.net[2 * i] as u64,
                    tx_bps: self.net[2 * i + 1] as u64,
                })
                .collect(),
            uptime_s: Some(self.uptime_s),
            temps: vec![Temperature {
                sensor: "coretemp Package id 0".into(),
                celsius: pct(self.temp),
            }],
            containers: None,
            processes: None,
            services: None,
        }
    }
}

#[derive(Default)]
struct Stats {
    ok: u64,
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
}

pub fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.tokens_file)
        .with_context(|| format!("reading {}", args.tokens_file.display()))?;
    let tokens: Vec<Token> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_token)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.tokens_file.display()))?;
    if tokens.is_empty() {
        bail!("{} holds no tokens", args.tokens_file.display());
    }
    let threads = usize::from(args.concurrency).min(tokens.len());
    let interval_ms = u32::try_from(args.interval.as_millis()).unwrap_or(u32::MAX);
    // What the reports claim: the server accepts 1 s..1 h, whatever the pace here.
    let claimed_ms = interval_ms.clamp(1_000, 3_600_000);
    let start = Instant::now();
    let end = start + args.duration;
    let n = tokens.len();
    eprintln!(
        "simulate: {n} agents, {threads} threads, every {} ms for {} s against {}",
        interval_ms,
        args.duration.as_secs(),
        args.server
    );
    let mut groups: Vec<Vec<(usize, Token)>> = vec![Vec::new(); threads];
    for (i, t) in tokens.into_iter().enumerate() {
        groups[i % threads].push((i, t));
    }
    let server: Arc<str> = args.server.as_str().into();
    let handles: Vec<_> = groups
        .into_iter()
        .map(|group| {
            let server = server.clone();
            let (interval, timeout) = (args.interval, args.timeout);
            std::thread::spawn(move || {
                let http = http_agent(timeout, None);
                // Phases spread evenly over the interval, in agent order.
                let mut agents: Vec<FakeAgent> = group
                    .into_iter()
                    .map(|(i, token)| {
                        let due = start + interval.mul_f64(i as f64 / n as f64);
                        FakeAgent::new(i, Sender::with_agent(http.clone(), &server, token), due)
                    })
                    .collect();
                play(&mut agents, interval, claimed_ms, end)
            })
        })
        .collect();
    let mut total = Stats::default();
    for h in handles {
        let s = h
            .join()
            .map_err(|_| anyhow::anyhow!("a simulate thread panicked"))?;
        total.ok += s.ok;
        total.latencies_us.extend(s.latencies_us);
        for (k, v) in s.errors {
            *total.errors.entry(k).or_default() += v;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    print_summary(&total, secs);
    Ok(())
}

/// One thread's agents, due in order; a late thread catches up at once.
fn play(agents: &mut [FakeAgent], interval: Duration, interval_ms: u32, end: Instant) -> Stats {
    let mut stats = Stats::default();
    let mut i = 0;
    loop {
        let agent = &mut agents[i];
        let now = Instant::now();
        if agent.due >= end {
            return stats;
        }
        if agent.due > now {
            std::thread::sleep(agent.due - now);
        }
        let report = agent.report(interval_ms);
        let body = match serde_json::to_vec(&report) {
            Ok(r) => batch_body(agent.host.as_ref(), &[r]),
            Err(_) => continue,
        };
        let t0 = Instant::now();
        let outcome = agent.sender.post(&body);
        let us = u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);
        stats.latencies_us.push(us);
        match outcome {
            Outcome::Accepted => {
                stats.ok += 1;
                agent.host = None;
            }
            Outcome::TokenRejected { status } | Outcome::Refused { status, .. } => {
                *stats.errors.entry(format!("HTTP {status}")).or_default() += 1;
            }
            Outcome::Retry { reason, .. } => {
                let key: String = reason.chars().take(60).collect();
                *stats.errors.entry(key).or_default() += 1;
            }
        }
        agent.due += interval;
        i = (i + 1) % agents.len();
    }
}

fn print_summary(s: &Stats, secs: f64) {
    let mut lat = s.latencies_us.clone();
    lat.sort_unstable();
    let pick = |q: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let idx = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
        f64::from(lat[idx]) / 1000.0
    };
    let errors: u64 = s.errors.values().sum();
    println!(
        "requests:  {} ({} accepted, {errors} errors) in {secs:.1} s",
        lat.len(),
        s.ok
    );
    println!(
        "rate:      {:.1} reports/s accepted",
        s.ok as f64 / secs.max(1e-9)
    );
    println!(
        "latency:   p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (one report per request, gzip)",
        pick(0.50),
        pick(0.99),
        pick(1.0)
    );
    for (k, v) in &s.errors {
        println!("error:     {v} x {k}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_reports_stay_in_bounds_and_round_like_real_ones() {
        let sender = Sender::new(
            "http://127.0.0.1:9",
            parse_token("t").unwrap(),
            Duration::from_secs(1),
            None,
        );
        let mut a = FakeAgent::new(3, sender, Instant::now());
        for _ in 0..1000 {
            let r = a.report(5000);
            let cpu = r.cpu.unwrap();
            assert!((0.0..=100.0).contains(&cpu.total_pct));
            assert_eq!(cpu.cores_pct.len(), CORES);
            assert!(cpu.cores_pct.iter().all(|p| (p * 10.0).fract() == 0.0));
            assert_eq!((r.disks.len(), r.networks.len()), (2, 2));
        }
    }
}
