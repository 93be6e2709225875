//! Checks on what runs on the machine: containers, top processes and
//! systemd services of one report. Same rules as the rest of a report: the
//! first problem refuses the whole batch with a 422 naming the field.

use storage::model::Report;

use super::validate::{At, finite_in, invalid, text};
use crate::error::ApiError;

/// Most containers one report may carry.
pub const MAX_CONTAINERS: usize = 500;
/// Most processes one report may carry (top 10 by CPU and by memory, with
/// room to spare).
pub const MAX_PROCESSES: usize = 50;
/// Most systemd units one report may carry.
pub const MAX_SERVICES: usize = 500;
/// Longest state word (`running`, `deactivating`…).
const MAX_STATE: usize = 32;
/// Longest process command line (the agent truncates).
const MAX_CMDLINE: usize = 4_096;
/// CPU % of one core: a machine of 1,000 busy cores reads 100,000.
const CPU_MAX: f64 = 100_000.0;

pub(super) fn validate(at: At, r: &Report) -> Result<(), ApiError> {
    if let Some(list) = &r.containers {
        bound(|| format!("{at}.containers"), list.len(), MAX_CONTAINERS)?;
        for (i, c) in list.iter().enumerate() {
            let field = |name: &str| format!("{at}.containers[{i}].{name}");
            text(|| field("id"), &c.id, true)?;
            text(|| field("name"), &c.name, false)?;
            text(|| field("image"), &c.image, true)?;
            word(|| field("state"), &c.state)?;
            if let Some(h) = &c.health
                && !matches!(h.as_str(), "healthy" | "unhealthy" | "starting")
            {
                return Err(invalid(
                    &field("health"),
                    "must be healthy, unhealthy or starting (absent without a health check)",
                ));
            }
            if let Some(v) = c.cpu_pct {
                finite_in(|| field("cpu_pct"), v, 0.0, CPU_MAX)?;
            }
            if list[..i].iter().any(|o| o.name == c.name) {
                return Err(invalid(
                    &field("name"),
                    &format!("`{}` appears twice", c.name),
                ));
            }
        }
    }
    if let Some(list) = &r.processes {
        bound(|| format!("{at}.processes"), list.len(), MAX_PROCESSES)?;
        for (i, p) in list.iter().enumerate() {
            let field = |name: &str| format!("{at}.processes[{i}].{name}");
            text(|| field("name"), &p.name, false)?;
            if let Some(u) = &p.user {
                text(|| field("user"), u, true)?;
            }
            finite_in(|| field("cpu_pct"), p.cpu_pct, 0.0, CPU_MAX)?;
            if let Some(cmd) = &p.cmdline {
                if cmd.len() > MAX_CMDLINE {
                    return Err(invalid(
                        &field("cmdline"),
                        &format!("is longer than {MAX_CMDLINE} bytes"),
                    ));
                }
                if cmd.chars().any(char::is_control) {
                    return Err(invalid(&field("cmdline"), "contains control characters"));
                }
                if let Some(problem) = crate::text::hidden_problem(cmd) {
                    return Err(invalid(&field("cmdline"), &problem));
                }
            }
            if list[..i].iter().any(|o| o.pid == p.pid) {
                return Err(invalid(&field("pid"), &format!("{} appears twice", p.pid)));
            }
        }
    }
    if let Some(list) = &r.services {
        bound(|| format!("{at}.services"), list.len(), MAX_SERVICES)?;
        for (i, s) in list.iter().enumerate() {
            let field = |name: &str| format!("{at}.services[{i}].{name}");
            text(|| field("unit"), &s.unit, false)?;
            word(|| field("active"), &s.active)?;
            if !s.sub.is_empty() {
                word(|| field("sub"), &s.sub)?;
            }
            if list[..i].iter().any(|o| o.unit == s.unit) {
                return Err(invalid(
                    &field("unit"),
                    &format!("`{}` appears twice", s.unit),
                ));
            }
        }
    }
    Ok(())
}

fn bound(field: impl FnOnce() -> String, n: usize, max: usize) -> Result<(), ApiError> {
    if n > max {
        return Err(invalid(
            &field(),
            &format!("has {n} entries; at most {max}"),
        ));
    }
    Ok(())
}

