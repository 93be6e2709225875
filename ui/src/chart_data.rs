//! Shaping metric data for charts: history series and live reports into
//! uPlot's column layout (`[xs, ys…]`, time in seconds), with `null` rows where
//! the agent was silent so the chart draws a gap, not a line; and the inline
//! SVG sparklines of the overview cards. Pure functions, tested natively.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use storage::model::{HistoryPoint, HistoryResponse, Report};

/// How a chart's values read; the JS glue formats axes and legend with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Pct,
    Bytes,
    Rate,
    Mhz,
    /// Milliseconds (check latency).
    Ms,
}

/// One drawn series of a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesSpec {
    pub label: String,
    /// Index into the palette (CSS `--c0`…`--c7`).
    pub color: usize,
    /// A min or max edge: no line, only the band fill between the pair.
    pub edge: bool,
}

/// What the JS glue needs to build uPlot options.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartSpec {
    pub unit: Unit,
    pub height: u32,
    pub series: Vec<SeriesSpec>,
    /// uPlot band pairs as 1-based series indexes: `[upper, lower]`.
    pub bands: Vec<[usize; 2]>,
}

/// uPlot's aligned data: one x column (seconds) and one column per series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartData {
    pub xs: Vec<f64>,
    pub ys: Vec<Vec<Option<f64>>>,
}

impl ChartData {
    /// `[[x…],[y…]…]` with `null` for missing values, for `JSON.parse`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(16 * self.xs.len() * (1 + self.ys.len()));
        out.push_str("[[");
        push_list(&mut out, self.xs.iter().map(|x| Some(*x)));
        out.push(']');
        for col in &self.ys {
            out.push_str(",[");
            push_list(&mut out, col.iter().copied());
            out.push(']');
        }
        out.push(']');
        out
    }

    pub fn is_empty(&self) -> bool {
        self.xs.is_empty()
    }

    /// Whether any series has a value (a framed chart has rows without).
    pub fn has_values(&self) -> bool {
        self.ys.iter().any(|c| c.iter().any(Option::is_some))
    }

    /// The time (ms) of the first row with a value in any series.
    pub fn first_value_ms(&self) -> Option<i64> {
        (0..self.xs.len())
            .find(|&i| {
                self.ys
                    .iter()
                    .any(|c| c.get(i).copied().flatten().is_some())
            })
            .map(|i| (self.xs[i] * 1000.0).round() as i64)
    }

    /// Fits the time axis to exactly `start_ms..=stop_ms`, the span a range
    /// names: rows outside are dropped, and an empty row at each end makes
    /// the chart's automatic x scale (and its zoom reset) cover the whole
    /// span even where the agent has no data yet.
    pub fn frame(&mut self, start_ms: i64, stop_ms: i64) {
        let (lo, hi) = (start_ms as f64 / 1000.0, stop_ms as f64 / 1000.0);
        let keep: Vec<bool> = self.xs.iter().map(|x| *x >= lo && *x <= hi).collect();
        let mut k = keep.iter();
        self.xs.retain(|_| *k.next().unwrap_or(&false));
        for col in &mut self.ys {
            let mut k = keep.iter();
            col.retain(|_| *k.next().unwrap_or(&false));
        }
        if self.xs.first().is_none_or(|x| *x > lo) {
            self.xs.insert(0, lo);
            for col in &mut self.ys {
                col.insert(0, None);
            }
        }
        if self.xs.last().is_none_or(|x| *x < hi) {
            self.xs.push(hi);
            for col in &mut self.ys {
                col.push(None);
            }
        }
    }
}

/// Minimum, average and maximum of one drawn line: the text alternative of
/// a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSummary {
    pub label: String,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

/// The summary of every line of a chart (band edges left out; a line with
/// no value in the range is left out too).
pub fn summarize(spec: &ChartSpec, data: &ChartData) -> Vec<LineSummary> {
    spec.series
        .iter()
        .zip(&data.ys)
        .filter(|(s, _)| !s.edge)
        .filter_map(|(s, col)| {
            let values: Vec<f64> = col
                .iter()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            if values.is_empty() {
                return None;
            }
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let avg = values.iter().sum::<f64>() / values.len() as f64;
            Some(LineSummary {
                label: s.label.clone(),
                min,
                avg,
                max,
            })
        })
        .collect()
}

