//! `run` and `once`: the collection schedule and the two threads.
//!
//! The collector thread wakes on a steady grid (the next multiple of the
//! interval in Unix time), stamps the report with that grid time, and appends
//! it to the spool. The sender (the calling thread) drains the spool. So a
//! slow or absent server never delays collection, and timestamps do not drift.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use storage::model::wire::IngestBatch;

use crate::collect::Collector;
use crate::config::Config;
use crate::error::AgentError;
use crate::send::{self, HostSlot, Sender};
use crate::spool::{SharedSpool, Spool};

/// Host facts are re-read this often (they rarely change).
const HOST_CHECK: Duration = Duration::from_secs(60);

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The first grid point strictly after `now_ms`.
pub fn next_tick(now_ms: i64, interval_ms: i64) -> i64 {
    (now_ms.div_euclid(interval_ms) + 1) * interval_ms
}

/// Runs until the token is refused (error) or `stop` is set (tests).
pub fn run(config: &Config, stop: Arc<AtomicBool>) -> Result<(), AgentError> {
    let (server, token) = config.endpoint()?;
    let spool = Arc::new(SharedSpool::new(Spool::open(
        &config.spool_dir,
        config.spool_max,
    )?));
    let host = Arc::new(HostSlot::default());
    let interval_ms = u32::try_from(config.interval.as_millis()).unwrap_or(u32::MAX);
    tracing::info!(
        server,
        interval_ms,
        spool_dir = %config.spool_dir.display(),
        spool_max = config.spool_max,
        "statusmonitor-agent starting"
    );
    let collector = Collector::new(config.filter.clone(), Some(interval_ms))
        .with_processes(&config.processes)
        .with_services(&config.services);
    #[cfg(unix)]
    let collector = collector.with_containers(&config.containers, config.interval);
    let mut collector = collector;
    host.offer(collector.host_facts());

    let collector_thread = {
        let (spool, host, stop) = (spool.clone(), host.clone(), stop.clone());
        std::thread::Builder::new()
            .name("collector".into())
            .spawn(move || {
                // However the thread ends (a panic included), the sender stops too.
                let _stop_on_exit = StopOnDrop(stop.clone());
                collect_loop(&mut collector, &spool, &host, &stop, interval_ms);
            })
            .map_err(|e| AgentError::Collector(format!("cannot start: {e}")))?
    };
    let sender = Sender::new(
        server,
        token.clone(),
        config.timeout,
        config.ca_cert.as_ref(),
    );
    // The checks the server assigns: their own thread, results through `link`.
    let link = (!config.no_checks).then(|| Arc::new(crate::checks::Link::default()));
    let checks_thread = link
        .as_ref()
        .map(|link| crate::checks::spawn(config, link.clone(), stop.clone()))
        .transpose()?;
    let upgraded = config
        .auto_update
        .then(|| spawn_updater(config.clone(), stop.clone()))
        .transpose()?;
    let result = send::drain(
        &spool,
        &sender,
        &host,
        link.as_deref(),
        &stop,
        config.interval,
    );
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = checks_thread {
        let _ = t.join();
    }
    result?;
    if let Some(updater) = upgraded
        && let Ok(Some(restart)) = updater.join()
    {
        let _ = collector_thread.join();
        return Err(match restart {
            Restart::Replaced(path) => AgentError::Upgraded { path },
            Restart::ForTheUnit => AgentError::UpdateOffered,
        });
    }
    collector_thread
        .join()
        .map_err(|_| AgentError::Collector("panicked; restart the agent".into()))
}

/// Why the updater stopped the agent.
enum Restart {
    /// The binary at this path is the server's build now: start it.
    Replaced(std::path::PathBuf),
    /// The server has another build; the service installs it before it
    /// starts again (see [`crate::update`]).
    ForTheUnit,
}

