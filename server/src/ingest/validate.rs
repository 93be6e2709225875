//! Value checks on a parsed batch. The first problem found is reported as a
//! 422 whose message starts with the field's path (`reports[2].cpu.total_pct`)
//! and the whole batch is refused: nothing of it is stored.

use storage::model::time::{format_duration_ms, format_rfc3339_ms};
use storage::model::{IngestBatch, Report};

use crate::error::ApiError;

/// The agent replays at most 500 reports per request; leave room, refuse floods.
pub const MAX_REPORTS_PER_BATCH: usize = 2_000;
/// How far in the future (agent clock ahead of ours) a report may be.
pub const MAX_FUTURE_MS: i64 = 5 * 60_000;
/// Percentages are measured, so a hair over 100 from rounding is tolerated.
const PCT_MAX: f64 = 101.0;
const MAX_ITEMS: usize = 1_024;
const MAX_LABEL: usize = 255;

/// Checks every report of `batch` at server time `now_ms`; data older than
/// `raw_retention_ms` could not be stored in the 5 s tier and is refused.
pub fn validate_batch(
    batch: &IngestBatch,
    now_ms: i64,
    raw_retention_ms: i64,
) -> Result<(), ApiError> {
    if batch.reports.is_empty() {
        return Err(invalid("reports", "must hold at least one report"));
    }
    if batch.reports.len() > MAX_REPORTS_PER_BATCH {
        return Err(invalid(
            "reports",
            &format!(
                "holds {} reports; at most {MAX_REPORTS_PER_BATCH} per request",
                batch.reports.len()
            ),
        ));
    }
    if let Some(host) = &batch.host {
        text(|| "host.hostname".into(), &host.hostname, false)?;
        for (name, value) in [
            ("host.os", &host.os),
            ("host.kernel", &host.kernel),
            ("host.arch", &host.arch),
            ("host.cpu_model", &host.cpu_model),
        ] {
            if let Some(v) = value {
                text(|| name.into(), v, true)?;
            }
        }
        if let Some(cores) = host.cores
            && !(1..=65_536).contains(&cores)
        {
            return Err(invalid(
                "host.cores",
                &format!("{cores} is not a core count"),
            ));
        }
    }
    for (i, report) in batch.reports.iter().enumerate() {
        validate_report(At(i), report, now_ms, raw_retention_ms)?;
    }
    Ok(())
}

/// Where a report is in the batch, `reports[i]`: formatted only into the
/// message of a refused field.
#[derive(Clone, Copy)]
pub(super) struct At(pub(super) usize);

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reports[{}]", self.0)
    }
}

fn validate_report(at: At, r: &Report, now_ms: i64, raw_retention_ms: i64) -> Result<(), ApiError> {
    if r.ts_ms > now_ms + MAX_FUTURE_MS {
        return Err(invalid(
            &format!("{at}.ts_ms"),
            &format!(
                "{} is more than 5 minutes ahead of the server's clock ({}); check the agent machine's time",
                format_rfc3339_ms(r.ts_ms),
                format_rfc3339_ms(now_ms)
            ),
        ));
    }
    if r.ts_ms < now_ms - raw_retention_ms {
        return Err(invalid(
            &format!("{at}.ts_ms"),
            &format!(
                "{} is older than the raw data retention ({}), so it cannot be stored",
                format_rfc3339_ms(r.ts_ms),
                format_duration_ms(raw_retention_ms)
            ),
        ));
    }
    if let Some(interval) = r.interval_ms
        && !(1_000..=3_600_000).contains(&interval)
    {
        return Err(invalid(
            &format!("{at}.interval_ms"),
            &format!("{interval} is not between 1000 and 3600000"),
        ));
    }
    if let Some(cpu) = &r.cpu {
        pct(|| format!("{at}.cpu.total_pct"), cpu.total_pct)?;
        count(|| format!("{at}.cpu.cores_pct"), cpu.cores_pct.len())?;
        count(|| format!("{at}.cpu.cores_mhz"), cpu.cores_mhz.len())?;
        for (c, v) in cpu.cores_pct.iter().enumerate() {
            pct(|| format!("{at}.cpu.cores_pct[{c}]"), *v)?;
        }
        for (c, v) in cpu.cores_mhz.iter().enumerate() {
            if *v > 100_000 {
                return Err(invalid(
                    &format!("{at}.cpu.cores_mhz[{c}]"),
                    &format!("{v} MHz is not a CPU frequency"),
                ));
            }
        }
    }
    if let Some(load) = &r.load {
        for (k, v) in load.iter().enumerate() {
            finite_in(|| format!("{at}.load[{k}]"), *v, 0.0, 1e6)?;
        }
    }
    if let Some(mem) = &r.memory {
        let field = |name: &str| format!("{at}.memory.{name}");
        if mem.used_bytes > mem.total_bytes {
            return Err(invalid(&field("used_bytes"), "is larger than total_bytes"));
        }
        if let (Some(used), Some(total)) = (mem.swap_used_bytes, mem.swap_total_bytes)
            && used > total
        {
            return Err(invalid(
                &field("swap_used_bytes"),
                "is larger than swap_total_bytes",
            ));
        }
    }
    count(|| format!("{at}.disks"), r.disks.len())?;
    for (d, disk) in r.disks.iter().enumerate() {
        text(|| format!("{at}.disks[{d}].mount"), &disk.mount, false)?;
        if disk.used_bytes > disk.total_bytes {
            return Err(invalid(
                &format!("{at}.disks[{d}].used_bytes"),
                "is larger than total_bytes",
            ));
        }
        if disk
            .available_bytes
            .is_some_and(|a| a > disk.total_bytes - disk.used_bytes)
        {
            return Err(invalid(
                &format!("{at}.disks[{d}].available_bytes"),
                "is larger than total_bytes − used_bytes",
            ));
        }
        if r.disks[..d].iter().any(|o| o.mount == disk.mount) {
            return Err(invalid(
                &format!("{at}.disks[{d}].mount"),
                &format!("`{}` appears twice", disk.mount),
            ));
        }
    }
    count(|| format!("{at}.networks"), r.networks.len())?;
    for (n, net) in r.networks.iter().enumerate() {
        text(|| format!("{at}.networks[{n}].iface"), &net.iface, false)?;
        if r.networks[..n].iter().any(|o| o.iface == net.iface) {
            return Err(invalid(
                &format!("{at}.networks[{n}].iface"),
                &format!("`{}` appears twice", net.iface),
            ));
        }
    }
    count(|| format!("{at}.temps"), r.temps.len())?;
    for (t, temp) in r.temps.iter().enumerate() {
        text(|| format!("{at}.temps[{t}].sensor"), &temp.sensor, false)?;
        finite_in(
            || format!("{at}.temps[{t}].celsius"),
            temp.celsius,
            -273.15,
            500.0,
        )?;
        if r.temps[..t].iter().any(|o| o.sensor == temp.sensor) {
            return Err(invalid(
                &format!("{at}.temps[{t}].sensor"),
                &format!("`{}` appears twice", temp.sensor),
            ));
        }
    }
    super::running::validate(at, r)?;
    Ok(())
}