impl Unit {
    /// A value of this unit as people read it.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Pct => crate::format::pct(v),
            Unit::Bytes => crate::format::bytes(v),
            Unit::Rate => crate::format::rate(v),
            Unit::Mhz => crate::format::mhz(v),
            Unit::Ms => format!("{v:.0} ms"),
        }
    }
}

fn push_list(out: &mut String, values: impl Iterator<Item = Option<f64>>) {
    use std::fmt::Write;
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            Some(v) if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            _ => out.push_str("null"),
        }
    }
}

/// One line of a chart before alignment: points `[ts_ms, avg, min, max]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<HistoryPoint>,
}

/// Aligns lines on their common time axis. Where two consecutive timestamps
/// are more than twice `interval_ms` apart a row of nulls is inserted, so
/// uPlot draws a gap. With `bands`, each line gets min and max edge columns
/// and a band between them.
pub fn align(
    lines: &[Line],
    interval_ms: i64,
    bands: bool,
    unit: Unit,
    height: u32,
) -> (ChartSpec, ChartData) {
    let mut times = BTreeSet::new();
    let maps: Vec<BTreeMap<i64, (f64, f64, f64)>> = lines
        .iter()
        .map(|l| {
            l.points
                .iter()
                .map(|&(t, avg, min, max)| {
                    times.insert(t);
                    (t, (avg, min, max))
                })
                .collect()
        })
        .collect();
    let per_line = if bands { 3 } else { 1 };
    let mut data = ChartData {
        xs: Vec::with_capacity(times.len()),
        ys: vec![Vec::with_capacity(times.len()); lines.len() * per_line],
    };
    let mut prev: Option<i64> = None;
    for t in times {
        if let Some(p) = prev
            && interval_ms > 0
            && t - p > 2 * interval_ms
        {
            data.xs.push((p + interval_ms) as f64 / 1000.0);
            for col in &mut data.ys {
                col.push(None);
            }
        }
        prev = Some(t);
        data.xs.push(t as f64 / 1000.0);
        for (i, map) in maps.iter().enumerate() {
            let v = map.get(&t);
            data.ys[i * per_line].push(v.map(|v| v.0));
            if bands {
                data.ys[i * per_line + 1].push(v.map(|v| v.1));
                data.ys[i * per_line + 2].push(v.map(|v| v.2));
            }
        }
    }
    let mut spec = ChartSpec {
        unit,
        height,
        series: Vec::new(),
        bands: Vec::new(),
    };
    for (i, line) in lines.iter().enumerate() {
        spec.series.push(SeriesSpec {
            label: line.label.clone(),
            color: i,
            edge: false,
        });
        if bands {
            let base = spec.series.len() + 1; // uPlot index of the min edge
            spec.series.push(SeriesSpec {
                label: format!("{} min", line.label),
                color: i,
                edge: true,
            });
            spec.series.push(SeriesSpec {
                label: format!("{} max", line.label),
                color: i,
                edge: true,
            });
            spec.bands.push([base + 1, base]);
        }
    }
    (spec, data)
}

/// The charts of an agent's dashboard, and what each draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChartKind {
    Cpu,
    Memory,
    Disk,
    Network,
    /// Per-core usage (CPU modal).
    Cores,
    /// Per-core frequency (CPU modal).
    CoreFreq,
}

