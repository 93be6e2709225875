//! The whole data directory a user backs up, measured from outside: 100
//! hosts × 20 h of 5 s reports (the synthetic machines of
//! `storage::model::synthetic`, which `simulate` plays and the storage
//! benchmark stores: 38 series each) ingested through the API, 120
//! reports per request on 4 keep-alive connections, then 200 s for the
//! server's maintenance (sealing, roll-ups), then a graceful stop (SIGTERM).
//! Printed: the directory while running and after the stop, per part, in
//! bytes per sample; the server's peak RSS; its CPU per million samples; the
//! restart after the stop.

use std::path::Path;
use std::process::Command;

use super::*;

const STEP_MS: i64 = 5_000;
const PER_REQUEST: usize = 120;
const CONNECTIONS: usize = 4;

/// Bytes on disk (allocated blocks) and apparent bytes of every file under `dir`.
fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut used = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return used;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let (b, a) = disk_usage(&entry.path());
            used.0 += b;
            used.1 += a;
        } else {
            used.0 += meta.blocks() * 512;
            used.1 += meta.len();
        }
    }
    used
}

/// One line per part of the directory: `catalog.redb`, the engine's
/// keyspaces and journals, and the rest.
fn parts(data: &Path, samples: f64) -> String {
    let mut out = String::new();
    let mut entries: Vec<std::path::PathBuf> = Vec::new();
    for top in std::fs::read_dir(data).into_iter().flatten().flatten() {
        if top.file_name() == "tsdb" {
            for e in std::fs::read_dir(top.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                entries.push(e.path());
            }
        } else {
            entries.push(top.path());
        }
    }
    entries.sort();
    for path in entries {
        let (blocks, apparent) = if path.is_dir() {
            disk_usage(&path)
        } else {
            std::fs::metadata(&path).map_or((0, 0), |m| {
                use std::os::unix::fs::MetadataExt;
                (m.blocks() * 512, m.len())
            })
        };
        if apparent == 0 && blocks == 0 {
            continue;
        }
        let name = path
            .strip_prefix(data)
            .unwrap_or(&path)
            .display()
            .to_string();
        out.push_str(&format!(
            "\n    {name}: {:.1} MB ({:.3} bytes/sample; apparent {:.1} MB)",
            blocks as f64 / 1e6,
            blocks as f64 / samples,
            apparent as f64 / 1e6
        ));
    }
    out
}

fn health(url: &str) -> Value {
    let mut r = ureq::get(&format!("{url}/api/health"))
        .call()
        .expect("health");
    r.body_mut().read_json().expect("health body")
}

