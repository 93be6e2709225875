//! The busiest processes: the top [`TOP`] by CPU and the top [`TOP`] by
//! resident memory, each process once. One process-table refresh every
//! [`REFRESH_EVERY`] ticks (CPU time and memory only; no threads, no
//! environment), CPU % over that span; the reports in between carry the
//! last list (walking `/proc` costs more than the rest of a tick); the command line
//! is read only with `--process-cmdline` (it can hold secrets) and cut to
//! [`MAX_CMDLINE`] bytes; user names come from `/etc/passwd`, re-read now
//! and then.

use std::collections::HashMap;

use storage::model::wire::Process;
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use super::{label, round_to, unprintable};

/// Processes per ranking.
pub const TOP: usize = 10;
/// Longest command line sent, in bytes.
pub const MAX_CMDLINE: usize = 512;
/// `/etc/passwd` is re-read this often (in ticks).
const USERS_EVERY: u32 = 60;
/// The process table is read this often (in ticks): every 15 s at 5 s.
pub const REFRESH_EVERY: u32 = 3;

/// What the agent was told about processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessConfig {
    /// Off with `--no-processes`.
    pub disabled: bool,
    /// `--process-cmdline`: send command lines too.
    pub cmdline: bool,
}

pub struct ProcessCollector {
    cmdline: bool,
    users: HashMap<u32, String>,
    ticks: u32,
    last: Option<Vec<Process>>,
}

impl ProcessCollector {
    pub fn new(config: &ProcessConfig) -> Option<Self> {
        (!config.disabled).then(|| ProcessCollector {
            cmdline: config.cmdline,
            users: HashMap::new(),
            ticks: 0,
            last: None,
        })
    }

    /// The top processes (CPU % since the previous refresh), read anew
    /// every [`REFRESH_EVERY`] calls.
    pub fn collect(&mut self, system: &mut System) -> Option<Vec<Process>> {
        let tick = self.ticks;
        self.ticks = self.ticks.wrapping_add(1);
        if !tick.is_multiple_of(REFRESH_EVERY) {
            return self.last.clone();
        }
        if tick.is_multiple_of(USERS_EVERY) {
            self.users = read_passwd();
        }
        self.last = self.read(system);
        self.last.clone()
    }

    fn read(&mut self, system: &mut System) -> Option<Vec<Process>> {
        // Without tasks: sysinfo would otherwise list `/proc/PID/task` of
        // every process and read each thread's `status` (more than half of
        // the walk's file opens), only for the threads this leaves out.
        let mut kind = ProcessRefreshKind::nothing()
            .without_tasks()
            .with_cpu()
            .with_memory()
            .with_user(UpdateKind::OnlyIfNotSet);
        if self.cmdline {
            kind = kind.with_cmd(UpdateKind::OnlyIfNotSet);
        }
        system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        let all: Vec<&sysinfo::Process> = system
            .processes()
            .values()
            // Threads appear as processes on some systems: leave them out.
            .filter(|p| p.thread_kind().is_none())
            .collect();
        if all.is_empty() {
            return None;
        }
        let picks = top(
            &all,
            |p| f64::from(p.cpu_usage()),
            |p| p.memory(),
            |p| p.pid().as_u32(),
        );
        Some(
            picks
                .into_iter()
                .filter_map(|p| {
                    Some(Process {
                        pid: p.pid().as_u32(),
                        name: label(&p.name().to_string_lossy())?,
                        user: p.user_id().and_then(|u| self.user(u)),
                        cpu_pct: round_to(f64::from(p.cpu_usage()).max(0.0), 1),
                        rss_bytes: p.memory(),
                        cmdline: self.cmdline.then(|| cmdline(p.cmd())).flatten(),
                    })
                })
                .collect(),
        )
    }

    #[cfg(unix)]
    fn user(&self, uid: &sysinfo::Uid) -> Option<String> {
        let id: u32 = **uid;
        Some(
            self.users
                .get(&id)
                .cloned()
                .unwrap_or_else(|| id.to_string()),
        )
    }

    #[cfg(not(unix))]
    fn user(&self, _uid: &sysinfo::Uid) -> Option<String> {
        None
    }
}

