//! Network interfaces: received/transmitted bytes per second from the
//! interface counters. Loopback is skipped unless asked for. An interface
//! without a rate this interval (new, reset) is left out of that report.
//!
//! On Linux the counters come from one read of `/proc/net/dev` (every
//! interface in one file). sysinfo reads nine sysfs files per interface,
//! and a machine running containers has a `veth` interface per container:
//! with 30 containers that was 270 file opens per tick, most of the agent's
//! CPU. Elsewhere (or without `/proc`) sysinfo's counters stand in.

use std::time::Instant;

use storage::model::wire::Network;
use sysinfo::Networks;

use super::Filter;
use super::rate::Rates;

/// Where the counters come from.
enum Source {
    /// `/proc/net/dev` (Linux).
    ProcNetDev,
    Sysinfo(Networks),
}

pub(super) struct NetCollector {
    source: Option<Source>,
    filter: Filter,
    rates: Rates<2>,
}

/// The file with every interface's counters on Linux.
const PROC_NET_DEV: &str = "/proc/net/dev";

impl NetCollector {
    pub(super) fn new(filter: Filter) -> Self {
        let source = if cfg!(target_os = "linux") && read_proc_net_dev().is_some() {
            Some(Source::ProcNetDev)
        } else {
            Networks::new_with_refreshed_list()
                .ok()
                .map(Source::Sysinfo)
        };
        if source.is_none() {
            tracing::info!("network metrics are not available on this OS");
        }
        Self {
            source,
            filter,
            rates: Rates::new(),
        }
    }

    pub(super) fn collect(&mut self, now: Instant) -> Vec<Network> {
        let counters: Vec<(String, [u64; 2])> = match self.source.as_mut() {
            None => return Vec::new(),
            Some(Source::ProcNetDev) => read_proc_net_dev().unwrap_or_default(),
            Some(Source::Sysinfo(networks)) => {
                networks.refresh(true);
                networks
                    .iter()
                    .filter_map(|(name, data)| {
                        Some((
                            name.to_str()?.to_owned(),
                            [data.total_received(), data.total_transmitted()],
                        ))
                    })
                    .collect()
            }
        };
        let mut out = Vec::new();
        for (name, counters) in counters {
            let Some(iface) = super::label(&name) else {
                continue;
            };
            if !self.filter.iface_allowed(&iface) {
                continue;
            }
            if let Some([rx, tx]) = self.rates.update(&iface, counters, now) {
                out.push(Network {
                    iface,
                    rx_bps: rx,
                    tx_bps: tx,
                });
            }
        }
        self.rates.end_round();
        out.sort_by(|a, b| a.iface.cmp(&b.iface));
        out.truncate(super::MAX_ITEMS);
        out
    }
}

fn read_proc_net_dev() -> Option<Vec<(String, [u64; 2])>> {
    std::fs::read_to_string(PROC_NET_DEV)
        .ok()
        .map(|text| parse_proc_net_dev(&text))
}

/// The received and transmitted bytes of each interface in `/proc/net/dev`:
/// two header lines, then `name: rx_bytes packets errs drop fifo frame
/// compressed multicast tx_bytes …`. A line that does not parse is skipped.
fn parse_proc_net_dev(text: &str) -> Vec<(String, [u64; 2])> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let mut fields = rest.split_ascii_whitespace();
            let rx = fields.next()?.parse().ok()?;
            let tx = fields.nth(7)?.parse().ok()?;
            Some((name.trim().to_owned(), [rx, tx]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_dev_gives_bytes_in_and_out_per_interface() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1296554    8937    0    0    0     0          0         0  1296554    8937    0    0    0     0       0          0
  eth0: 8273645111 6150332    0   11    0     0          0         0 309837520 2436417    0    0    0     0       0          0
veth1a2b3c4: 726 9 0 0 0 0 0 0 22822 80 0 0 0 0 0 0
broken: 12 x
";
        assert_eq!(
            parse_proc_net_dev(text),
            vec![
                ("lo".to_string(), [1_296_554, 1_296_554]),
                ("eth0".to_string(), [8_273_645_111, 309_837_520]),
                ("veth1a2b3c4".to_string(), [726, 22_822]),
            ]
        );
    }

    /// The same counters sysinfo reads (sysfs), within what moved between
    /// the two readings.
    #[cfg(target_os = "linux")]
    #[test]
    fn proc_net_dev_agrees_with_sysfs() {
        let ours = read_proc_net_dev().expect("/proc/net/dev on Linux");
        assert!(!ours.is_empty());
        for (name, [rx, _]) in ours {
            let Ok(sys) =
                std::fs::read_to_string(format!("/sys/class/net/{name}/statistics/rx_bytes"))
            else {
                continue; // another network namespace's sysfs
            };
            let sys: u64 = sys.trim().parse().expect("a number");
            assert!(sys >= rx && sys - rx < 1 << 20, "{name}: {rx} vs {sys}");
        }
    }
}
