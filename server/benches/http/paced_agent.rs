//! The paced 10,000-agent figure with what real agents send: the load is the
//! agent's own simulator (`statusmonitor-agent simulate`, its library called
//! in this process), one gzip report per request from 8 keep-alive threads,
//! each agent every 5 s. The server's CPU is taken from /proc over 90 s
//! after 20 s of warm-up of a 110 s run, three runs on one server.

use super::*;

/// Runs of the simulator (each on the same server and agents).
const RUNS: usize = 3;

pub(crate) fn run(quick: bool) {
    let server = Server::start(&[]);
    let api = Api::login(&server);
    let n = if quick { 1_000 } else { 10_000 };
    let t = Instant::now();
    let agents = api.agents(n);
    let created = t.elapsed().as_secs_f64();
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = dir.path().join("tokens");
    let text: String = agents.iter().map(|(_, t)| format!("{t}\n")).collect();
    std::fs::write(&tokens, text).expect("write the tokens file");
    let (warm, measured) = if quick { (5, 20) } else { (20, 90) };
    let mut figures = Vec::new();
    for run in 1..=RUNS {
        let settle = server.settle(Duration::from_secs(60));
        let args = agent::simulate::SimulateArgs {
            server: server.url.clone(),
            tokens_file: tokens.clone(),
            interval: Duration::from_secs(5),
            duration: Duration::from_secs(warm + measured),
            concurrency: 8,
            timeout: Duration::from_secs(10),
        };
        let load_before = load();
        let simulator = std::thread::spawn(move || agent::simulate::simulate(&args));
        std::thread::sleep(Duration::from_secs(warm));
        let cpu0 = server.cpu_seconds();
        let threads0 = thread_cpu(server.child.id());
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(measured));
        let secs = t.elapsed().as_secs_f64();
        let cpu = (server.cpu_seconds() - cpu0) / secs * 100.0;
        // At 5 s per agent: n / 5 reports per second.
        let reports = (n as f64 / 5.0 * secs) as u64;
        let threads = thread_report(&threads0, &thread_cpu(server.child.id()), secs, reports);
        let (rss, hwm) = server.memory_mib();
        simulator
            .join()
            .expect("simulator thread")
            .expect("simulator run");
        println!(
            "{n} agents at 5 s, `statusmonitor-agent simulate` (gzip, one report per request), run {run}: server CPU {cpu:.1} % of one core ({:.0} µs per report), RSS {rss:.1} MiB (peak {hwm:.1} MiB) [before: {load_before}; after: {}]{threads}",
            cpu / 100.0 * secs / reports.max(1) as f64 * 1e6,
            load()
        );
        println!("  ({settle:.0}s of settling before this run)");
        figures.push(cpu);
    }
    figures.sort_by(f64::total_cmp);
    println!(
        "paced with the agent's simulator: {:.1} / {:.1} / {:.1} % of one core (min / median / max of {RUNS} runs)",
        figures[0],
        figures[RUNS / 2],
        figures[RUNS - 1]
    );
    println!(
        "  method: a fresh server with its defaults; {n} agents created through the API ({created:.0}s, each activated by one report), their tokens in a file; then `simulate --tokens-file <file> --interval 5s --duration {}s --concurrency 8` (the agent's library in this process), server utime+stime from /proc/PID/stat over {measured} s after {warm} s of warm-up; µs per report = CPU / ({n} / 5 s × the {measured} s)\n",
        warm + measured
    );
}
