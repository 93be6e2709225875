//! `simulate`: a load generator for the server benchmarks. Plays one synthetic
//! agent per token (the synthetic machines of `storage::model::synthetic`)
//! on a small pool of threads, each with its own keep-alive HTTP client, and
//! prints reports/s, latency percentiles and errors at the end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use storage::model::synthetic::Machine;
use storage::model::wire::{HostFacts, Report};

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
            host: Some(Machine::facts(n as u64)),
            machine: Machine::new(n as u64, 0),
            due,
        }
    }

    fn report(&mut self, interval_ms: u32) -> Report {
        self.machine.report(now_ms(), interval_ms)
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
