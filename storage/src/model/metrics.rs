//! The mapping between one wire [`Report`] and the engine's samples: metric
//! names, their labels, and the inverse used to rebuild reports (the ring
//! buffer after a restart). No I/O; compiles for wasm.
//!
//! Metric names (labels in braces):
//! `cpu.total_pct`, `cpu.core_pct{core}`, `cpu.core_mhz{core}`, `load.1m`,
//! `load.5m`, `load.15m`, `mem.total_bytes`, `mem.used_bytes`,
//! `mem.available_bytes`, `swap.total_bytes`, `swap.used_bytes`,
//! `disk.total_bytes{mount}`, `disk.used_bytes{mount}`,
//! `disk.available_bytes{mount}`, `disk.read_bps{mount}`,
//! `disk.write_bps{mount}`, `net.rx_bps{iface}`, `net.tx_bps{iface}`,
//! `uptime_s`, `temp.celsius{sensor}`, and per container (labelled by its
//! name, so a recreated container continues its history):
//! `container.running{name}` (1 or 0), `container.restarts{name}`,
//! `container.cpu_pct{name}`, `container.mem_used_bytes{name}`,
//! `container.mem_limit_bytes{name}`, `container.net_rx_bps{name}`,
//! `container.net_tx_bps{name}`, `container.block_read_bps{name}`,
//! `container.block_write_bps{name}`. Processes and services are live
//! only: they have no series.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::wire::{Container, Cpu, Disk, Memory, Network, Report, Temperature};

/// The container metrics, in visiting order.
pub const CONTAINER_METRICS: [&str; 9] = [
    "container.running",
    "container.restarts",
    "container.cpu_pct",
    "container.mem_used_bytes",
    "container.mem_limit_bytes",
    "container.net_rx_bps",
    "container.net_tx_bps",
    "container.block_read_bps",
    "container.block_write_bps",
];

/// The name of a series inside one agent: a metric and its labels.
/// Labels are kept sorted by name, so equal keys compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesKey {
    pub metric: String,
    pub labels: Vec<(String, String)>,
}

impl SeriesKey {
    /// A series without labels.
    pub fn new(metric: impl Into<String>) -> Self {
        SeriesKey {
            metric: metric.into(),
            labels: Vec::new(),
        }
    }

    /// A series with labels; they are sorted by name here.
    pub fn with_labels<I, K, V>(metric: impl Into<String>, labels: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut labels: Vec<(String, String)> = labels
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        labels.sort();
        SeriesKey {
            metric: metric.into(),
            labels,
        }
    }

    fn one(metric: &str, label: &str, value: impl ToString) -> Self {
        SeriesKey {
            metric: metric.to_owned(),
            labels: vec![(label.to_owned(), value.to_string())],
        }
    }

    /// The value of one label, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if !self.labels.is_empty() {
            f.write_str("{")?;
            for (i, (k, v)) in self.labels.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{k}={v:?}")?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// The label value of a [`KeyRef`]: a core index, or a name borrowed from
/// the report (a mount, an interface, a sensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelRef<'a> {
    Index(usize),
    Name(&'a str),
}

/// A series key borrowed from a report while it is visited: what
/// [`SeriesKey`] holds, without allocating. Every key of a report has at
/// most one label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyRef<'a> {
    pub metric: &'static str,
    pub label: Option<(&'static str, LabelRef<'a>)>,
}

impl<'a> KeyRef<'a> {
    const fn plain(metric: &'static str) -> Self {
        KeyRef {
            metric,
            label: None,
        }
    }

    const fn one(metric: &'static str, label: &'static str, value: LabelRef<'a>) -> Self {
        KeyRef {
            metric,
            label: Some((label, value)),
        }
    }

    /// The owned key.
    pub fn to_key(self) -> SeriesKey {
        match self.label {
            None => SeriesKey::new(self.metric),
            Some((name, LabelRef::Index(i))) => SeriesKey::one(self.metric, name, i),
            Some((name, LabelRef::Name(v))) => SeriesKey::one(self.metric, name, v),
        }
    }

