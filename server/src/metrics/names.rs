//! How the engine's series (`cpu.total_pct{…}`, see
//! `storage::model::metrics`) are named for Prometheus: one table shared by
//! `GET /metrics` and remote write, so both say the same thing.
//!
//! Names follow the Prometheus conventions: a `statusmonitor_` prefix, base
//! units in the name (`_bytes`, `_seconds`, `_hertz`, `_celsius`), rates as
//! `_bytes_per_second`, and the unit of percentages stated (`_percent`,
//! 0–100, as the dashboard shows them). Every series also carries the labels
//! `agent` (the agent's name), `agent_id` and `host` (its hostname, empty
//! until the agent has sent host facts).

use storage::model::SeriesKey;

/// One exported metric: its Prometheus name, the factor to its base unit and
/// its help text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PromMetric {
    pub name: &'static str,
    pub scale: f64,
    pub help: &'static str,
}

const fn m(name: &'static str, scale: f64, help: &'static str) -> PromMetric {
    PromMetric { name, scale, help }
}

/// Engine metric name → Prometheus metric, in the order `/metrics` lists them.
pub const TABLE: &[(&str, PromMetric)] = &[
    (
        "cpu.total_pct",
        m(
            "statusmonitor_cpu_usage_percent",
            1.0,
            "CPU busy time over the last interval, all cores, 0-100",
        ),
    ),
    (
        "cpu.core_pct",
        m(
            "statusmonitor_cpu_core_usage_percent",
            1.0,
            "CPU busy time of one core over the last interval, 0-100",
        ),
    ),
    (
        "cpu.core_mhz",
        m(
            "statusmonitor_cpu_core_frequency_hertz",
            1e6,
            "Current clock frequency of one core",
        ),
    ),
    (
        "load.1m",
        m("statusmonitor_load1", 1.0, "Load average over 1 minute"),
    ),
    (
        "load.5m",
        m("statusmonitor_load5", 1.0, "Load average over 5 minutes"),
    ),
    (
        "load.15m",
        m("statusmonitor_load15", 1.0, "Load average over 15 minutes"),
    ),
    (
        "mem.total_bytes",
        m("statusmonitor_memory_total_bytes", 1.0, "Physical memory"),
    ),
    (
        "mem.used_bytes",
        m("statusmonitor_memory_used_bytes", 1.0, "Memory in use"),
    ),
    (
        "mem.available_bytes",
        m(
            "statusmonitor_memory_available_bytes",
            1.0,
            "Memory available to new programs without swapping",
        ),
    ),
    (
        "swap.total_bytes",
        m("statusmonitor_swap_total_bytes", 1.0, "Swap space"),
    ),
    (
        "swap.used_bytes",
        m("statusmonitor_swap_used_bytes", 1.0, "Swap space in use"),
    ),
    (
        "disk.total_bytes",
        m(
            "statusmonitor_disk_total_bytes",
            1.0,
            "Size of the file system mounted at `mount`",
        ),
    ),
    (
        "disk.used_bytes",
        m(
            "statusmonitor_disk_used_bytes",
            1.0,
            "Space used on the file system mounted at `mount` (size − free, as df)",
        ),
    ),
    (
        "disk.available_bytes",
        m(
            "statusmonitor_disk_available_bytes",
            1.0,
            "Space an unprivileged user can still write on the file system mounted at `mount`",
        ),
    ),
    (
        "disk.read_bps",
        m(
            "statusmonitor_disk_read_bytes_per_second",
            1.0,
            "Bytes read per second from the disk behind `mount`",
        ),
    ),
    (
        "disk.write_bps",
        m(
            "statusmonitor_disk_write_bytes_per_second",
            1.0,
            "Bytes written per second to the disk behind `mount`",
        ),
    ),
    (
        "net.rx_bps",
        m(
            "statusmonitor_network_receive_bytes_per_second",
            1.0,
            "Bytes received per second by interface `iface`",
        ),
    ),
    (
        "net.tx_bps",
        m(
            "statusmonitor_network_transmit_bytes_per_second",
            1.0,
            "Bytes sent per second by interface `iface`",
        ),
    ),
    (
        "uptime_s",
        m(
            "statusmonitor_uptime_seconds",
            1.0,
            "Time since the host booted",
        ),
    ),
    (
        "temp.celsius",
        m(
            "statusmonitor_temperature_celsius",
            1.0,
            "Temperature of sensor `sensor`",
        ),
    ),
    (
        "container.running",
        m(
            "statusmonitor_container_running",
            1.0,
            "1 while container `name` is running, else 0",
        ),
    ),
    (
        "container.restarts",
        m(
            "statusmonitor_container_restarts",
            1.0,
            "Times the engine restarted container `name`",
        ),
    ),
    (
        "container.cpu_pct",
        m(
            "statusmonitor_container_cpu_usage_percent",
            1.0,
            "CPU time of container `name` over the last interval, % of one core",
        ),
    ),
    (
        "container.mem_used_bytes",
        m(
            "statusmonitor_container_memory_used_bytes",
            1.0,
            "Memory used by container `name` (without page cache)",
        ),
    ),
    (
        "container.mem_limit_bytes",
        m(
            "statusmonitor_container_memory_limit_bytes",
            1.0,
            "Memory limit of container `name`",
        ),
    ),
    (
        "container.net_rx_bps",
        m(
            "statusmonitor_container_network_receive_bytes_per_second",
            1.0,
            "Bytes received by container `name`",
        ),
    ),
    (
        "container.net_tx_bps",
        m(
            "statusmonitor_container_network_transmit_bytes_per_second",
            1.0,
            "Bytes sent by container `name`",
        ),
    ),
    (
        "container.block_read_bps",
        m(
            "statusmonitor_container_block_read_bytes_per_second",
            1.0,
            "Bytes read from block devices by container `name`",
        ),
    ),
    (
        "container.block_write_bps",
        m(
            "statusmonitor_container_block_write_bytes_per_second",
            1.0,
            "Bytes written to block devices by container `name`",
        ),
    ),
];