impl ChartKind {
    pub fn title(self) -> &'static str {
        match self {
            ChartKind::Cpu => "CPU",
            ChartKind::Memory => "Memory",
            ChartKind::Disk => "Disk I/O",
            ChartKind::Network => "Network",
            ChartKind::Cores => "Per-core usage",
            ChartKind::CoreFreq => "Per-core frequency",
        }
    }

    /// The history endpoint the data comes from.
    pub fn group(self) -> &'static str {
        match self {
            ChartKind::Cpu | ChartKind::Cores | ChartKind::CoreFreq => "cpu",
            ChartKind::Memory => "memory",
            ChartKind::Disk => "disk",
            ChartKind::Network => "network",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            ChartKind::Cpu | ChartKind::Cores => Unit::Pct,
            ChartKind::Memory => Unit::Bytes,
            ChartKind::Disk | ChartKind::Network => Unit::Rate,
            ChartKind::CoreFreq => Unit::Mhz,
        }
    }

    /// Lines of this chart from a history answer.
    pub fn lines_from_history(self, resp: &HistoryResponse) -> Vec<Line> {
        let mut lines = Vec::new();
        for s in &resp.series {
            let label = |key: &str| s.labels.get(key).cloned().unwrap_or_default();
            let name = match (self, s.metric.as_str()) {
                (ChartKind::Cpu, "cpu.total_pct") => "CPU".to_string(),
                (ChartKind::Memory, "mem.used_bytes") => "Used".to_string(),
                (ChartKind::Memory, "swap.used_bytes") => "Swap used".to_string(),
                (ChartKind::Disk, "disk.read_bps") => format!("{} read", label("mount")),
                (ChartKind::Disk, "disk.write_bps") => format!("{} write", label("mount")),
                (ChartKind::Network, "net.rx_bps") => format!("{} in", label("iface")),
                (ChartKind::Network, "net.tx_bps") => format!("{} out", label("iface")),
                (ChartKind::Cores, "cpu.core_pct") => format!("core {}", label("core")),
                (ChartKind::CoreFreq, "cpu.core_mhz") => format!("core {}", label("core")),
                _ => continue,
            };
            lines.push(Line {
                label: name,
                points: s.points.clone(),
            });
        }
        sort_lines(&mut lines);
        lines
    }

    /// Lines of this chart from live reports (oldest first).
    pub fn lines_from_reports(self, reports: &[Report]) -> Vec<Line> {
        let mut by_label: BTreeMap<String, Vec<HistoryPoint>> = BTreeMap::new();
        let mut push = |label: String, t: i64, v: f64| {
            by_label.entry(label).or_default().push((t, v, v, v));
        };
        for r in reports {
            let t = r.ts_ms;
            match self {
                ChartKind::Cpu => {
                    if let Some(c) = &r.cpu {
                        push("CPU".into(), t, c.total_pct);
                    }
                }
                ChartKind::Memory => {
                    if let Some(m) = &r.memory {
                        push("Used".into(), t, m.used_bytes as f64);
                        if let Some(s) = m.swap_used_bytes {
                            push("Swap used".into(), t, s as f64);
                        }
                    }
                }
                ChartKind::Disk => {
                    for d in &r.disks {
                        if let Some(v) = d.read_bps {
                            push(format!("{} read", d.mount), t, v as f64);
                        }
                        if let Some(v) = d.write_bps {
                            push(format!("{} write", d.mount), t, v as f64);
                        }
                    }
                }
                ChartKind::Network => {
                    for n in &r.networks {
                        push(format!("{} in", n.iface), t, n.rx_bps as f64);
                        push(format!("{} out", n.iface), t, n.tx_bps as f64);
                    }
                }
                ChartKind::Cores => {
                    if let Some(c) = &r.cpu {
                        for (i, v) in c.cores_pct.iter().enumerate() {
                            push(format!("core {i}"), t, *v);
                        }
                    }
                }
                ChartKind::CoreFreq => {
                    if let Some(c) = &r.cpu {
                        for (i, v) in c.cores_mhz.iter().enumerate() {
                            push(format!("core {i}"), t, *v as f64);
                        }
                    }
                }
            }
        }
        let mut lines: Vec<Line> = by_label
            .into_iter()
            .map(|(label, points)| Line { label, points })
            .collect();
        sort_lines(&mut lines);
        lines
    }
}

/// Natural order, so `core 10` follows `core 9` and a mount's read precedes
/// its write.
fn sort_lines(lines: &mut [Line]) {
    lines.sort_by_cached_key(|l| natural_key(&l.label));
}