    /// Whether `key` is this key (`self.to_key() == *key`, without allocating).
    pub fn matches(self, key: &SeriesKey) -> bool {
        if key.metric != self.metric {
            return false;
        }
        match (self.label, key.labels.as_slice()) {
            (None, []) => true,
            (Some((name, value)), [(k, v)]) if k == name => match value {
                LabelRef::Name(s) => v == s,
                LabelRef::Index(i) => is_decimal(v, i),
            },
            _ => false,
        }
    }
}

/// Whether `s` is `i` written in decimal, as `to_string` writes it.
fn is_decimal(s: &str, mut i: usize) -> bool {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (i % 10) as u8;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    s.as_bytes() == &digits[at..]
}

/// Calls `f` with every sample of one report, in a stable order (that of
/// [`report_samples`]), without allocating.
pub fn visit_samples<'a>(r: &'a Report, mut f: impl FnMut(KeyRef<'a>, f64)) {
    if let Some(cpu) = &r.cpu {
        f(KeyRef::plain("cpu.total_pct"), cpu.total_pct);
        for (i, v) in cpu.cores_pct.iter().enumerate() {
            f(KeyRef::one("cpu.core_pct", "core", LabelRef::Index(i)), *v);
        }
        for (i, v) in cpu.cores_mhz.iter().enumerate() {
            f(
                KeyRef::one("cpu.core_mhz", "core", LabelRef::Index(i)),
                *v as f64,
            );
        }
    }
    if let Some([l1, l5, l15]) = r.load {
        f(KeyRef::plain("load.1m"), l1);
        f(KeyRef::plain("load.5m"), l5);
        f(KeyRef::plain("load.15m"), l15);
    }
    if let Some(m) = &r.memory {
        f(KeyRef::plain("mem.total_bytes"), m.total_bytes as f64);
        f(KeyRef::plain("mem.used_bytes"), m.used_bytes as f64);
        if let Some(v) = m.available_bytes {
            f(KeyRef::plain("mem.available_bytes"), v as f64);
        }
        if let Some(v) = m.swap_total_bytes {
            f(KeyRef::plain("swap.total_bytes"), v as f64);
        }
        if let Some(v) = m.swap_used_bytes {
            f(KeyRef::plain("swap.used_bytes"), v as f64);
        }
    }
    for d in &r.disks {
        let mount = LabelRef::Name(&d.mount);
        f(
            KeyRef::one("disk.total_bytes", "mount", mount),
            d.total_bytes as f64,
        );
        f(
            KeyRef::one("disk.used_bytes", "mount", mount),
            d.used_bytes as f64,
        );
        if let Some(v) = d.available_bytes {
            f(
                KeyRef::one("disk.available_bytes", "mount", mount),
                v as f64,
            );
        }
        if let Some(v) = d.read_bps {
            f(KeyRef::one("disk.read_bps", "mount", mount), v as f64);
        }
        if let Some(v) = d.write_bps {
            f(KeyRef::one("disk.write_bps", "mount", mount), v as f64);
        }
    }
    for n in &r.networks {
        let iface = LabelRef::Name(&n.iface);
        f(KeyRef::one("net.rx_bps", "iface", iface), n.rx_bps as f64);
        f(KeyRef::one("net.tx_bps", "iface", iface), n.tx_bps as f64);
    }
    if let Some(u) = r.uptime_s {
        f(KeyRef::plain("uptime_s"), u as f64);
    }
    for t in &r.temps {
        f(
            KeyRef::one("temp.celsius", "sensor", LabelRef::Name(&t.sensor)),
            t.celsius,
        );
    }
    for c in r.containers.iter().flatten() {
        let name = LabelRef::Name(&c.name);
        let [running, restarts, cpu, used, limit, rx, tx, read, write] = CONTAINER_METRICS;
        f(
            KeyRef::one(running, "name", name),
            if c.is_running() { 1.0 } else { 0.0 },
        );
        let ints = [
            (restarts, c.restarts.map(u64::from)),
            (used, c.mem_used_bytes),
            (limit, c.mem_limit_bytes),
            (rx, c.net_rx_bps),
            (tx, c.net_tx_bps),
            (read, c.block_read_bps),
            (write, c.block_write_bps),
        ];
        if let Some(v) = c.cpu_pct {
            f(KeyRef::one(cpu, "name", name), v);
        }
        for (metric, v) in ints {
            if let Some(v) = v {
                f(KeyRef::one(metric, "name", name), v as f64);
            }
        }
    }
}