/// The union of the top [`TOP`] by `cpu` and by `mem`, CPU ranking first,
/// each once (by `pid`); ties broken by pid so the order is stable.
pub fn top<T: Copy>(
    all: &[T],
    cpu: impl Fn(T) -> f64,
    mem: impl Fn(T) -> u64,
    pid: impl Fn(T) -> u32,
) -> Vec<T> {
    let mut by_cpu = all.to_vec();
    by_cpu.sort_by(|a, b| cpu(*b).total_cmp(&cpu(*a)).then(pid(*a).cmp(&pid(*b))));
    let mut by_mem = all.to_vec();
    by_mem.sort_by(|a, b| mem(*b).cmp(&mem(*a)).then(pid(*a).cmp(&pid(*b))));
    let mut out: Vec<T> = by_cpu.into_iter().take(TOP).collect();
    for p in by_mem.into_iter().take(TOP) {
        if !out.iter().any(|o| pid(*o) == pid(p)) {
            out.push(p);
        }
    }
    out
}

/// The command line joined by spaces, control characters replaced, cut to
/// [`MAX_CMDLINE`] bytes on a character boundary; `None` when empty
/// (kernel threads).
fn cmdline(args: &[std::ffi::OsString]) -> Option<String> {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for c in a.to_string_lossy().chars() {
            let c = if unprintable(c) { '?' } else { c };
            if out.len() + c.len_utf8() > MAX_CMDLINE {
                return Some(out);
            }
            out.push(c);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// uid → user name from `/etc/passwd` (empty where there is none).
fn read_passwd() -> HashMap<u32, String> {
    std::fs::read_to_string("/etc/passwd")
        .map(|text| parse_passwd(&text))
        .unwrap_or_default()
}

fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            let _password = f.next()?;
            let uid = f.next()?.parse().ok()?;
            Some((uid, label(name)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_top_by_cpu_and_by_memory_each_once() {
        // (pid, cpu, rss): pid 1..=30, CPU rising with the pid, memory falling.
        let all: Vec<(u32, f64, u64)> = (1..=30).map(|i| (i, i as f64, 1000 - i as u64)).collect();
        let picks = top(&all, |p| p.1, |p| p.2, |p| p.0);
        let pids: Vec<u32> = picks.iter().map(|p| p.0).collect();
        assert_eq!(pids[..10], [30, 29, 28, 27, 26, 25, 24, 23, 22, 21]);
        assert_eq!(pids[10..], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        // The same process on both lists is sent once.
        let one: Vec<(u32, f64, u64)> = vec![(7, 50.0, 10_000), (8, 1.0, 1)];
        assert_eq!(top(&one, |p| p.1, |p| p.2, |p| p.0).len(), 2);
    }

    #[test]
    fn command_lines_are_cleaned_and_cut() {
        let args: Vec<std::ffi::OsString> = vec!["pg".into(), "-D\n/x".into()];
        assert_eq!(cmdline(&args).as_deref(), Some("pg -D?/x"));
        let long: Vec<std::ffi::OsString> = vec!["é".repeat(400).into()];
        let cut = cmdline(&long).unwrap();
        assert!(cut.len() <= MAX_CMDLINE && cut.chars().all(|c| c == 'é'));
        assert_eq!(cmdline(&[]), None);
    }

    #[test]
    fn passwd_maps_uids_to_names() {
        let users = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\npostgres:x:105:110::/var/lib/postgresql:/bin/bash\nbroken\n",
        );
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&105).map(String::as_str), Some("postgres"));
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn this_machines_process_table_gives_a_bounded_top_list() {
        let mut system = System::new().unwrap();
        let mut c = ProcessCollector::new(&ProcessConfig {
            disabled: false,
            cmdline: true,
        })
        .unwrap();
        let list = c.collect(&mut system).expect("a process table");
        assert!(!list.is_empty() && list.len() <= 2 * TOP);
        assert!(list.iter().all(|p| !p.name.is_empty() && p.cpu_pct >= 0.0));
        assert!(
            ProcessCollector::new(&ProcessConfig {
                disabled: true,
                cmdline: false
            })
            .is_none()
        );
    }
}
