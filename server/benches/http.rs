//! HTTP benchmarks of the real `statusmonitor` binary on loopback.
//!
//! Run with `cargo bench -p server --bench http` (or `make bench`). The server
//! is the release binary in its own process; the load comes from this process
//! (a lean one-thread HTTP/1.1 client for the sustained ingest, blocking `ureq`
//! clients on threads for the rest, raw-socket WebSocket subscribers), so on a
//! 2-core machine both share the CPU — the figures are for the pair, except
//! the WebSocket delivery figure, which the kernel times at the subscriber's
//! socket while the subscribers keep off the cores during the fan-out.
//! `STATUSMONITOR_BENCH_QUICK=1` runs a shorter version.
//!
//! Figures printed, each with its method:
//! - sustained ingest (closed loop, one report per request) with 100 / 1,000 /
//!   10,000 agents: reports/s and request latency p50/p99;
//! - 10,000 agents paced at one report per 5 s: the server's CPU (utime+stime
//!   from /proc) as a share of one core, and its RSS;
//! - ingest → WebSocket delivery latency with 1,000 subscribers: arrival at
//!   their sockets (kernel timestamps), then receipt by subscribers woken
//!   per frame;
//! - history: 24 h of one agent's CPU, and `summary` over 7 d;
//! - server RSS idle with 10 agents reporting every 5 s, and under the
//!   10,000-agent load;
//! - server RSS with 10,000 agents whose rings hold their full 15 minutes
//!   (the steady state of the live ring buffer), under the paced load;
//! - ingest latency p99 idle and while 10 clients hammer the worst legal
//!   history query (`history_hammer`, `STATUSMONITOR_BENCH_ONLY=history-hammer`);
//! - only when named in `STATUSMONITOR_BENCH_ONLY`: `paced-agent`, the paced
//!   10,000 agents played by the agent's own simulator (gzip, three runs),
//!   and `footprint`, the whole data directory and peak RSS after 20 h of
//!   100 hosts through the API, maintenance and a graceful stop.
//!
//! The pieces live in `benches/http/`: `server` (the server under test and a
//! logged-in API client), `loadgen` (reports and the ingest clients),
//! `procfs` (CPU and context switches per thread), `fanout` with
//! `light_ws` and `stamped_ws` (the WebSocket subscribers), and
//! `history_hammer`; this file holds `main`, which runs the scenarios.
//!
//! Every figure is printed with the machine's load average at that moment.
//! The quick run covers the same cases with shorter phases and fewer
//! repetitions.

// A benchmark harness: a failed setup step should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{Value, json};

#[path = "common/launch.rs"]
mod launch;
use launch::*;
#[path = "http/fanout.rs"]
mod fanout;
use fanout::*;
#[path = "http/loadgen.rs"]
mod loadgen;
use loadgen::*;
#[path = "http/procfs.rs"]
mod procfs;
use procfs::*;
#[path = "http/server.rs"]
mod server;
use server::*;

const BIN: &str = env!("CARGO_BIN_EXE_statusmonitor");
const PASSWORD: &str = "correct horse battery";

