//! Wire format v1: what an agent POSTs to `/api/ingest`.
//!
//! Units are in the field names. `None` / an absent field means "not collected
//! on this machine", never zero. Unknown fields are ignored (serde's default),
//! so newer agents can add fields without breaking older servers.

use serde::{Deserialize, Serialize};

/// The version of this wire format. Sent by nothing on the wire today: a
/// future incompatible format will use another endpoint or a header.
pub const WIRE_VERSION: u32 = 1;

/// One POST body: optional host facts and one or more reports, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestBatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostFacts>,
    pub reports: Vec<Report>,
    /// Results of the checks the server assigned to this agent (absent
    /// from older agents; an older server ignores it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check_results: Vec<super::AgentCheckResult>,
}

/// Static facts about the machine, sent on start and when they change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostFacts {
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
}

/// One sample of the whole machine at `ts_ms` (agent clock, Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub ts_ms: i64,
    /// The agent's collection interval, so the server can tell online from offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// Load average over 1, 5 and 15 minutes, where the OS has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<[f64; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<Disk>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Network>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub temps: Vec<Temperature>,
    /// The containers of the local Docker-API engine (Docker, Podman).
    /// Absent: not collected (no engine, no permission, turned off);
    /// an empty list: an engine with no containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<Container>>,
    /// The top processes by CPU and by memory (the union, each once).
    /// Live only: not stored as series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<Process>>,
    /// systemd units: the failed ones and those the agent was told to watch.
    /// Live only: not stored as series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<Service>>,
}

