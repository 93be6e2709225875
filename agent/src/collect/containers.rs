//! Containers of the local Docker-API engine (Docker, or Podman's
//! compatible socket), one [`Container`] each per report.
//!
//! Each tick, on one kept-alive connection: one list
//! (`/containers/json?all=true`), then per running
//! container one stats call (Podman: one call for all of them), and an
//! inspect call only when the restart count
//! may have changed (a new container, a changed state, "Up N seconds", or
//! once a minute). The whole collection has a deadline ([`docker::budget`]):
//! a call that does not answer in time leaves its figures out of this report
//! and the tick goes on. CPU, network and block I/O are rates between two of
//! the agent's own readings of the same container id ([`Rates`]): a counter
//! that went backwards (the container restarted) or a new id (recreated)
//! gives no value for that interval, never a spike.
//!
//! Failures (no socket, permission, a slow or broken engine) are logged once
//! per kind until a collection succeeds again; the report then has no
//! container list (absent = not collected), and host metrics go on.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use storage::model::wire::Container;

pub use super::ContainerConfig;
use super::docker::{self, Failure, Reading, Stats, Summary};
use super::rate::Rates;
use super::{label, round_to};

/// Most containers a report carries (the server refuses more).
pub const MAX_CONTAINERS: usize = 500;
/// Inspect every container at least this often (in ticks), for restart
/// counts a restart between two ticks did not reveal.
const INSPECT_EVERY: u32 = 12;
/// What the agent remembers of a container id (its state, restart count,
/// rate baselines) is forgotten after this many collections without it:
/// a stats call that timed out once keeps its baseline, and the ids of
/// removed containers (`docker run --rm`, compose recreations) free their
/// memory.
pub const FORGET_AFTER: u32 = 3;

/// The sockets tried, in order, when none is given.
pub fn default_sockets() -> Vec<PathBuf> {
    let mut out = vec![
        PathBuf::from("/var/run/docker.sock"),
        PathBuf::from("/run/podman/podman.sock"),
    ];
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        out.push(Path::new(&dir).join("podman/podman.sock"));
    }
    out
}

#[derive(Debug, Default)]
struct Known {
    state: String,
    restarts: Option<u32>,
    inspected_at: u32,
    /// When it was last inspected.
    inspected: Option<Instant>,
    /// The last collection that listed it.
    seen_at: u32,
}

pub struct ContainerCollector {
    sockets: Vec<PathBuf>,
    budget: Duration,
    cpu: Rates<1>,
    net: Rates<2>,
    block: Rates<2>,
    known: HashMap<String, Known>,
    ticks: u32,
    /// Failure kinds logged since the last clean collection.
    logged: HashSet<&'static str>,
    /// Connections the last collection opened to the engine.
    connections: u32,
    /// Collections to go before Podman's all-containers stats call is
    /// tried again after it failed (0: use it).
    bulk_off: u32,
}

impl ContainerCollector {
    /// `None` when containers are turned off.
    pub fn new(config: &ContainerConfig, interval: Duration) -> Option<Self> {
        if config.disabled {
            return None;
        }
        let sockets = match &config.socket {
            Some(s) => vec![s.clone()],
            None => default_sockets(),
        };
        Some(Self {
            sockets,
            budget: docker::budget(interval),
            cpu: Rates::new(),
            net: Rates::new(),
            block: Rates::new(),
            known: HashMap::new(),
            ticks: 0,
            logged: HashSet::new(),
            connections: 0,
            bulk_off: 0,
        })
    }