/// The Prometheus metric of an engine metric; `None` for one this table
/// does not know (a newer agent's), which is then not exported.
pub fn prom_metric(engine_metric: &str) -> Option<&'static PromMetric> {
    TABLE
        .iter()
        .find(|(k, _)| *k == engine_metric)
        .map(|(_, m)| m)
}

/// Who a sample belongs to: the labels every exported series carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLabels {
    pub agent_id: u64,
    pub agent: String,
    pub host: String,
}

/// The full, sorted label set of `key` of `who` (without `__name__`), and the
/// Prometheus metric; `None` when the metric is not exported.
pub fn series_labels(
    who: &AgentLabels,
    key: &SeriesKey,
) -> Option<(&'static PromMetric, Vec<(String, String)>)> {
    let metric = prom_metric(&key.metric)?;
    let mut labels = Vec::with_capacity(key.labels.len() + 3);
    labels.push(("agent".to_string(), who.agent.clone()));
    labels.push(("agent_id".to_string(), who.agent_id.to_string()));
    labels.push(("host".to_string(), who.host.clone()));
    for (k, v) in &key.labels {
        // The series' own labels never shadow who it belongs to.
        if !matches!(k.as_str(), "agent" | "agent_id" | "host") {
            labels.push((k.clone(), v.clone()));
        }
    }
    labels.sort();
    Some((metric, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::model::report_samples;
    use storage::model::wire::{Container, Cpu, Disk, Memory, Network, Report, Temperature};

    #[test]
    fn every_metric_a_report_can_carry_is_exported() {
        let r = Report {
            ts_ms: 1,
            interval_ms: None,
            cpu: Some(Cpu {
                total_pct: 1.0,
                cores_pct: vec![1.0],
                cores_mhz: vec![1],
            }),
            load: Some([1.0, 1.0, 1.0]),
            memory: Some(Memory {
                total_bytes: 1,
                used_bytes: 1,
                available_bytes: Some(1),
                swap_total_bytes: Some(1),
                swap_used_bytes: Some(1),
            }),
            disks: vec![Disk {
                mount: "/".into(),
                total_bytes: 1,
                used_bytes: 1,
                available_bytes: Some(1),
                read_bps: Some(1),
                write_bps: Some(1),
            }],
            networks: vec![Network {
                iface: "eth0".into(),
                rx_bps: 1,
                tx_bps: 1,
            }],
            uptime_s: Some(1),
            temps: vec![Temperature {
                sensor: "cpu".into(),
                celsius: 1.0,
            }],
            containers: Some(vec![Container {
                id: "1".into(),
                name: "web".into(),
                image: "nginx".into(),
                state: "running".into(),
                health: Some("healthy".into()),
                restarts: Some(1),
                cpu_pct: Some(1.0),
                mem_used_bytes: Some(1),
                mem_limit_bytes: Some(1),
                net_rx_bps: Some(1),
                net_tx_bps: Some(1),
                block_read_bps: Some(1),
                block_write_bps: Some(1),
            }]),
            processes: None,
            services: None,
        };
        let samples = report_samples(&r);
        assert_eq!(samples.len(), TABLE.len());
        for (key, _) in samples {
            assert!(prom_metric(&key.metric).is_some(), "{key} is not exported");
        }
    }

    #[test]
    fn names_are_valid_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (_, m) in TABLE {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(m.name.starts_with("statusmonitor_"));
            assert!(
                m.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
        }
    }

    #[test]
    fn labels_are_sorted_and_cannot_be_shadowed() {
        let who = AgentLabels {
            agent_id: 7,
            agent: "nas".into(),
            host: "nas.lan".into(),
        };
        let key = SeriesKey::with_labels("disk.used_bytes", [("mount", "/"), ("host", "evil")]);
        let (m, labels) = series_labels(&who, &key).unwrap();
        assert_eq!(m.name, "statusmonitor_disk_used_bytes");
        let names: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["agent", "agent_id", "host", "mount"]);
        assert_eq!(labels[2].1, "nas.lan");
        assert!(series_labels(&who, &SeriesKey::new("future.metric")).is_none());
    }
}
