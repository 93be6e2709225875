//! CPU and context switches of the server and its threads, from /proc.

/// (utime + stime) in seconds of process `pid` ("self" for this one), from /proc.
pub(crate) fn process_cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

/// Per thread of process `pid`, from /proc/PID/task: its name, CPU seconds
/// (user, system) and context switches (voluntary, involuntary). tokio's
/// workers and blocking threads are `statusmonitor`, the group commit is
/// `tsdb-writer`, fjall's threads are `fjall:*`.
pub(crate) fn thread_cpu(pid: u32) -> std::collections::BTreeMap<u32, (String, [f64; 4])> {
    let mut threads = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let dir = task.path();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map_or("?", |(_, n)| n);
        let name = if name.starts_with("fjall") {
            "fjall"
        } else {
            name
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 100.0
        };
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let switches = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let counts = [
            tick(11),
            tick(12),
            switches("voluntary_ctxt_switches:"),
            switches("nonvoluntary_ctxt_switches:"),
        ];
        threads.insert(tid, (name.to_string(), counts));
    }
    threads
}

/// One line per kind of thread that ran between two [`thread_cpu`]s: its
/// share of one core (user + system) over `secs` and its context switches
/// per report. A thread that ended in between is not counted.
pub(crate) fn thread_report(
    before: &std::collections::BTreeMap<u32, (String, [f64; 4])>,
    after: &std::collections::BTreeMap<u32, (String, [f64; 4])>,
    secs: f64,
    reports: u64,
) -> String {
    let mut by_name: std::collections::BTreeMap<&str, [f64; 4]> = Default::default();
    for (tid, (name, a)) in after {
        let b = before.get(tid).map_or([0.0; 4], |(_, b)| *b);
        let sum = by_name.entry(name).or_default();
        for i in 0..4 {
            sum[i] += a[i] - b[i];
        }
    }
    let mut out = String::new();
    for (name, d) in by_name {
        if d[0] + d[1] < 0.005 && d[2] + d[3] < 1.0 {
            continue;
        }
        out.push_str(&format!(
            "\n    {name}: {:.1} % user + {:.1} % system, {:.2} voluntary + {:.2} involuntary context switches per report",
            d[0] / secs * 100.0,
            d[1] / secs * 100.0,
            d[2] / reports.max(1) as f64,
            d[3] / reports.max(1) as f64,
        ));
    }
    out
}
