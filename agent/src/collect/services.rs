//! systemd services: the failed `.service` units, and the state of the units
//! the agent was told to watch (`--services nginx,postgresql`, or `*` for
//! every `.service` unit). One `systemctl list-units` for all of them, at
//! most every [`REFRESH_EVERY`] ticks (a spawn costs more than the rest of
//! a tick); the reports in between carry the last list read.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use storage::model::wire::Service;

use super::label;

/// Units are re-read this often (in ticks): every 30 s at 5 s.
pub const REFRESH_EVERY: u32 = 6;
/// Most units a report carries (the server refuses more).
pub const MAX_SERVICES: usize = 500;
/// `systemctl` gets this long to answer.
const DEADLINE: Duration = Duration::from_secs(2);

/// What the agent was told about services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Off with `--no-services`.
    pub disabled: bool,
    /// Units to report whatever their state (`nginx` means
    /// `nginx.service`; `*`: every service unit). Failed units always are.
    pub watch: Vec<String>,
}

pub struct ServiceCollector {
    watch: Vec<String>,
    all: bool,
    last: Option<Vec<Service>>,
    ticks: u32,
    logged: bool,
}

impl ServiceCollector {
    /// `None` when turned off, or where there is no systemd.
    pub fn new(config: &ServiceConfig) -> Option<Self> {
        if config.disabled || !cfg!(target_os = "linux") {
            return None;
        }
        let all = config.watch.iter().any(|w| w == "*");
        let watch = config
            .watch
            .iter()
            .filter(|w| *w != "*")
            .map(|w| {
                if w.contains('.') {
                    w.clone()
                } else {
                    format!("{w}.service")
                }
            })
            .collect();
        Some(ServiceCollector {
            watch,
            all,
            last: None,
            ticks: 0,
            logged: false,
        })
    }

    pub fn collect(&mut self) -> Option<Vec<Service>> {
        let refresh = self.ticks.is_multiple_of(REFRESH_EVERY);
        self.ticks = self.ticks.wrapping_add(1);
        if refresh {
            self.last = match list_units() {
                Ok(text) => {
                    self.logged = false;
                    Some(self.pick(&text))
                }
                Err(e) => {
                    if !self.logged {
                        self.logged = true;
                        tracing::info!(
                            "cannot read systemd units ({e}): services are not reported \
                             (--no-services stops trying)"
                        );
                    }
                    None
                }
            };
        }
        self.last.clone()
    }

    /// The failed and watched units of `systemctl list-units --plain
    /// --no-legend` output, failed first, then by name.
    fn pick(&self, text: &str) -> Vec<Service> {
        let mut out: Vec<Service> = text
            .lines()
            .filter_map(parse_line)
            .filter(|s| s.active == "failed" || self.all || self.watch.contains(&s.unit))
            .collect();
        out.sort_by(|a, b| (a.active != "failed", &a.unit).cmp(&(b.active != "failed", &b.unit)));
        out.dedup_by(|a, b| a.unit == b.unit);
        out.truncate(MAX_SERVICES);
        out
    }
}

/// `UNIT LOAD ACTIVE SUB DESCRIPTION…` → a service, if it is one.
fn parse_line(line: &str) -> Option<Service> {
    let mut f = line.split_whitespace();
    // Without --plain a failed unit is marked by a leading "●".
    let mut unit = f.next()?;
    if unit == "●" || unit == "*" {
        unit = f.next()?;
    }
    if !unit.ends_with(".service") {
        return None;
    }
    let _load = f.next()?;
    let active = f.next()?;
    let sub = f.next()?;
    let word = |w: &str| {
        (!w.is_empty() && w.len() <= 32 && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
            .then(|| w.to_owned())
    };
    Some(Service {
        unit: label(unit)?,
        active: word(active)?,
        sub: word(sub).unwrap_or_default(),
    })
}

/// One `systemctl list-units` of every service unit, bounded by [`DEADLINE`].
fn list_units() -> Result<String, String> {
    let mut child = Command::new("systemctl")
        .args([
            "list-units",
            "--type=service",
            "--all",
            "--plain",
            "--no-legend",
            "--no-pager",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let until = Instant::now() + DEADLINE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                if let Some(mut stdout) = child.stdout.take() {
                    use std::io::Read;
                    let _ = stdout.read_to_string(&mut out);
                }
                return if status.success() {
                    Ok(out)
                } else {
                    Err(format!("systemctl exited with {status}"))
                };
            }
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("systemctl did not answer in 2 s".into());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const OUTPUT: &str = "\
cron.service          loaded active   running Regular background program processing daemon
nginx.service         loaded failed   failed  A high performance web server
postgresql.service    loaded active   exited  PostgreSQL RDBMS
● ssh.service         loaded failed   failed  OpenBSD Secure Shell server
systemd-journald.socket loaded active running Journal Socket
weird\u{7}.service    loaded ACTIVE   running bad state word
";

    fn collector(watch: &[&str]) -> ServiceCollector {
        ServiceCollector::new(&ServiceConfig {
            disabled: false,
            watch: watch.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    #[test]
    fn failed_units_always_then_the_watched_ones() {
        let picked = collector(&[]).pick(OUTPUT);
        let units: Vec<&str> = picked.iter().map(|s| s.unit.as_str()).collect();
        assert_eq!(units, ["nginx.service", "ssh.service"]);
        let picked = collector(&["postgresql"]).pick(OUTPUT);
        assert_eq!(picked.len(), 3);
        assert_eq!(picked[2].unit, "postgresql.service");
        assert_eq!(
            (picked[2].active.as_str(), picked[2].sub.as_str()),
            ("active", "exited")
        );
        let all = collector(&["*"]).pick(OUTPUT);
        assert_eq!(all.len(), 4, "every .service unit with a sane state");
    }

    #[test]
    fn turned_off_is_no_collector() {
        assert!(
            ServiceCollector::new(&ServiceConfig {
                disabled: true,
                watch: Vec::new()
            })
            .is_none()
        );
    }
}