    /// The containers now, `None` when they cannot be read.
    pub fn collect(&mut self) -> Option<Vec<Container>> {
        let tick = self.ticks;
        self.ticks = self.ticks.wrapping_add(1);
        let Some(socket) = self.socket() else {
            self.failed(None, &Failure::Missing);
            return None;
        };
        let deadline = Instant::now() + self.budget;
        // One kept-alive connection for the list and every call after it.
        let mut engine = docker::Connection::new(&socket);
        let list = engine
            .get("/containers/json?all=true", deadline)
            .and_then(|body| docker::json::<Vec<Summary>>(&body));
        let mut list = match list {
            Ok(list) => list,
            Err(e) => {
                self.failed(Some(&socket), &e);
                return None;
            }
        };
        list.sort_by(|a, b| a.name().cmp(b.name()));
        list.truncate(MAX_CONTAINERS);
        let mut trouble = None;
        // Podman answers every running container's stats in one call; the
        // Docker API needs one per container.
        self.bulk_off = self.bulk_off.saturating_sub(1);
        let mut bulk: Option<(HashMap<String, Reading>, Instant)> = None;
        if engine.libpod && self.bulk_off == 0 && list.iter().any(|s| s.state == "running") {
            match engine
                .get(docker::PODMAN_STATS, deadline)
                .and_then(|b| docker::json::<docker::PodmanStats>(&b))
            {
                Ok(docker::PodmanStats {
                    error: None,
                    stats: Some(stats),
                }) => {
                    let at = Instant::now();
                    let readings = stats
                        .iter()
                        .map(|s| (s.container_id.clone(), s.reading()))
                        .collect();
                    bulk = Some((readings, at));
                }
                // An error of the whole call, or an older Podman without
                // it: one call per container, and the bulk call again in
                // a minute.
                _ => self.bulk_off = INSPECT_EVERY,
            }
        }
        let mut out = Vec::with_capacity(list.len());
        let mut seen = HashSet::with_capacity(list.len());
        for s in &list {
            let Some(name) = label(s.name()) else {
                continue;
            };
            if !seen.insert(name.clone()) {
                continue; // two engines' worth of one name cannot be told apart
            }
            let mut c = Container {
                id: label(&s.id).unwrap_or_default(),
                name,
                image: label(&s.image).unwrap_or_default(),
                state: label(&s.state).unwrap_or_else(|| "unknown".into()),
                health: s.health().map(str::to_owned),
                ..Container::default()
            };
            let known = self.known.entry(s.id.clone()).or_default();
            known.seen_at = tick;
            let inspect = known.restarts.is_none()
                || known.state != c.state
                || c.state == "restarting"
                || (s.started_recently() && !inspected_since_start(known.inspected, s))
                || tick.wrapping_sub(known.inspected_at) >= INSPECT_EVERY;
            known.state.clone_from(&c.state);
            if inspect {
                match engine
                    .get(&format!("/containers/{}/json", s.id), deadline)
                    .and_then(|b| docker::json::<docker::Inspect>(&b))
                {
                    Ok(i) => {
                        known.restarts = i.restart_count;
                        known.inspected_at = tick;
                        known.inspected = Some(Instant::now());
                    }
                    Err(e) => trouble = Some(e),
                }
            }
            c.restarts = known.restarts;
            if c.is_running() {
                let from_bulk = bulk
                    .as_mut()
                    .and_then(|(readings, at)| Some((readings.remove(&s.id)?, *at)));
                let reading = match from_bulk {
                    Some(r) => Ok(r),
                    // Not in the bulk answer (started since), or no bulk call.
                    None => {
                        let path = format!("/containers/{}/stats?stream=false&one-shot=true", s.id);
                        engine
                            .get(&path, deadline)
                            .and_then(|b| docker::json::<Stats>(&b))
                            .map(|stats| (stats.reading(), Instant::now()))
                    }
                };
                match reading {
                    Ok((reading, at)) => self.apply_stats(&mut c, &s.id, &reading, at),
                    Err(e) => trouble = Some(e),
                }
            }
            out.push(c);
        }
        self.connections = engine.opened;
        drop(engine);
        self.end_round(tick);
        match trouble {
            Some(e) => self.failed(Some(&socket), &e),
            None => self.succeeded(&socket),
        }
        Some(out)
    }