fn natural_key(s: &str) -> (String, u64, String) {
    let digits_at = s.find(|c: char| c.is_ascii_digit());
    match digits_at {
        Some(i) => {
            let rest = &s[i..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            (
                s[..i].to_string(),
                rest[..end].parse().unwrap_or(0),
                rest[end..].to_string(),
            )
        }
        None => (s.to_string(), 0, String::new()),
    }
}

/// The typical interval of live reports (their own `interval_ms`, else the
/// smallest step between them), used to spot gaps.
pub fn report_interval_ms(reports: &[Report]) -> i64 {
    if let Some(i) = reports.iter().rev().find_map(|r| r.interval_ms) {
        return i64::from(i);
    }
    reports
        .windows(2)
        .map(|w| w[1].ts_ms - w[0].ts_ms)
        .filter(|d| *d > 0)
        .min()
        .unwrap_or(5_000)
}

/// An SVG path (`M…L…`) of `(ts_ms, value)` points scaled into `w × h`, time
/// from `t0_ms` to `t1_ms` and values from 0 to `max`; a silence longer than
/// twice `interval_ms` starts a new subpath, so offline time is blank.
pub fn sparkline_path(
    points: &[(i64, f64)],
    t0_ms: i64,
    t1_ms: i64,
    max: f64,
    interval_ms: i64,
    w: f64,
    h: f64,
) -> String {
    use std::fmt::Write;
    let span = (t1_ms - t0_ms).max(1) as f64;
    let max = if max > 0.0 { max } else { 1.0 };
    let mut out = String::new();
    let mut prev: Option<i64> = None;
    for &(t, v) in points {
        if t < t0_ms || t > t1_ms || !v.is_finite() {
            continue;
        }
        let x = (t - t0_ms) as f64 / span * w;
        let y = h - (v / max).clamp(0.0, 1.0) * h;
        let cmd = match prev {
            Some(p) if t - p <= 2 * interval_ms => 'L',
            _ => 'M',
        };
        let _ = write!(out, "{cmd}{x:.1} {y:.1}");
        prev = Some(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(label: &str, pts: &[(i64, f64)]) -> Line {
        Line {
            label: label.into(),
            points: pts.iter().map(|&(t, v)| (t, v, v - 1.0, v + 1.0)).collect(),
        }
    }

    #[test]
    fn a_silence_becomes_a_null_row() {
        let l = line("CPU", &[(0, 1.0), (5_000, 2.0), (60_000, 3.0)]);
        let (_, data) = align(&[l], 5_000, false, Unit::Pct, 100);
        assert_eq!(data.xs, vec![0.0, 5.0, 10.0, 60.0]);
        assert_eq!(data.ys[0], vec![Some(1.0), Some(2.0), None, Some(3.0)]);
        assert_eq!(data.to_json(), "[[0,5,10,60],[1,2,null,3]]");
    }

    #[test]
    fn lines_are_aligned_on_the_union_of_times() {
        let a = line("a", &[(0, 1.0), (5_000, 2.0)]);
        let b = line("b", &[(5_000, 7.0), (10_000, 8.0)]);
        let (spec, data) = align(&[a, b], 5_000, false, Unit::Rate, 100);
        assert_eq!(data.xs, vec![0.0, 5.0, 10.0]);
        assert_eq!(data.ys[0], vec![Some(1.0), Some(2.0), None]);
        assert_eq!(data.ys[1], vec![None, Some(7.0), Some(8.0)]);
        assert_eq!(spec.series.len(), 2);
        assert!(spec.bands.is_empty());
    }

    #[test]
    fn bands_add_min_and_max_edges() {
        let a = line("CPU", &[(0, 10.0)]);
        let (spec, data) = align(&[a], 60_000, true, Unit::Pct, 100);
        assert_eq!(
            data.ys,
            vec![vec![Some(10.0)], vec![Some(9.0)], vec![Some(11.0)]]
        );
        assert_eq!(spec.series[1].label, "CPU min");
        assert!(spec.series[2].edge);
        // uPlot indexes: 0 = x, 1 = avg, 2 = min, 3 = max.
        assert_eq!(spec.bands, vec![[3, 2]]);
    }

    #[test]
    fn live_reports_become_lines_in_natural_order() {
        let mut reports = Vec::new();
        for (i, t) in [0_i64, 1000].iter().enumerate() {
            let mut r = Report {
                ts_ms: *t,
                ..Default::default()
            };
            r.cpu = Some(storage::model::Cpu {
                total_pct: i as f64,
                cores_pct: (0..11).map(|c| c as f64).collect(),
                cores_mhz: vec![3000; 11],
            });
            reports.push(r);
        }
        let cores = ChartKind::Cores.lines_from_reports(&reports);
        assert_eq!(cores.len(), 11);
        assert_eq!(cores[2].label, "core 2");
        assert_eq!(cores[10].label, "core 10");
        let cpu = ChartKind::Cpu.lines_from_reports(&reports);
        assert_eq!(
            cpu[0].points,
            vec![(0, 0.0, 0.0, 0.0), (1000, 1.0, 1.0, 1.0)]
        );
        assert_eq!(report_interval_ms(&reports), 1000);
    }

    #[test]
    fn history_picks_the_chart_series() {
        let resp: HistoryResponse = serde_json::from_str(
            r#"{"agent_id":1,"tier":"5s","interval_ms":5000,"start_ms":0,"stop_ms":10,
                "series":[{"metric":"cpu.total_pct","labels":{},"points":[[0,1,1,1]]},
                          {"metric":"cpu.core_pct","labels":{"core":"1"},"points":[[0,2,2,2]]},
                          {"metric":"load.1m","labels":{},"points":[]}]}"#,
        )
        .unwrap();
        assert_eq!(ChartKind::Cpu.lines_from_history(&resp)[0].label, "CPU");
        assert_eq!(
            ChartKind::Cores.lines_from_history(&resp)[0].label,
            "core 1"
        );
        assert!(ChartKind::Memory.lines_from_history(&resp).is_empty());
    }

    #[test]
    fn a_frame_covers_exactly_the_range() {
        let l = line("CPU", &[(1_000, 1.0), (60_000, 2.0), (200_000, 3.0)]);
        let (_, mut data) = align(&[l], 60_000, false, Unit::Pct, 100);
        // 7 days ending at 100 s: the row at 200 s (outside) goes, an empty
        // row marks the start.
        data.frame(100_000 - 7 * 86_400_000, 100_000);
        assert_eq!(
            data.xs.first(),
            Some(&((100_000 - 7 * 86_400_000) as f64 / 1000.0))
        );
        assert_eq!(data.xs.last(), Some(&100.0));
        assert_eq!(data.ys[0], vec![None, Some(1.0), Some(2.0), None]);
        assert_eq!(data.first_value_ms(), Some(1_000));
        assert!(data.has_values());
        // No data at all: still the whole span, with nothing drawn.
        let mut empty = ChartData {
            xs: vec![],
            ys: vec![vec![]],
        };
        empty.frame(0, 3_600_000);
        assert_eq!(empty.xs, vec![0.0, 3_600.0]);
        assert!(!empty.has_values());
        assert_eq!(empty.first_value_ms(), None);
    }

    #[test]
    fn the_summary_reads_min_avg_max_of_each_line() {
        let l = line("CPU", &[(0, 1.0), (60_000, 3.0)]);
        let (spec, data) = align(&[l], 60_000, true, Unit::Pct, 100);
        let s = summarize(&spec, &data);
        assert_eq!(s.len(), 1, "band edges are not lines");
        assert_eq!((s[0].min, s[0].avg, s[0].max), (1.0, 2.0, 3.0));
        assert_eq!(Unit::Rate.format(1024.0), "1.00 KiB/s");
    }

    #[test]
    fn sparkline_breaks_at_gaps() {
        let p = sparkline_path(
            &[(0, 0.0), (10, 50.0), (100, 100.0)],
            0,
            100,
            100.0,
            10,
            100.0,
            20.0,
        );
        assert_eq!(p, "M0.0 20.0L10.0 10.0M100.0 0.0");
    }
}