/// A state word: 1 to 32 lowercase ASCII letters or `-`.
fn word(field: impl FnOnce() -> String, v: &str) -> Result<(), ApiError> {
    if v.is_empty()
        || v.len() > MAX_STATE
        || !v.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
    {
        return Err(invalid(
            &field(),
            &format!("must be 1 to {MAX_STATE} lowercase letters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use storage::model::{Container, IngestBatch, Process, Report, Service};

    use super::super::validate::tests::{DAY, NOW, report};
    use super::*;
    use crate::ingest::validate_batch;

    fn running() -> Report {
        let mut r = report();
        r.containers = Some(vec![Container {
            id: "4f1c".repeat(16),
            name: "web".into(),
            image: "nginx:1.27".into(),
            state: "running".into(),
            health: Some("healthy".into()),
            restarts: Some(1),
            cpu_pct: Some(250.0),
            mem_used_bytes: Some(1),
            mem_limit_bytes: Some(2),
            ..Container::default()
        }]);
        r.processes = Some(vec![Process {
            pid: 1,
            name: "init".into(),
            user: Some("root".into()),
            cpu_pct: 0.5,
            rss_bytes: 1 << 20,
            cmdline: Some("/sbin/init splash".into()),
        }]);
        r.services = Some(vec![Service {
            unit: "nginx.service".into(),
            active: "failed".into(),
            sub: "failed".into(),
        }]);
        r
    }

    fn check(mutate: impl FnOnce(&mut Report)) -> Result<(), String> {
        let mut r = running();
        mutate(&mut r);
        let batch = IngestBatch {
            host: None,
            reports: vec![running(), r],
            check_results: Vec::new(),
        };
        validate_batch(&batch, NOW, DAY).map_err(|e| match e {
            ApiError::Invalid(m) => m,
            other => panic!("not a 422: {other:?}"),
        })
    }

    #[test]
    fn containers_processes_and_services_pass_and_may_be_empty() {
        check(|_| {}).unwrap();
        check(|r| {
            r.containers = Some(Vec::new());
            r.processes = Some(Vec::new());
            r.services = Some(Vec::new());
        })
        .unwrap();
        check(|r| {
            let c = &mut r.containers.as_mut().unwrap()[0];
            c.health = None;
            c.id.clear();
            c.image.clear();
        })
        .unwrap();
        check(|r| {
            let many = r.containers.as_ref().unwrap()[0].clone();
            r.containers = Some(
                (0..MAX_CONTAINERS)
                    .map(|i| Container {
                        name: format!("c{i}"),
                        ..many.clone()
                    })
                    .collect(),
            );
        })
        .unwrap();
    }

    /// Every bound of the issue: 500 containers, 50 processes, 500
    /// services; names and ids bounded and printable; each refusal names
    /// its field.
    #[test]
    fn each_bad_entry_names_its_field() {
        type Mutation = Box<dyn FnOnce(&mut Report)>;
        fn c(r: &mut Report) -> &mut Container {
            &mut r.containers.as_mut().unwrap()[0]
        }
        fn p(r: &mut Report) -> &mut Process {
            &mut r.processes.as_mut().unwrap()[0]
        }
        fn s(r: &mut Report) -> &mut Service {
            &mut r.services.as_mut().unwrap()[0]
        }
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "reports[1].containers:",
                Box::new(|r| {
                    let one = r.containers.as_ref().unwrap()[0].clone();
                    r.containers = Some(
                        (0..10_000)
                            .map(|i| Container {
                                name: format!("c{i}"),
                                ..one.clone()
                            })
                            .collect(),
                    );
                }),
            ),
            (
                "reports[1].containers[0].name",
                Box::new(|r| c(r).name = "x".repeat(1 << 20)),
            ),
            (
                "reports[1].containers[0].name",
                Box::new(|r| c(r).name = "web\u{1b}[2J".into()),
            ),
            (
                "reports[1].containers[0].name",
                Box::new(|r| c(r).name.clear()),
            ),
            (
                "reports[1].containers[0].id",
                Box::new(|r| c(r).id = "a".repeat(256)),
            ),
            (
                "reports[1].containers[0].image",
                Box::new(|r| c(r).image = "nginx\u{202E}".into()),
            ),
            (
                "reports[1].containers[0].state",
                Box::new(|r| c(r).state = "Running!".into()),
            ),
            (
                "reports[1].containers[0].health",
                Box::new(|r| c(r).health = Some("none".into())),
            ),
            (
                "reports[1].containers[0].cpu_pct",
                Box::new(|r| c(r).cpu_pct = Some(f64::NAN)),
            ),
            (
                "reports[1].containers[0].cpu_pct",
                Box::new(|r| c(r).cpu_pct = Some(-1.0)),
            ),
            (
                "reports[1].containers[1].name",
                Box::new(|r| {
                    let list = r.containers.as_mut().unwrap();
                    list.push(list[0].clone());
                }),
            ),
            (
                "reports[1].processes:",
                Box::new(|r| {
                    let one = r.processes.as_ref().unwrap()[0].clone();
                    r.processes = Some(
                        (0..=MAX_PROCESSES as u32)
                            .map(|pid| Process { pid, ..one.clone() })
                            .collect(),
                    );
                }),
            ),
            (
                "reports[1].processes[0].name",
                Box::new(|r| p(r).name = "a\nb".into()),
            ),
            (
                "reports[1].processes[0].user",
                Box::new(|r| p(r).user = Some("u".repeat(300))),
            ),
            (
                "reports[1].processes[0].cpu_pct",
                Box::new(|r| p(r).cpu_pct = f64::INFINITY),
            ),
            (
                "reports[1].processes[0].cmdline",
                Box::new(|r| p(r).cmdline = Some("x".repeat(MAX_CMDLINE + 1))),
            ),
            (
                "reports[1].processes[0].cmdline",
                Box::new(|r| p(r).cmdline = Some("a\u{7}".into())),
            ),
            (
                "reports[1].processes[0].cmdline",
                Box::new(|r| p(r).cmdline = Some("ls \u{202E}txt.exe".into())),
            ),
            (
                "reports[1].processes[1].pid",
                Box::new(|r| {
                    let list = r.processes.as_mut().unwrap();
                    list.push(list[0].clone());
                }),
            ),
            (
                "reports[1].services:",
                Box::new(|r| {
                    r.services = Some(
                        (0..=MAX_SERVICES)
                            .map(|i| Service {
                                unit: format!("u{i}.service"),
                                active: "active".into(),
                                sub: "running".into(),
                            })
                            .collect(),
                    );
                }),
            ),
            (
                "reports[1].services[0].unit",
                Box::new(|r| s(r).unit = "\u{0}".into()),
            ),
            (
                "reports[1].services[0].active",
                Box::new(|r| s(r).active = String::new()),
            ),
            (
                "reports[1].services[0].sub",
                Box::new(|r| s(r).sub = "x".repeat(33)),
            ),
            (
                "reports[1].services[1].unit",
                Box::new(|r| {
                    let list = r.services.as_mut().unwrap();
                    list.push(list[0].clone());
                }),
            ),
        ];
        for (field, mutate) in cases {
            let msg = check(mutate).expect_err(field);
            assert!(msg.starts_with(field), "expected {field}, got {msg}");
        }
    }
}