    /// Forgets the ids not listed, nor read, in the last
    /// [`FORGET_AFTER`] collections.
    fn end_round(&mut self, tick: u32) {
        self.known
            .retain(|_, k| tick.wrapping_sub(k.seen_at) < FORGET_AFTER);
        let keep = u64::from(FORGET_AFTER - 1);
        self.cpu.end_round_keeping(keep);
        self.net.end_round_keeping(keep);
        self.block.end_round_keeping(keep);
    }

    /// Connections the last collection opened to the engine: one, unless
    /// the engine closed a kept one.
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// How many container ids it remembers anything of (state, restart
    /// count, a rate baseline): bounded by the containers of the last
    /// [`FORGET_AFTER`] collections.
    pub fn remembered(&self) -> usize {
        let mut ids: HashSet<&str> = self.known.keys().map(String::as_str).collect();
        ids.extend(self.cpu.keys());
        ids.extend(self.net.keys());
        ids.extend(self.block.keys());
        ids.len()
    }

    /// Figures of one stats answer read at `at`: memory as is, the rest as
    /// rates against this container id's previous reading.
    fn apply_stats(&mut self, c: &mut Container, id: &str, stats: &Reading, at: Instant) {
        c.mem_used_bytes = stats.mem_used;
        c.mem_limit_bytes = stats.mem_limit;
        if let Some(ns) = stats.cpu_ns
            && let Some([ns_per_s]) = self.cpu.update(id, [ns], at)
        {
            // ns of CPU per second of wall time: 1e9 is one core, 100 %.
            c.cpu_pct = Some(round_to(ns_per_s as f64 / 1e7, 1));
        }
        if let Some(counters) = stats.net
            && let Some([rx, tx]) = self.net.update(id, counters, at)
        {
            c.net_rx_bps = Some(rx);
            c.net_tx_bps = Some(tx);
        }
        if let Some(counters) = stats.block
            && let Some([read, write]) = self.block.update(id, counters, at)
        {
            c.block_read_bps = Some(read);
            c.block_write_bps = Some(write);
        }
    }

    /// The first socket that exists (checked every tick: an engine may
    /// start after the agent).
    fn socket(&self) -> Option<PathBuf> {
        self.sockets.iter().find(|s| s.exists()).cloned()
    }

    fn failed(&mut self, socket: Option<&Path>, e: &Failure) {
        if !self.logged.insert(e.kind()) {
            return;
        }
        match (socket, e) {
            (None, _) => tracing::info!(
                looked_at = ?self.sockets,
                "no container engine socket found: containers are not reported \
                 (pass --docker-socket, or --no-containers to stop looking)"
            ),
            (Some(s), Failure::PermissionDenied) => tracing::warn!(
                socket = %s.display(),
                "cannot read containers: permission denied; add the agent's user to \
                 the group `{}` or pass --no-containers",
                socket_group(s)
            ),
            (Some(s), e) => tracing::warn!(
                socket = %s.display(),
                "cannot read containers: {e}; the report goes without them (logged once \
                 until containers can be read again)"
            ),
        }
    }

    fn succeeded(&mut self, socket: &Path) {
        if !self.logged.is_empty() {
            self.logged.clear();
            tracing::info!(socket = %socket.display(), "containers can be read again");
        }
    }
}

/// Whether the last inspect came after the start the status tells of ("Up
/// 12 seconds"), so its restart count is current: a container that started
/// a few seconds ago is inspected once, not at every tick of its first
/// minute. Two seconds of slack for the status's rounding.
fn inspected_since_start(inspected: Option<Instant>, s: &Summary) -> bool {
    match (inspected, s.up_seconds()) {
        (Some(at), Some(up)) => at.elapsed().as_secs() + 2 <= up,
        _ => false,
    }
}

