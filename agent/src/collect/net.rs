//! Network interfaces: received/transmitted bytes per second from the
//! interface counters. Loopback is skipped unless asked for. An interface
//! without a rate this interval (new, reset) is left out of that report.

use std::time::Instant;

use storage::model::wire::Network;
use sysinfo::Networks;

use super::Filter;
use super::rate::Rates;

pub(super) struct NetCollector {
    networks: Option<Networks>,
    filter: Filter,
    rates: Rates<2>,
}

impl NetCollector {
    pub(super) fn new(filter: Filter) -> Self {
        let networks = Networks::new_with_refreshed_list().ok();
        if networks.is_none() {
            tracing::info!("network metrics are not available on this OS");
        }
        Self {
            networks,
            filter,
            rates: Rates::new(),
        }
    }

    pub(super) fn collect(&mut self, now: Instant) -> Vec<Network> {
        let Some(networks) = self.networks.as_mut() else {
            return Vec::new();
        };
        networks.refresh(true);
        let mut out = Vec::new();
        for (name, data) in networks.iter() {
            let Some(iface) = name.to_str().and_then(super::label) else {
                continue;
            };
            let iface = iface.as_str();
            if !self.filter.iface_allowed(iface) {
                continue;
            }
            let counters = [data.total_received(), data.total_transmitted()];
            if let Some([rx, tx]) = self.rates.update(iface, counters, now) {
                out.push(Network {
                    iface: iface.to_owned(),
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
