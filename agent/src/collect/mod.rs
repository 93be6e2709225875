//! Collection: one [`Collector`] owns the sysinfo handles and the previous
//! counter readings, and turns them into a wire [`Report`] on each tick.
//!
//! Only what is sent is refreshed (CPU usage and frequency, memory, the disk
//! list with space and I/O counters, network counters, sensors, and the
//! containers of a local engine). Each sub-module owns one part of the
//! report; per-OS details live in [`platform`].

#[cfg(unix)]
pub mod containers;
mod cpu;
mod disk;
#[cfg(unix)]
pub mod docker;
mod host;
mod memory;
mod net;
pub mod platform;
pub mod processes;
pub mod rate;
pub mod services;
mod temp;

use std::time::Instant;

pub use processes::ProcessConfig;
pub use services::ServiceConfig;
use storage::model::wire::{HostFacts, Report};
use sysinfo::System;

/// How often (in ticks) device lists that rarely change are re-read.
const RELIST_EVERY: u32 = 12;

/// Which mounts and interfaces are reported. Patterns match exactly, or as a
/// prefix when they end with `*`. Empty include lists mean "all".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub mounts: Vec<String>,
    pub exclude_mounts: Vec<String>,
    pub ifaces: Vec<String>,
    pub exclude_ifaces: Vec<String>,
    pub include_loopback: bool,
}

impl Filter {
    /// Container root filesystems are skipped unless `--mounts` names them.
    pub fn mount_allowed(&self, mount: &str) -> bool {
        (!is_container_mount(mount) || self.mounts.iter().any(|p| hit(p, mount)))
            && allowed(&self.mounts, &self.exclude_mounts, mount)
    }

    /// Loopback is skipped unless asked for, the host side of container
    /// links (`veth…`) unless `--ifaces` names them.
    pub fn iface_allowed(&self, iface: &str) -> bool {
        (self.include_loopback || !platform::is_loopback(iface))
            && (!iface.starts_with("veth") || self.ifaces.iter().any(|p| hit(p, iface)))
            && allowed(&self.ifaces, &self.exclude_ifaces, iface)
    }
}

/// A container's root filesystem under Docker's or Podman's storage: one
/// per running container, all on the disk that holds the storage (which is
/// reported as itself), and the container's own figures are reported per
/// container.
fn is_container_mount(mount: &str) -> bool {
    const STORAGE: &[&str] = &[
        "/var/lib/docker/overlay2",
        "/var/lib/docker/containers",
        "/var/lib/containers/storage/overlay",
        "/var/lib/containers/storage/overlay-containers",
    ];
    STORAGE.iter().any(|root| {
        mount == *root
            || mount
                .strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('/'))
    }) || mount.contains("/.local/share/containers/storage/overlay/")
}

/// `pattern` matches `name` exactly, or as a prefix when it ends with `*`.
fn hit(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn allowed(include: &[String], exclude: &[String], name: &str) -> bool {
    (include.is_empty() || include.iter().any(|p| hit(p, name)))
        && !exclude.iter().any(|p| hit(p, name))
}

/// What the agent was told about containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerConfig {
    /// Off with `--no-containers`.
    pub disabled: bool,
    /// `--docker-socket`: only this one; else the Docker and Podman
    /// defaults (`containers::default_sockets`).
    pub socket: Option<std::path::PathBuf>,
}

/// Owns the sysinfo handles and the state rates need between ticks.
pub struct Collector {
    interval_ms: Option<u32>,
    /// `None` where sysinfo does not support the OS: no CPU or memory then.
    system: Option<System>,
    disks: disk::DiskCollector,
    nets: net::NetCollector,
    temps: temp::TempCollector,
    #[cfg(unix)]
    containers: Option<containers::ContainerCollector>,
    processes: Option<processes::ProcessCollector>,
    services: Option<services::ServiceCollector>,
    ticks: u32,
}

impl Collector {
    /// Creates the handles and takes a first reading, so the first real tick
    /// already has a baseline for CPU usage and rates.
    pub fn new(filter: Filter, interval_ms: Option<u32>) -> Self {
        let mut c = Self {
            interval_ms,
            system: System::new().ok(),
            disks: disk::DiskCollector::new(filter.clone()),
            nets: net::NetCollector::new(filter),
            temps: temp::TempCollector::new(),
            #[cfg(unix)]
            containers: None,
            processes: None,
            services: None,
            ticks: 0,
        };
        let _prime = c.collect(0);
        c
    }

    /// Also reports the containers of the local engine (unless turned
    /// off), with a first reading taken now as the baseline of their rates.
    #[cfg(unix)]
    pub fn with_containers(
        mut self,
        config: &containers::ContainerConfig,
        interval: std::time::Duration,
    ) -> Self {
        self.containers = containers::ContainerCollector::new(config, interval);
        if let Some(c) = &mut self.containers {
            let _prime = c.collect();
        }
        self
    }