/// Every sample of one report, in a stable order.
pub fn report_samples(r: &Report) -> Vec<(SeriesKey, f64)> {
    let mut out = Vec::with_capacity(48);
    visit_samples(r, |k, v| out.push((k.to_key(), v)));
    out
}

/// Rebuild a report from its samples (the inverse of [`report_samples`]).
///
/// Unknown metrics are ignored; `interval_ms` is not a sample and comes back
/// as `None`. Per-core vectors are filled up to the highest core index seen
/// (a missing core in between reads 0). Integer fields are rounded.
pub fn samples_to_report<'k>(
    ts_ms: i64,
    samples: impl IntoIterator<Item = (&'k SeriesKey, f64)>,
) -> Report {
    let mut r = Report {
        ts_ms,
        ..Report::default()
    };
    let mut cpu_total = None;
    let mut cores_pct: BTreeMap<usize, f64> = BTreeMap::new();
    let mut cores_mhz: BTreeMap<usize, u64> = BTreeMap::new();
    let mut load = [None; 3];
    let mut mem: [Option<u64>; 5] = [None; 5];
    let mut disks: Vec<Disk> = Vec::new();
    let mut nets: Vec<Network> = Vec::new();
    let mut containers: Vec<Container> = Vec::new();

    fn disk<'a>(disks: &'a mut Vec<Disk>, mount: &str) -> &'a mut Disk {
        let i = match disks.iter().position(|d| d.mount == mount) {
            Some(i) => i,
            None => {
                disks.push(Disk {
                    mount: mount.to_owned(),
                    ..Disk::default()
                });
                disks.len() - 1
            }
        };
        &mut disks[i]
    }
    fn net<'a>(nets: &'a mut Vec<Network>, iface: &str) -> &'a mut Network {
        let i = match nets.iter().position(|n| n.iface == iface) {
            Some(i) => i,
            None => {
                nets.push(Network {
                    iface: iface.to_owned(),
                    ..Network::default()
                });
                nets.len() - 1
            }
        };
        &mut nets[i]
    }
    let int = |v: f64| {
        if v.is_finite() && v > 0.0 {
            v.round() as u64
        } else {
            0
        }
    };

    for (key, v) in samples {
        let core = || key.label("core").and_then(|c| c.parse::<usize>().ok());
        match key.metric.as_str() {
            "cpu.total_pct" => cpu_total = Some(v),
            "cpu.core_pct" => {
                if let Some(c) = core() {
                    cores_pct.insert(c, v);
                }
            }
            "cpu.core_mhz" => {
                if let Some(c) = core() {
                    cores_mhz.insert(c, int(v));
                }
            }
            "load.1m" => load[0] = Some(v),
            "load.5m" => load[1] = Some(v),
            "load.15m" => load[2] = Some(v),
            "mem.total_bytes" => mem[0] = Some(int(v)),
            "mem.used_bytes" => mem[1] = Some(int(v)),
            "mem.available_bytes" => mem[2] = Some(int(v)),
            "swap.total_bytes" => mem[3] = Some(int(v)),
            "swap.used_bytes" => mem[4] = Some(int(v)),
            "disk.total_bytes"
            | "disk.used_bytes"
            | "disk.available_bytes"
            | "disk.read_bps"
            | "disk.write_bps" => {
                let Some(mount) = key.label("mount") else {
                    continue;
                };
                let d = disk(&mut disks, mount);
                match key.metric.as_str() {
                    "disk.total_bytes" => d.total_bytes = int(v),
                    "disk.used_bytes" => d.used_bytes = int(v),
                    "disk.available_bytes" => d.available_bytes = Some(int(v)),
                    "disk.read_bps" => d.read_bps = Some(int(v)),
                    _ => d.write_bps = Some(int(v)),
                }
            }
            "net.rx_bps" | "net.tx_bps" => {
                let Some(iface) = key.label("iface") else {
                    continue;
                };
                let n = net(&mut nets, iface);
                if key.metric == "net.rx_bps" {
                    n.rx_bps = int(v);
                } else {
                    n.tx_bps = int(v);
                }
            }
            m if m.starts_with("container.") => {
                let Some(name) = key.label("name") else {
                    continue;
                };
                let i = match containers.iter().position(|c| c.name == name) {
                    Some(i) => i,
                    None => {
                        containers.push(Container {
                            name: name.to_owned(),
                            ..Container::default()
                        });
                        containers.len() - 1
                    }
                };
                let c = &mut containers[i];
                match m {
                    // Only running or not is stored: "exited" stands for
                    // every state but running.
                    "container.running" => {
                        c.state = if v >= 0.5 { "running" } else { "exited" }.to_owned();
                    }
                    "container.restarts" => {
                        c.restarts = Some(u32::try_from(int(v)).unwrap_or(u32::MAX));
                    }
                    "container.cpu_pct" => c.cpu_pct = Some(v),
                    "container.mem_used_bytes" => c.mem_used_bytes = Some(int(v)),
                    "container.mem_limit_bytes" => c.mem_limit_bytes = Some(int(v)),
                    "container.net_rx_bps" => c.net_rx_bps = Some(int(v)),
                    "container.net_tx_bps" => c.net_tx_bps = Some(int(v)),
                    "container.block_read_bps" => c.block_read_bps = Some(int(v)),
                    "container.block_write_bps" => c.block_write_bps = Some(int(v)),
                    _ => {}
                }
            }
            "uptime_s" => r.uptime_s = Some(int(v)),
            "temp.celsius" => {
                if let Some(sensor) = key.label("sensor") {
                    r.temps.push(Temperature {
                        sensor: sensor.to_owned(),
                        celsius: v,
                    });
                }
            }
            _ => {}
        }
    }

    let dense_f = |m: &BTreeMap<usize, f64>| -> Vec<f64> {
        let n = m.keys().next_back().map_or(0, |k| k + 1);
        (0..n).map(|i| m.get(&i).copied().unwrap_or(0.0)).collect()
    };
    let dense_u = |m: &BTreeMap<usize, u64>| -> Vec<u64> {
        let n = m.keys().next_back().map_or(0, |k| k + 1);
        (0..n).map(|i| m.get(&i).copied().unwrap_or(0)).collect()
    };
    if cpu_total.is_some() || !cores_pct.is_empty() || !cores_mhz.is_empty() {
        r.cpu = Some(Cpu {
            total_pct: cpu_total.unwrap_or(0.0),
            cores_pct: dense_f(&cores_pct),
            cores_mhz: dense_u(&cores_mhz),
        });
    }
    if let [Some(a), Some(b), Some(c)] = load {
        r.load = Some([a, b, c]);
    }
    if mem.iter().any(Option::is_some) {
        r.memory = Some(Memory {
            total_bytes: mem[0].unwrap_or(0),
            used_bytes: mem[1].unwrap_or(0),
            available_bytes: mem[2],
            swap_total_bytes: mem[3],
            swap_used_bytes: mem[4],
        });
    }
    r.disks = disks;
    r.networks = nets;
    // Containers without their state sample are not rebuilt: a state is
    // what every container on the wire has.
    containers.retain(|c| !c.state.is_empty());
    if !containers.is_empty() {
        r.containers = Some(containers);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> Report {
        Report {
            ts_ms: 1_795_608_000_000,
            interval_ms: None,
            cpu: Some(Cpu {
                total_pct: 12.5,
                cores_pct: vec![10.1, 15.0],
                cores_mhz: vec![3400, 3600],
            }),
            load: Some([0.52, 0.41, 0.3]),
            memory: Some(Memory {
                total_bytes: 16_777_216_000,
                used_bytes: 8_388_608_000,
                available_bytes: Some(8_388_608_000),
                swap_total_bytes: Some(2_147_483_648),
                swap_used_bytes: Some(0),
            }),
            disks: vec![Disk {
                mount: "/".into(),
                total_bytes: 500_107_862_016,
                used_bytes: 200_043_144_806,
                available_bytes: Some(275_000_000_000),
                read_bps: Some(1024),
                write_bps: Some(20480),
            }],
            networks: vec![Network {
                iface: "eth0".into(),
                rx_bps: 120_000,
                tx_bps: 64_000,
            }],
            uptime_s: Some(86_400),
            temps: vec![Temperature {
                sensor: "k10temp Tctl".into(),
                celsius: 55.0,
            }],
            // As rebuilt from samples: no id, image or health (not series).
            containers: Some(vec![
                Container {
                    name: "web".into(),
                    state: "running".into(),
                    restarts: Some(3),
                    cpu_pct: Some(2.5),
                    mem_used_bytes: Some(50_000_000),
                    mem_limit_bytes: Some(200_000_000),
                    net_rx_bps: Some(1_200),
                    net_tx_bps: Some(800),
                    block_read_bps: Some(0),
                    block_write_bps: Some(4_096),
                    ..Container::default()
                },
                Container {
                    name: "backup".into(),
                    state: "exited".into(),
                    restarts: Some(0),
                    ..Container::default()
                },
            ]),
            processes: None,
            services: None,
        }
    }

    #[test]
    fn report_round_trips_through_samples() {
        let r = sample_report();
        let samples = report_samples(&r);
        assert_eq!(samples.len(), 1 + 2 + 2 + 3 + 5 + 5 + 2 + 1 + 1 + 9 + 2);
        assert_eq!(
            samples_to_report(r.ts_ms, samples.iter().map(|(k, v)| (k, *v))),
            r
        );
    }

    #[test]
    fn key_refs_match_exactly_their_own_keys() {
        let r = sample_report();
        let mut refs = Vec::new();
        visit_samples(&r, |k, _| refs.push(k));
        let keys: Vec<SeriesKey> = refs.iter().map(|k| k.to_key()).collect();
        for (i, k) in refs.iter().enumerate() {
            for (j, key) in keys.iter().enumerate() {
                assert_eq!(k.matches(key), i == j, "{k:?} against {key}");
            }
        }
        let core = |v: &str| SeriesKey::one("cpu.core_pct", "core", v);
        let one = KeyRef::one("cpu.core_pct", "core", LabelRef::Index(1));
        assert!(one.matches(&core("1")));
        for other in ["01", "10", "", "1 ", "x"] {
            assert!(!one.matches(&core(other)), "{other:?}");
        }
        let ten = KeyRef::one("cpu.core_pct", "core", LabelRef::Index(10));
        assert!(ten.matches(&core("10")) && !ten.matches(&core("1")));
        assert!(KeyRef::one("cpu.core_pct", "core", LabelRef::Index(0)).matches(&core("0")));
        let extra = SeriesKey::with_labels("load.1m", [("core", "0")]);
        assert!(!KeyRef::plain("load.1m").matches(&extra));
    }

    #[test]
    fn labels_are_sorted_and_displayed() {
        let k = SeriesKey::with_labels("x", [("b", "2"), ("a", "1")]);
        assert_eq!(k.labels[0].0, "a");
        assert_eq!(k.to_string(), "x{a=\"1\",b=\"2\"}");
        assert_eq!(k.label("b"), Some("2"));
    }

    /// A container's history follows its name: a recreated container (new
    /// id, same name) has the same series keys; its id, image and health
    /// are not series.
    #[test]
    fn container_series_are_keyed_by_name_only() {
        let mut a = sample_report();
        let mut b = sample_report();
        if let (Some(ca), Some(cb)) = (&mut a.containers, &mut b.containers) {
            ca[0].id = "aaaa".into();
            cb[0].id = "bbbb".into();
            cb[0].image = "nginx:1.28".into();
            cb[0].health = Some("unhealthy".into());
        }
        let keys = |r: &Report| -> Vec<SeriesKey> {
            report_samples(r).into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(keys(&a), keys(&b));
        assert!(keys(&a).contains(&SeriesKey::one("container.cpu_pct", "name", "web")));
        // Not collected at all: no container series; an empty list: none either.
        a.containers = Some(Vec::new());
        assert!(!keys(&a).iter().any(|k| k.metric.starts_with("container.")));
    }

    #[test]
    fn empty_report_has_no_samples() {
        let r = Report {
            ts_ms: 5,
            ..Report::default()
        };
        assert!(report_samples(&r).is_empty());
        assert_eq!(samples_to_report(5, []), r);
    }
}