/// The name of the group owning `socket` (from `/etc/group`), or its gid.
fn socket_group(socket: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(gid) = std::fs::metadata(socket).map(|m| m.gid()) else {
        return "docker".into();
    };
    std::fs::read_to_string("/etc/group")
        .ok()
        .and_then(|groups| {
            groups.lines().find_map(|line| {
                let mut f = line.split(':');
                let name = f.next()?;
                let _password = f.next()?;
                (f.next()?.parse::<u32>().ok()? == gid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| gid.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn collector() -> ContainerCollector {
        ContainerCollector::new(
            &ContainerConfig {
                disabled: false,
                socket: Some("/nonexistent/docker.sock".into()),
            },
            Duration::from_secs(5),
        )
        .unwrap()
    }

    fn stats(cpu_ns: u64, rx: u64, read: u64) -> Stats {
        docker::json(
            format!(
                r#"{{"cpu_stats":{{"cpu_usage":{{"total_usage":{cpu_ns}}}}},
                    "memory_stats":{{"usage":1000,"limit":4000,"stats":{{"inactive_file":200}}}},
                    "networks":{{"eth0":{{"rx_bytes":{rx},"tx_bytes":0}}}},
                    "blkio_stats":{{"io_service_bytes_recursive":[{{"op":"read","value":{read}}}]}}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    fn tick(c: &mut ContainerCollector, id: &str, s: &Stats, at: Instant) -> Container {
        let mut out = Container::default();
        c.apply_stats(&mut out, id, &s.reading(), at);
        c.cpu.end_round();
        c.net.end_round();
        c.block.end_round();
        out
    }

    /// Rates across a container restart (counters back to zero under the
    /// same id) and a recreation (same name, new id): no value for the
    /// interval of the change, never a spike or a negative, then right again.
    #[test]
    fn rates_are_counter_safe_across_restarts() {
        let mut c = collector();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let first = tick(&mut c, "a", &stats(10_000_000_000, 1_000, 0), t0);
        assert_eq!(first.cpu_pct, None, "no baseline yet");
        assert_eq!(first.mem_used_bytes, Some(800));
        assert_eq!(first.mem_limit_bytes, Some(4000));
        // 2.5 s of CPU in 5 s: half a core.
        let steady = tick(&mut c, "a", &stats(12_500_000_000, 6_000, 5_000), at(5));
        assert_eq!(steady.cpu_pct, Some(50.0));
        assert_eq!(steady.net_rx_bps, Some(1_000));
        assert_eq!(steady.block_read_bps, Some(1_000));
        // Restarted: every counter starts again near zero.
        let restarted = tick(&mut c, "a", &stats(100_000_000, 10, 0), at(10));
        assert_eq!(
            (
                restarted.cpu_pct,
                restarted.net_rx_bps,
                restarted.block_read_bps
            ),
            (None, None, None)
        );
        assert_eq!(restarted.mem_used_bytes, Some(800), "memory is not a rate");
        let after = tick(&mut c, "a", &stats(600_000_000, 510, 0), at(15));
        assert_eq!(after.cpu_pct, Some(10.0));
        assert_eq!(after.net_rx_bps, Some(100));
        // Recreated by `docker compose up`: a new id with bigger counters.
        let recreated = tick(&mut c, "b", &stats(50_000_000_000, 1 << 40, 0), at(20));
        assert_eq!(recreated.cpu_pct, None);
        assert_eq!(recreated.net_rx_bps, None);
        // The old id, gone for a round, is forgotten.
        assert_eq!(c.cpu.len(), 1);
    }

    #[test]
    fn turned_off_means_no_collector_and_a_missing_socket_no_list() {
        let off = ContainerConfig {
            disabled: true,
            socket: None,
        };
        assert!(ContainerCollector::new(&off, Duration::from_secs(5)).is_none());
        let mut c = collector();
        assert_eq!(c.collect(), None);
        assert_eq!(c.collect(), None);
        assert!(c.logged.contains("missing"));
    }

    #[test]
    fn the_budget_is_a_fraction_of_the_interval() {
        assert_eq!(
            docker::budget(Duration::from_secs(5)),
            Duration::from_secs(2)
        );
        assert_eq!(
            docker::budget(Duration::from_secs(1)),
            Duration::from_millis(400)
        );
    }
}