/// `/proc/loadavg`'s three load averages, printed next to each figure: the
/// machine is shared, so a figure means little without the load it ran under.
fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let parts: Vec<&str> = text.split_whitespace().take(3).collect();
    format!("load average {}", parts.join(" "))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let quick = std::env::var("STATUSMONITOR_BENCH_QUICK").is_ok_and(|v| v != "0");
    let secs = if quick { 3.0 } else { 10.0 };
    // STATUSMONITOR_BENCH_ONLY=ingest,paced,ring,history,ws runs only those parts (for
    // profiling one of them); the idle figure always runs.
    let only = std::env::var("STATUSMONITOR_BENCH_ONLY").ok();
    let run = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p.trim() == part))
    };
    println!(
        "statusmonitor HTTP benchmarks ({} run), {}",
        if quick { "quick" } else { "full" },
        load()
    );
    println!(
        "machine: {} cores; server = {} (release) in its own process, load from this process on loopback\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::var("STATUSMONITOR_BENCH_SERVER").unwrap_or_else(|_| BIN.to_string())
    );

    // --- idle with 10 agents -------------------------------------------------
    let server = Server::start(&["--raw-retention", "8d"]);
    let api = Api::login(&server);
    let ten = api.agents(10);
    let idle_secs = if quick { 10.0 } else { 30.0 };
    paced(&server.url, &ten, Duration::from_secs(5), idle_secs, 2);
    let (rss, hwm) = server.memory_mib();
    println!(
        "idle RSS with 10 agents at 5 s: {rss:.1} MiB (peak {hwm:.1} MiB) [{}]",
        load()
    );
    println!(
        "  method: 10 agents created and reporting once per 5 s for {idle_secs}s; VmRSS/VmHWM from /proc/PID/status\n"
    );

    // --- sustained ingest ----------------------------------------------------
    let mut agents = ten.clone();
    if run("ingest") {
        for n in [100usize, 1_000, 10_000] {
            let t = Instant::now();
            agents.extend(api.agents(n - agents.len().min(n)));
            let created = t.elapsed();
            let cpu0 = server.cpu_seconds();
            let (rate, lat) = closed_loop(&server.url, &agents[..n], 16, secs);
            let cpu_us = (server.cpu_seconds() - cpu0) / (rate * secs) * 1e6;
            let (p50, p99) = summary(lat);
            println!(
                "ingest, {n} agents: {rate:.0} reports/s, latency p50 {p50:.2} ms, p99 {p99:.2} ms; server CPU {cpu_us:.0} µs per report [{}]",
                load()
            );
            println!(
                "  method: 16 keep-alive connections driven by one client thread (tokio current-thread, raw HTTP/1.1 requests from ready bodies), one report (8 cores, 2 mounts, 2 ifaces ≈ 1.1 KB JSON) per POST, round-robin over the agents, closed loop for {secs}s; server CPU = its utime+stime over the run / reports (the load generator takes the rest of the two cores); agents created in {:.1}s",
                created.as_secs_f64()
            );
        }
    }
    // STATUSMONITOR_BENCH_ONLY=paced: this figure alone, on 10,000 fresh agents.
    if run("ingest") || run("paced") {
        let n_paced = 10_000;
        if agents.len() < n_paced {
            agents.extend(api.agents(n_paced - agents.len()));
        }
        let paced_secs = if quick { 10.0 } else { 30.0 };
        // The closed loops just wrote ~230,000 reports: let the engine's
        // flushes and compactions of them finish first, or the figure is
        // theirs (see the ring part).
        let settle = server.settle(Duration::from_secs(if quick { 30 } else { 60 }));
        // Both encodings: the bench's own identity bodies (the figure's
        // history) and what the agent really sends, one gzip report per POST.
        for (gzipped, what) in [
            (false, "identity bodies"),
            (true, "gzip bodies, as the agent sends them"),
        ] {
            let cpu0 = server.cpu_seconds();
            let threads0 = thread_cpu(server.child.id());
            let t = Instant::now();
            let sent = paced_as(
                &server.url,
                &agents[..n_paced],
                Duration::from_secs(5),
                paced_secs,
                8,
                gzipped,
            );
            let elapsed = t.elapsed().as_secs_f64();
            let cpu = (server.cpu_seconds() - cpu0) / elapsed * 100.0;
            let threads = thread_report(&threads0, &thread_cpu(server.child.id()), elapsed, sent);
            let (rss, hwm) = server.memory_mib();
            println!(
                "\n{n_paced} agents at 5 s, {what}: server CPU {cpu:.1} % of one core ({:.0} µs per report), RSS {rss:.1} MiB (peak {hwm:.1} MiB), {sent} reports in {elapsed:.0}s [{}]{threads}",
                cpu / 100.0 * elapsed / sent.max(1) as f64 * 1e6,
                load()
            );
        }
        println!(
            "  method: {settle:.0}s after the agents' creation and the closed loops until the server's background work was done (a second under 5 % of a core), then an open loop, each agent one report per 5 s (2,000 reports/s) spread evenly over 8 threads, first with identity bodies, then gzip (flate2 `fast`, as the agent); server utime+stime from /proc/PID/stat over each run, by thread from /proc/PID/task; VmRSS at its end, VmHWM = peak of the whole benchmark so far\n"
        );
    }

    // STATUSMONITOR_BENCH_ONLY=paced-agent: 10,000 agents played by the
    // agent's own simulator (`statusmonitor-agent simulate`), gzip bodies.
    if only.is_some() && run("paced-agent") {
        paced_agent::run(quick);
    }

    // STATUSMONITOR_BENCH_ONLY=footprint: the whole data directory after
    // 20 h of 100 hosts through the API, maintenance and a graceful stop.
    if only.is_some() && run("footprint") {
        footprint::run(quick);
    }

    // --- ring buffer at steady state -------------------------------------------
    if run("ring") {
        // Its own server: every agent's ring holds a full 15 minutes, as after
        // 15 minutes of the 10,000-agent load.
        let server = Server::start(&[]);
        let api = Api::login(&server);
        let n = 10_000;
        let window_ms = 15 * 60_000;
        let t = Instant::now();
        let from = now_ms() - window_ms;
        let agents = api.agents_since(n, window_ms);
        let created = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let filled = prefill(&server.url, &agents, from, 4);
        let fill_secs = t.elapsed().as_secs_f64();
        let (rss_filled, _) = server.memory_mib();
        // The fill wrote 1.86 M reports at once: let the engine's background
        // work on them (memtable flushes, compactions) finish, so the figure
        // is the cost of the load and not of digesting the fill.
        let settle = server.settle(Duration::from_secs(if quick { 60 } else { 120 }));
        let paced_secs = if quick { 10.0 } else { 30.0 };
        let cpu0 = server.cpu_seconds();
        let t = Instant::now();
        let sent = paced(&server.url, &agents, Duration::from_secs(5), paced_secs, 8);
        let cpu = (server.cpu_seconds() - cpu0) / t.elapsed().as_secs_f64() * 100.0;
        let (rss, hwm) = server.memory_mib();
        println!(
            "{n} agents at 5 s with 15 min in every ring (steady state): RSS {rss:.1} MiB (peak {hwm:.1} MiB), {rss_filled:.1} MiB right after the fill; server CPU {cpu:.1} % of one core, {sent} reports in {paced_secs:.0}s [{}]",
            load()
        );
        println!(
            "  method: a fresh server; {n} agents created ({created:.0}s) each with a first report 15 min old, then one POST per agent with its next {} reports at 5 s up to now ({filled} reports in {fill_secs:.0}s, 4 client threads), so every ring holds 15 minutes (180 reports); then {settle:.0}s until the server's background work on the fill was done (a second under 5 % of a core); then the paced load (one report per agent per 5 s, 8 threads) for {paced_secs:.0}s; VmRSS at its end, VmHWM over the whole run\n",
            filled / n as u64
        );
    }

    // --- history ---------------------------------------------------------------
    // Agents that took no part in the ingest runs above.
    let fresh = api.agents(3);
    if run("history") {
        let (hist_id, hist_token) = fresh[0].clone();
        let (sum_id, sum_token) = fresh[1].clone();
        let end = now_ms();
        let t = Instant::now();
        let n_hist = backfill(&server.url, hist_id, &hist_token, end, 1);
        let n_sum = backfill(&server.url, sum_id, &sum_token, end, 7);
        let filled = t.elapsed().as_secs_f64();
        // Over a real week the compactor seals each hour as it closes; give it
        // the time to do the same for the backfill before measuring.
        let settle = if quick { 30 } else { 60 };
        std::thread::sleep(Duration::from_secs(settle));
        let runs = if quick { 50 } else { 200 };
        let cpu_24h = format!("/api/history/{hist_id}/cpu?start=-24h");
        for (what, path, accept) in [
            (
                "history, 24 h of one agent's CPU (cpu.total_pct, 8 cores' % and MHz, load: 20 series, default max_points 600), gzip",
                cpu_24h.clone(),
                None,
            ),
            (
                "  same, Accept-Encoding: gzip, deflate, br, zstd (a browser's)",
                cpu_24h.clone(),
                Some("gzip, deflate, br, zstd"),
            ),
            ("  same, uncompressed", cpu_24h.clone(), Some("identity")),
            (
                "  same with max_points=720, gzip",
                format!("/api/history/{hist_id}/cpu?start=-24h&max_points=720"),
                None,
            ),
            (
                "summary over 7 d of one agent",
                format!("/api/history/{sum_id}/summary?start=-7d"),
                None,
            ),
        ] {
            let lat: Vec<f64> = (0..runs).map(|_| api.get_ms(&path, accept)).collect();
            let (p50, p99) = summary(lat);
            println!("{what}: p50 {p50:.2} ms, p99 {p99:.2} ms [{}]", load());
        }
        println!(
            "  method: {n_hist} + {n_sum} reports at 5 s (24 h and 7 d) backfilled over HTTP in {filled:.0}s (server started with --raw-retention 8d), {settle}s for the compactor to seal them, then {runs} sequential GETs each; client-side time including HTTP and JSON decoding\n"
        );
    }

    if run("history-hammer") {
        history_hammer::run(quick);
    }

    if !run("ws") {
        return;
    }
    // --- WebSocket fan-out -----------------------------------------------------
    let (ws_id, ws_token) = fresh[2].clone();
    let access = api.bearer.trim_start_matches("Bearer ").to_string();
    // STATUSMONITOR_BENCH_WS_CLIENT picks the subscribers (default: stamped,
    // then reactive; `tungstenite` is the earlier client, for comparisons).
    let clients = match std::env::var("STATUSMONITOR_BENCH_WS_CLIENT").as_deref() {
        Ok("stamped") => vec![WsClient::Stamped],
        Ok("reactive") => vec![WsClient::Reactive],
        Ok("tungstenite") => vec![WsClient::Tungstenite],
        _ => vec![WsClient::Stamped, WsClient::Reactive],
    };
    for client in clients {
        ws_fanout(&server, &access, ws_id, &ws_token, quick, client);
    }
}

