//! Bodies of `GET /api/agents/{agent_id}/containers`: what runs on a machine
//! now, from its newest report (containers with their counts, top
//! processes, systemd services).

use serde::{Deserialize, Serialize};

use super::wire::{Container, Process, Report, Service};

/// `GET /api/agents/{agent_id}/containers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainersResponse {
    pub agent_id: u64,
    /// When the newest report was taken; absent before the first one.
    pub ts_ms: Option<i64>,
    /// Absent when the agent does not report containers (no engine, no
    /// permission, turned off); sorted by name.
    pub containers: Option<Vec<Container>>,
    pub counts: ContainerCounts,
    /// Absent when not collected.
    pub processes: Option<Vec<Process>>,
    /// Failed units first, then by name; absent when not collected.
    pub services: Option<Vec<Service>>,
    pub failed_services: u32,
}

/// The overview card's figures: "12 containers, 1 unhealthy".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerCounts {
    pub total: u32,
    pub running: u32,
    /// Running with a failing health check.
    pub unhealthy: u32,
    /// Not running (exited, dead, created, paused, restarting…).
    pub stopped: u32,
}

impl ContainerCounts {
    pub fn of(containers: &[Container]) -> Self {
        let mut c = ContainerCounts::default();
        for x in containers {
            c.total += 1;
            if x.is_running() {
                c.running += 1;
            } else {
                c.stopped += 1;
            }
            if x.health.as_deref() == Some("unhealthy") {
                c.unhealthy += 1;
            }
        }
        c
    }
}

impl Service {
    pub fn is_failed(&self) -> bool {
        self.active == "failed"
    }
}

impl ContainersResponse {
    /// The answer for `agent_id` from its newest report (if any).
    pub fn of(agent_id: u64, newest: Option<&Report>) -> Self {
        let containers = newest.and_then(|r| r.containers.clone()).map(|mut l| {
            l.sort_by(|a, b| a.name.cmp(&b.name));
            l
        });
        let services = newest.and_then(|r| r.services.clone()).map(|mut l| {
            l.sort_by(|a, b| (!a.is_failed(), &a.unit).cmp(&(!b.is_failed(), &b.unit)));
            l
        });
        ContainersResponse {
            agent_id,
            ts_ms: newest.map(|r| r.ts_ms),
            counts: ContainerCounts::of(containers.as_deref().unwrap_or_default()),
            failed_services: services.iter().flatten().filter(|s| s.is_failed()).count() as u32,
            containers,
            processes: newest.and_then(|r| r.processes.clone()),
            services,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_order_of_the_newest_report() {
        let c = |name: &str, state: &str, health: Option<&str>| Container {
            name: name.into(),
            state: state.into(),
            health: health.map(Into::into),
            ..Container::default()
        };
        let s = |unit: &str, active: &str| Service {
            unit: unit.into(),
            active: active.into(),
            sub: String::new(),
        };
        let r = Report {
            ts_ms: 7,
            containers: Some(vec![
                c("web", "running", Some("unhealthy")),
                c("db", "running", Some("healthy")),
                c("job", "exited", None),
            ]),
            services: Some(vec![s("a.service", "active"), s("z.service", "failed")]),
            ..Report::default()
        };
        let out = ContainersResponse::of(3, Some(&r));
        assert_eq!(
            out.counts,
            ContainerCounts {
                total: 3,
                running: 2,
                unhealthy: 1,
                stopped: 1
            }
        );
        let names: Vec<&str> = out
            .containers
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["db", "job", "web"]);
        assert_eq!(out.services.unwrap()[0].unit, "z.service");
        assert_eq!(out.failed_services, 1);
        let none = ContainersResponse::of(3, None);
        assert_eq!(
            (none.ts_ms, none.containers, none.counts.total),
            (None, None, 0)
        );
    }
}