    /// One report stamped `ts_ms`. Rates cover the real time since the last call.
    pub fn collect(&mut self, ts_ms: i64) -> Report {
        let now = Instant::now();
        let relist = self.ticks.is_multiple_of(RELIST_EVERY);
        self.ticks = self.ticks.wrapping_add(1);
        Report {
            ts_ms,
            interval_ms: self.interval_ms,
            cpu: self.system.as_mut().and_then(cpu::collect),
            load: platform::load_average(),
            memory: self.system.as_mut().and_then(memory::collect),
            disks: self.disks.collect(now),
            networks: self.nets.collect(now),
            uptime_s: host::uptime(),
            temps: self.temps.collect(relist),
            #[cfg(unix)]
            containers: self
                .containers
                .as_mut()
                .and_then(containers::ContainerCollector::collect),
            #[cfg(not(unix))]
            containers: None,
            processes: match (&mut self.processes, &mut self.system) {
                (Some(p), Some(system)) => p.collect(system),
                _ => None,
            },
            services: self
                .services
                .as_mut()
                .and_then(services::ServiceCollector::collect),
        }
    }

    /// Also reports the top processes (unless turned off), with a first
    /// reading taken now as the baseline of their CPU %.
    pub fn with_processes(mut self, config: &ProcessConfig) -> Self {
        self.processes = processes::ProcessCollector::new(config);
        if let (Some(p), Some(system)) = (&mut self.processes, &mut self.system) {
            let _prime = p.collect(system);
        }
        self
    }

    /// Also reports failed and watched systemd units (unless turned off).
    pub fn with_services(mut self, config: &ServiceConfig) -> Self {
        self.services = services::ServiceCollector::new(config);
        self
    }

    /// The static facts about this machine.
    pub fn host_facts(&self) -> HostFacts {
        host::facts(self.system.as_ref())
    }
}

/// Most entries of one list (disks, interfaces, sensors) a report carries;
/// the server refuses longer lists.
pub(crate) const MAX_ITEMS: usize = 1024;
/// Longest name (mount, interface, sensor) the server accepts, in bytes.
const MAX_LABEL: usize = 255;

/// A name fit for the wire: trimmed, control and invisible formatting
/// characters (which the server refuses) replaced, at most [`MAX_LABEL`]
/// bytes (cut on a character boundary); `None` if empty.
pub(crate) fn label(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len().min(MAX_LABEL));
    for c in raw.trim().chars() {
        let c = if unprintable(c) { '?' } else { c };
        if out.len() + c.len_utf8() > MAX_LABEL {
            break;
        }
        out.push(c);
    }
    (!out.is_empty()).then_some(out)
}

/// A character the server refuses in a name: a control character, or an
/// invisible one that makes text display as something else (a process can
/// be named by anyone on the machine: it must not get reports refused).
pub(crate) fn unprintable(c: char) -> bool {
    c.is_control() || storage::model::hidden::is_hidden(c)
}

/// Rounds to `decimals` places: the precision the source really has.
pub(crate) fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_patterns_include_exclude_and_loopback() {
        let f = Filter {
            exclude_mounts: vec!["/boot*".into()],
            ifaces: vec!["eth*".into(), "lo".into()],
            ..Default::default()
        };
        assert!(f.mount_allowed("/"));
        assert!(!f.mount_allowed("/boot/efi"));
        assert!(f.iface_allowed("eth0"));
        assert!(!f.iface_allowed("wlan0"));
        assert!(
            !f.iface_allowed(if cfg!(target_os = "linux") {
                "lo"
            } else {
                "lo0"
            }) || !cfg!(unix)
        );
        let with_lo = Filter {
            include_loopback: true,
            ..Default::default()
        };
        assert!(with_lo.iface_allowed("lo"));
    }

    /// What a container engine makes per container is reported per
    /// container, not as the host's disks and interfaces, unless named.
    #[test]
    fn container_roots_and_links_are_skipped_unless_named() {
        let all = Filter::default();
        for mount in [
            "/var/lib/docker/overlay2/4f1c/merged",
            "/var/lib/containers/storage/overlay",
            "/var/lib/containers/storage/overlay/11bb/merged",
            "/home/ann/.local/share/containers/storage/overlay/11bb/merged",
        ] {
            assert!(!all.mount_allowed(mount), "{mount}");
        }
        for mount in [
            "/",
            "/var/lib/docker",
            "/var/lib/containers",
            "/srv/overlay2",
        ] {
            assert!(all.mount_allowed(mount), "{mount}");
        }
        assert!(!all.iface_allowed("veth1a2b3c4"));
        assert!(all.iface_allowed("eth0") && all.iface_allowed("docker0"));
        let named = Filter {
            mounts: vec!["/var/lib/docker/overlay2/*".into()],
            ifaces: vec!["veth*".into()],
            ..Default::default()
        };
        assert!(named.mount_allowed("/var/lib/docker/overlay2/4f1c/merged"));
        assert!(named.iface_allowed("veth1a2b3c4"));
    }

    #[test]
    fn labels_are_trimmed_cleaned_and_bounded() {
        assert_eq!(label("  eth0 "), Some("eth0".into()));
        assert_eq!(label("a\tb"), Some("a?b".into()));
        assert_eq!(label("   "), None);
        assert_eq!(label("evil\u{202E}gpj.exe"), Some("evil?gpj.exe".into()));
        assert_eq!(label("a\u{200B}b"), Some("a?b".into()));
        let long = "é".repeat(200);
        let l = label(&long).unwrap();
        assert!(l.len() <= 255 && l.chars().all(|c| c == 'é'));
    }

    #[test]
    fn rounding_keeps_source_precision() {
        assert_eq!(round_to(12.345_678, 1), 12.3);
        assert_eq!(round_to(0.526, 2), 0.53);
    }
}