pub(crate) fn run(quick: bool) {
    let hosts = if quick { 10 } else { 100 };
    let hours: i64 = if quick { 2 } else { 20 };
    // `STATUSMONITOR_BENCH_FOOTPRINT_IDLE_S`: a shorter wait, for runs
    // that only look at the ingest's memory.
    let idle = std::env::var("STATUSMONITOR_BENCH_FOOTPRINT_IDLE_S")
        .ok()
        .and_then(|s| s.parse().ok());
    let maintenance = Duration::from_secs(idle.unwrap_or(if quick { 60 } else { 200 }));
    let mut server = Server::start(&[]);
    let api = Api::login(&server);
    let data = server._dir.path().join("data");
    // Agents created but not activated: their first batch is the oldest data.
    let tokens: Vec<String> = (0..hosts)
        .map(|i| {
            let mut r = api
                .agent
                .post(&format!("{}/api/agents", api.url))
                .header("authorization", &api.bearer)
                .send_json(json!({ "name": format!("host-{i}") }))
                .expect("create agent");
            let body: Value = r.body_mut().read_json().expect("agent body");
            body["token"].as_str().expect("token").to_string()
        })
        .collect();
    let end = now_ms() / STEP_MS * STEP_MS;
    let start = end - hours * 3_600_000;
    let per_host = ((end - start) / STEP_MS) as u64;
    let cpu0 = server.cpu_seconds();
    let t = Instant::now();
    let handles: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let mine: Vec<(usize, String)> = tokens
                .iter()
                .cloned()
                .enumerate()
                .skip(c)
                .step_by(CONNECTIONS)
                .collect();
            let url = server.url.clone();
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                let mut machines: Vec<storage::model::synthetic::Machine> = mine
                    .iter()
                    .map(|(i, _)| storage::model::synthetic::Machine::new(*i as u64, 0))
                    .collect();
                let mut facts: Vec<Option<_>> = mine
                    .iter()
                    .map(|(i, _)| Some(storage::model::synthetic::Machine::facts(*i as u64)))
                    .collect();
                let mut ts = start;
                // Time-interleaved, as agents catching up together would send:
                // every host's next 120 reports, then the next 120.
                while ts < end {
                    for (k, (_, token)) in mine.iter().enumerate() {
                        let reports: Vec<_> = (0..PER_REQUEST as i64)
                            .map(|j| ts + j * STEP_MS)
                            .filter(|&t| t < end)
                            .map(|t| machines[k].report(t, STEP_MS as u32))
                            .collect();
                        let body = serde_json::to_vec(&json!({
                            "host": facts[k].take(),
                            "reports": reports,
                        }))
                        .expect("json");
                        send(&agent, &url, token, &body);
                    }
                    ts += PER_REQUEST as i64 * STEP_MS;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("ingest thread");
    }
    let ingest_secs = t.elapsed().as_secs_f64();
    let ingest_cpu = server.cpu_seconds() - cpu0;
    let (rss_ingest, hwm_ingest) = server.memory_mib();
    let series = health(&server.url)["storage"]["series"]
        .as_u64()
        .expect("series");
    let samples = (series * per_host) as f64;
    println!(
        "footprint: {hosts} hosts x {hours} h at 5 s = {per_host} reports each, {series} series in all, {samples:.0} samples ingested in {ingest_secs:.0}s; server CPU {:.2} s per million samples; RSS {rss_ingest:.1} MiB, peak {hwm_ingest:.1} MiB [{}]",
        ingest_cpu / samples * 1e6,
        load()
    );
    std::thread::sleep(maintenance);
    let h = health(&server.url);
    let (running, _) = disk_usage(&data);
    let (rss, hwm) = server.memory_mib();
    println!(
        "  running, after {}s of maintenance: data directory {:.1} MB = {:.3} bytes/sample; engine {}; RSS {rss:.1} MiB, peak {hwm:.1} MiB [{}]{}",
        maintenance.as_secs(),
        running as f64 / 1e6,
        running as f64 / samples,
        h["storage"]["bytes"],
        load(),
        parts(&data, samples)
    );
    let t = Instant::now();
    Command::new("kill")
        .arg(server.child.id().to_string())
        .status()
        .expect("kill -TERM");
    let status = server.child.wait().expect("server exit");
    let stop = t.elapsed().as_secs_f64();
    assert!(status.success(), "graceful stop: {status}");
    let (stopped, _) = disk_usage(&data);
    println!(
        "  after the graceful stop ({stop:.1}s): data directory {:.1} MB = {:.3} bytes/sample{}",
        stopped as f64 / 1e6,
        stopped as f64 / samples,
        parts(&data, samples)
    );
    let listen = server.url.trim_start_matches("http://").to_string();
    let t = Instant::now();
    server.child = spawn_server(&listen, &data, &[]);
    wait_healthy(
        &server.url,
        Duration::from_secs(60),
        Duration::from_millis(5),
    );
    let restart = t.elapsed().as_secs_f64();
    let journal = health(&server.url)["storage"]["bytes"]["journal"].clone();
    println!(
        "  restart to healthy after the stop: {:.2} s; journal then {journal} bytes [{}]",
        restart,
        load()
    );
    println!(
        "  method: a fresh server with its defaults; {hosts} agents created, then from {CONNECTIONS} threads (one keep-alive connection each, identity JSON) every host's next {PER_REQUEST} reports per POST (the synthetic machines of `storage::model::synthetic`), time-interleaved over the hosts, {hours} h ending now; samples = series x reports per host; sizes are allocated blocks (du) of every file; peak RSS = VmHWM; then {}s idle, SIGTERM, wait for exit\n",
        maintenance.as_secs()
    );
}