/// `auto_update`: checks at start and every `update_every`; once there is
/// something to restart for, stops the agent (the spool keeps what is
/// unsent). Under systemd (`INVOCATION_ID` set) the unit's pre-start
/// replaces the binary; elsewhere this thread does.
fn spawn_updater(
    config: Config,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<Option<Restart>>, AgentError> {
    use crate::update::Offer;
    let exe = std::env::current_exe().map_err(|e| {
        AgentError::Config(format!("auto_update: cannot find this executable: {e}"))
    })?;
    let under_systemd = std::env::var_os("INVOCATION_ID").is_some();
    std::thread::Builder::new()
        .name("updater".into())
        .spawn(move || {
            let mut first = true;
            while !stop.load(Ordering::Relaxed) {
                match crate::update::check(&config, &exe) {
                    Ok(Offer::Other { sha256 }) if under_systemd && first => tracing::warn!(
                        sha256,
                        "auto_update: the server has another build, which the service's \
                         pre-start (`update --if-auto-update`) did not install: see its log \
                         (journalctl -u statusmonitor-agent); tried again at the next check"
                    ),
                    Ok(Offer::Other { sha256 }) if under_systemd => {
                        tracing::info!(sha256, "auto_update: the server has another build: stopping so that the service installs it and starts again");
                        stop.store(true, Ordering::Relaxed);
                        return Some(Restart::ForTheUnit);
                    }
                    Ok(Offer::Other { sha256 }) => match crate::update::install(
                        &config,
                        &exe,
                        &sha256,
                        crate::update::DOWNLOAD_TIMEOUT,
                    ) {
                        Ok(()) => {
                            tracing::info!(path = %exe.display(), sha256, "auto_update: installed the server's build");
                            stop.store(true, Ordering::Relaxed);
                            return Some(Restart::Replaced(exe));
                        }
                        Err(e) => tracing::warn!("auto_update: {e}"),
                    },
                    Ok(offer) => tracing::debug!(?offer, "auto_update: nothing to do"),
                    Err(e) => tracing::warn!("auto_update: {e}"),
                }
                first = false;
                send::sleep_unless(&stop, config.update_every);
            }
            None
        })
        .map_err(|e| AgentError::Collector(format!("cannot start the updater: {e}")))
}

/// Sets the flag when dropped, also during a panic unwind.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn collect_loop(
    collector: &mut Collector,
    spool: &SharedSpool,
    host: &HostSlot,
    stop: &AtomicBool,
    interval_ms: u32,
) {
    let interval = i64::from(interval_ms);
    let host_every = (HOST_CHECK.as_millis() as i64 / interval).max(1);
    let mut ticks: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let tick = next_tick(now_ms(), interval);
        send::sleep_unless(stop, Duration::from_millis((tick - now_ms()).max(0) as u64));
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // Woken far too late (suspend, stalled machine): stamp the grid point
        // the data belongs to, not the one that was missed.
        let now = now_ms();
        let ts = if now - tick >= interval {
            now - now.rem_euclid(interval)
        } else {
            tick
        };
        let report = collector.collect(ts);
        match serde_json::to_vec(&report) {
            Ok(json) => {
                if let Err(e) = spool.push(&json) {
                    tracing::error!(error = %e, "cannot spool a report: it is lost");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot serialise a report"),
        }
        ticks += 1;
        if ticks % host_every == 0 {
            host.offer(collector.host_facts());
        }
    }
}

/// `once`: host facts and one report, with rates over a ~1 s second reading.
pub fn once(config: &Config) -> IngestBatch {
    let collector = Collector::new(config.filter.clone(), None)
        .with_processes(&config.processes)
        .with_services(&config.services);
    #[cfg(unix)]
    let collector = collector.with_containers(&config.containers, Duration::from_secs(1));
    let mut collector = collector;
    std::thread::sleep(Duration::from_secs(1));
    let report = collector.collect(now_ms());
    IngestBatch {
        host: Some(collector.host_facts()),
        reports: vec![report],
        check_results: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_multiples_of_the_interval() {
        assert_eq!(next_tick(1_000, 5_000), 5_000);
        assert_eq!(next_tick(5_000, 5_000), 10_000);
        assert_eq!(next_tick(9_999, 5_000), 10_000);
    }
}