pub(super) fn invalid(field: &str, problem: &str) -> ApiError {
    ApiError::Invalid(format!("{field}: {problem}"))
}

// The checks below take the field's path as a closure: it is formatted only
// for an error, not for each of the ~40 values of every valid report.

fn pct(field: impl FnOnce() -> String, v: f64) -> Result<(), ApiError> {
    finite_in(field, v, 0.0, PCT_MAX)
}

pub(super) fn finite_in(
    field: impl FnOnce() -> String,
    v: f64,
    min: f64,
    max: f64,
) -> Result<(), ApiError> {
    if !v.is_finite() {
        return Err(invalid(&field(), "is not a finite number"));
    }
    if v < min || v > max {
        return Err(invalid(&field(), &format!("{v} is outside {min}..{max}")));
    }
    Ok(())
}

fn count(field: impl FnOnce() -> String, n: usize) -> Result<(), ApiError> {
    if n > MAX_ITEMS {
        return Err(invalid(
            &field(),
            &format!("has {n} entries; at most {MAX_ITEMS}"),
        ));
    }
    Ok(())
}

/// Labels (mount, interface, sensor) become series labels: printable,
/// bounded, and without characters that make them display as something
/// else ([`crate::text`]).
pub(super) fn text(
    field: impl FnOnce() -> String,
    v: &str,
    may_be_empty: bool,
) -> Result<(), ApiError> {
    if v.is_empty() && !may_be_empty {
        return Err(invalid(&field(), "must not be empty"));
    }
    if v.len() > MAX_LABEL {
        return Err(invalid(
            &field(),
            &format!("is longer than {MAX_LABEL} bytes"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(&field(), "contains control characters"));
    }
    if let Some(problem) = crate::text::hidden_problem(v) {
        return Err(invalid(&field(), &problem));
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use storage::model::{Cpu, Disk, Memory, Network, Temperature};

    pub(in crate::ingest) const NOW: i64 = 1_767_225_600_000;
    pub(in crate::ingest) const DAY: i64 = 86_400_000;

    pub(in crate::ingest) fn report() -> Report {
        Report {
            ts_ms: NOW - 5_000,
            interval_ms: Some(5_000),
            cpu: Some(Cpu {
                total_pct: 12.5,
                cores_pct: vec![10.0, 15.0],
                cores_mhz: vec![3400, 3600],
            }),
            load: Some([0.5, 0.4, 0.3]),
            memory: Some(Memory {
                total_bytes: 100,
                used_bytes: 50,
                available_bytes: Some(50),
                swap_total_bytes: Some(10),
                swap_used_bytes: Some(0),
            }),
            disks: vec![Disk {
                mount: "/".into(),
                total_bytes: 100,
                used_bytes: 40,
                available_bytes: None,
                read_bps: Some(1),
                write_bps: Some(2),
            }],
            networks: vec![Network {
                iface: "eth0".into(),
                rx_bps: 1,
                tx_bps: 2,
            }],
            uptime_s: Some(100),
            temps: vec![Temperature {
                sensor: "cpu".into(),
                celsius: 55.0,
            }],
            containers: None,
            processes: None,
            services: None,
        }
    }

    fn check(mutate: impl FnOnce(&mut Report)) -> Result<(), String> {
        let mut r = report();
        mutate(&mut r);
        let batch = IngestBatch {
            host: None,
            reports: vec![report(), r],
            check_results: Vec::new(),
        };
        validate_batch(&batch, NOW, DAY).map_err(|e| match e {
            ApiError::Invalid(m) => m,
            other => panic!("not a 422: {other:?}"),
        })
    }

    #[test]
    fn a_good_report_passes() {
        check(|_| {}).unwrap();
    }

    #[test]
    fn each_bad_value_names_its_field() {
        type Mutation = Box<dyn FnOnce(&mut Report)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("reports[1].ts_ms", Box::new(|r| r.ts_ms = NOW + 6 * 60_000)),
            ("reports[1].ts_ms", Box::new(|r| r.ts_ms = NOW - DAY - 1)),
            (
                "reports[1].cpu.total_pct",
                Box::new(|r| r.cpu.as_mut().unwrap().total_pct = f64::NAN),
            ),
            (
                "reports[1].cpu.total_pct",
                Box::new(|r| r.cpu.as_mut().unwrap().total_pct = 250.0),
            ),
            (
                "reports[1].cpu.cores_pct[1]",
                Box::new(|r| r.cpu.as_mut().unwrap().cores_pct[1] = -3.0),
            ),
            (
                "reports[1].load[2]",
                Box::new(|r| r.load = Some([0.1, 0.2, f64::INFINITY])),
            ),
            (
                "reports[1].memory.used_bytes",
                Box::new(|r| r.memory.as_mut().unwrap().used_bytes = 101),
            ),
            (
                "reports[1].disks[0].mount",
                Box::new(|r| r.disks[0].mount.clear()),
            ),
            (
                "reports[1].disks[0].available_bytes",
                Box::new(|r| {
                    let d = &mut r.disks[0];
                    d.available_bytes = Some(d.total_bytes - d.used_bytes + 1);
                }),
            ),
            (
                "reports[1].networks[1].iface",
                Box::new(|r| r.networks.push(r.networks[0].clone())),
            ),
            (
                "reports[1].temps[0].celsius",
                Box::new(|r| r.temps[0].celsius = f64::NEG_INFINITY),
            ),
            (
                "reports[1].interval_ms",
                Box::new(|r| r.interval_ms = Some(10)),
            ),
        ];
        for (field, mutate) in cases {
            let msg = check(mutate).expect_err(field);
            assert!(msg.starts_with(field), "expected {field}, got {msg}");
        }
    }

    #[test]
    fn labels_with_bidi_or_zero_width_characters_name_their_field() {
        type Mutation = Box<dyn FnOnce(&mut Report)>;
        let cases: Vec<(&str, Mutation)> = vec![
            (
                "reports[1].disks[0].mount",
                Box::new(|r| r.disks[0].mount = "/mnt/\u{202E}kcab".into()),
            ),
            (
                "reports[1].networks[0].iface",
                Box::new(|r| r.networks[0].iface = "eth\u{200B}0".into()),
            ),
            (
                "reports[1].temps[0].sensor",
                Box::new(|r| r.temps[0].sensor = "\u{2066}cpu\u{2069}".into()),
            ),
            (
                "reports[1].disks[0].mount",
                Box::new(|r| r.disks[0].mount = "/\u{FEFF}".into()),
            ),
            (
                "reports[1].networks[0].iface",
                Box::new(|r| r.networks[0].iface = "wan\u{200F}".into()),
            ),
        ];
        for (field, mutate) in cases {
            let msg = check(mutate).expect_err(field);
            assert!(msg.starts_with(field), "expected {field}, got {msg}");
            assert!(msg.contains("U+"), "{msg}");
        }
        let batch = IngestBatch {
            host: Some(storage::model::wire::HostFacts {
                hostname: "nas\u{202D}".into(),
                ..Default::default()
            }),
            reports: vec![report()],
            check_results: Vec::new(),
        };
        let err = validate_batch(&batch, NOW, DAY).unwrap_err().to_string();
        assert!(err.starts_with("host.hostname"), "{err}");
    }

    #[test]
    fn a_report_just_inside_the_limits_passes() {
        check(|r| r.ts_ms = NOW + MAX_FUTURE_MS).unwrap();
        check(|r| r.ts_ms = NOW - DAY).unwrap();
        check(|r| r.cpu.as_mut().unwrap().total_pct = 100.0).unwrap();
    }

    #[test]
    fn empty_and_oversized_batches_are_refused() {
        let empty = IngestBatch::default();
        assert!(validate_batch(&empty, NOW, DAY).is_err());
        let flood = IngestBatch {
            host: None,
            reports: vec![report(); MAX_REPORTS_PER_BATCH + 1],
            check_results: Vec::new(),
        };
        assert!(validate_batch(&flood, NOW, DAY).is_err());
    }
}