/// A minimal WebSocket client for the fan-out benchmark: the HTTP upgrade by
/// hand, then server frames (never masked) parsed straight from the socket's
/// bytes. 1,000 of them share the two cores with the server, so they do no
/// more than reading every frame and handing each text payload over.
#[path = "http/light_ws.rs"]
mod light_ws;

/// Subscribers for the fan-out benchmark that keep out of the server's way,
/// as browsers on other machines would: one thread, every socket in one
/// epoll set, read in batches at set times (between reports). While it
/// sleeps, a frame arriving wakes nobody (the kernel only marks the socket
/// ready). Each frame is timed by the kernel (`SO_TIMESTAMPNS`): when its
/// bytes reached the subscriber's TCP socket, which on loopback happens
/// inside the server's send, so when the batch is read changes nothing in
/// the figure.
#[path = "http/stamped_ws.rs"]
mod stamped_ws;

/// Ingest latency while 10 clients of one account hammer the worst legal
/// history query (everything kept, at the finest tier and the most points),
/// against the same ingest idle. Self-contained: its own server and data.
#[path = "http/history_hammer.rs"]
mod history_hammer;

/// The paced 10,000-agent cost with the agent's own simulator as the load.
#[path = "http/paced_agent.rs"]
mod paced_agent;

/// The whole data directory and peak RSS after 20 h of 100 hosts.
#[path = "http/footprint.rs"]
mod footprint;