/// One container as its engine reports it. Rates are per second over the
/// agent's interval; a value the engine did not answer in time is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Container {
    /// The engine's id (64 hex digits for Docker); a recreated container
    /// gets a new one and keeps its name.
    pub id: String,
    /// The name without Docker's leading `/`: the label of its series.
    pub name: String,
    #[serde(default)]
    pub image: String,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited`
    /// or `dead`.
    pub state: String,
    /// `healthy`, `unhealthy` or `starting`; absent without a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// How often the engine restarted it (its restart policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    /// CPU time over the interval, in % of one core (200 = two cores busy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_used_bytes: Option<u64>,
    /// The memory limit; the host's memory when the container has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_rx_bps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_tx_bps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_read_bps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_write_bps: Option<u64>,
}

/// One process among the busiest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Process {
    pub pid: u32,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// CPU time over the interval, in % of one core.
    pub cpu_pct: f64,
    pub rss_bytes: u64,
    /// The command line, truncated; sent only when the agent is told to
    /// (`--process-cmdline`), since it can hold secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
}

/// One systemd unit's state, as `systemctl` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Service {
    /// The unit name, `nginx.service`.
    pub unit: String,
    /// `active`, `inactive`, `failed`, `activating`, `deactivating`,
    /// `reloading`.
    pub active: String,
    /// The unit type's own state: `running`, `exited`, `dead`, `failed`…
    #[serde(default)]
    pub sub: String,
}

impl Container {
    /// Memory used as a percentage of the limit, when both are known.
    pub fn mem_pct(&self) -> Option<f64> {
        pct(self.mem_used_bytes?, self.mem_limit_bytes?)
    }

    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cpu {
    pub total_pct: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cores_pct: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cores_mhz: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_used_bytes: Option<u64>,
}

/// One mounted filesystem, in `df`'s terms: `total_bytes` is its size,
/// `used_bytes` what is in use (size − free blocks, so the blocks reserved
/// for root do not count as used), `available_bytes` what an ordinary user
/// can still write (smaller than size − used by the reservation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Disk {
    pub mount: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    /// Bytes an unprivileged user can still write (`f_bavail`). Absent
    /// from older agents, which sent used = total − available instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_bps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_bps: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Network {
    pub iface: String,
    pub rx_bps: u64,
    pub tx_bps: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Temperature {
    pub sensor: String,
    pub celsius: f64,
}

impl Memory {
    /// Used memory as a percentage of total, `None` when total is unknown (0).
    pub fn used_pct(&self) -> Option<f64> {
        pct(self.used_bytes, self.total_bytes)
    }

    /// Used swap as a percentage of total swap, `None` without swap.
    pub fn swap_used_pct(&self) -> Option<f64> {
        pct(self.swap_used_bytes?, self.swap_total_bytes?)
    }
}

impl Disk {
    /// Used space as a percentage, as `df` computes it: used ÷ (used +
    /// available), rounded up by `df` but not here. Without `available_bytes`
    /// (older agents): used ÷ total.
    pub fn used_pct(&self) -> Option<f64> {
        match self.available_bytes {
            Some(available) => pct(self.used_bytes, self.used_bytes.saturating_add(available)),
            None => pct(self.used_bytes, self.total_bytes),
        }
    }
}

fn pct(used: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| used as f64 * 100.0 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_example_parses() {
        let json = r#"{
          "host": { "hostname": "nas", "os": "Debian 12", "kernel": "6.1.0",
                    "arch": "x86_64", "cpu_model": "Ryzen 5 5600G", "cores": 12 },
          "reports": [{
              "ts_ms": 1795608000000, "interval_ms": 5000,
              "cpu": { "total_pct": 12.5, "cores_pct": [10.1, 15.0], "cores_mhz": [3400, 3600] },
              "load": [0.52, 0.41, 0.30],
              "memory": { "total_bytes": 16777216000, "used_bytes": 8388608000,
                          "available_bytes": 8388608000, "swap_total_bytes": 2147483648,
                          "swap_used_bytes": 0 },
              "disks": [ { "mount": "/", "total_bytes": 500107862016, "used_bytes": 200043144806,
                           "read_bps": 1024, "write_bps": 20480 } ],
              "networks": [ { "iface": "eth0", "rx_bps": 120000, "tx_bps": 64000 } ],
              "uptime_s": 86400,
              "temps": [ { "sensor": "k10temp Tctl", "celsius": 55.0 } ],
              "containers": [ { "id": "4f1c", "name": "web", "image": "nginx:1.27",
                                "state": "running", "health": "healthy", "restarts": 2,
                                "cpu_pct": 3.5, "mem_used_bytes": 50000000,
                                "mem_limit_bytes": 200000000, "net_rx_bps": 1200,
                                "net_tx_bps": 800, "block_read_bps": 0,
                                "block_write_bps": 4096 } ],
              "processes": [ { "pid": 1234, "name": "postgres", "user": "postgres",
                               "cpu_pct": 12.5, "rss_bytes": 104857600 } ],
              "services": [ { "unit": "nginx.service", "active": "failed", "sub": "failed" } ],
              "some_future_field": 1
          }]}"#;
        let batch: IngestBatch = serde_json::from_str(json).unwrap();
        assert_eq!(batch.host.as_ref().unwrap().cores, Some(12));
        let r = &batch.reports[0];
        assert_eq!(r.cpu.as_ref().unwrap().cores_mhz, vec![3400, 3600]);
        assert_eq!(r.memory.as_ref().unwrap().used_pct(), Some(50.0));
        assert_eq!(r.disks[0].mount, "/");
        let web = &r.containers.as_ref().unwrap()[0];
        assert_eq!(web.mem_pct(), Some(25.0));
        assert!(web.is_running());
        assert_eq!(r.processes.as_ref().unwrap()[0].cmdline, None);
        assert_eq!(r.services.as_ref().unwrap()[0].active, "failed");
        let back: IngestBatch =
            serde_json::from_str(&serde_json::to_string(&batch).unwrap()).unwrap();
        assert_eq!(back, batch);
    }

    /// 252 GiB with 228 GiB free and 67 GiB available (a large root
    /// reservation): `df` says 24 GiB used, 27 %.
    #[test]
    fn disk_percentage_is_dfs() {
        const GIB: u64 = 1 << 30;
        let d = Disk {
            mount: "/".into(),
            total_bytes: 252 * GIB,
            used_bytes: 24 * GIB,
            available_bytes: Some(67 * GIB),
            ..Disk::default()
        };
        let pct = d.used_pct().unwrap();
        assert!((26.0..27.0).contains(&pct), "{pct}");
        // An older agent's report: used ÷ total.
        let old = Disk {
            available_bytes: None,
            used_bytes: 126 * GIB,
            ..d.clone()
        };
        assert_eq!(old.used_pct(), Some(50.0));
        // A full filesystem with nothing available: 100 %, and nothing at all: none.
        let full = Disk {
            used_bytes: 240 * GIB,
            available_bytes: Some(0),
            ..d.clone()
        };
        assert_eq!(full.used_pct(), Some(100.0));
        let empty = Disk {
            used_bytes: 0,
            available_bytes: Some(0),
            ..d
        };
        assert_eq!(empty.used_pct(), None);
    }

    #[test]
    fn missing_parts_stay_missing() {
        let r: Report = serde_json::from_str(r#"{"ts_ms": 1}"#).unwrap();
        assert!(r.cpu.is_none() && r.load.is_none() && r.disks.is_empty());
        assert!(r.containers.is_none() && r.processes.is_none() && r.services.is_none());
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"ts_ms":1}"#);
    }
}
