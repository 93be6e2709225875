//! The ring's compact form of older reports: blocks of reports, each report
//! encoded against the one before it in the same block.
//!
//! A report is walked field by field in a fixed order ([`walk`]); the walk is
//! the same for the encoder and the decoder, so they cannot disagree on the
//! layout. Per report, in walk order:
//!
//! - presence flags and vector lengths: one LEB128 varint each (one byte);
//! - integers (`ts_ms`, bytes, MHz, uptime…): the zigzag varint of the
//!   wrapping difference from the value in the same position of the previous
//!   report of the block (0 at the start of a block), so a constant total is
//!   one byte and a timestamp 5 s later two;
//! - floats: when `v × 10^k` is an integer `i` (k = 0, 1 or 2, |i| < 2^50) and
//!   `i / 10^k` gives back exactly the same bits, the varint of
//!   `zigzag(i − previous) << 2 | k`; otherwise the tag `3` then the 8 bytes
//!   of the float (NaN, −0.0 and full-precision values stay exact). Agents
//!   round percentages to 0.1, so a core's % is one or two bytes;
//! - strings (mounts, interfaces, sensors): `0` when equal to the previous
//!   report's string in the same position, else `len + 1` and the bytes.
//!
//! Decoding gives back a report equal (`==`, and bit for bit for floats) to
//! the one encoded. A block starts from empty state, so it decodes alone and
//! the ring can drop the oldest block without touching the others.

use crate::model::{Container, Cpu, Disk, Memory, Network, Process, Report, Service, Temperature};

/// Reports per block: about 2.7 minutes at 5 s. The ring drops whole blocks,
/// so it holds up to one block beyond its window.
pub const BLOCK_REPORTS: u32 = 32;

/// A sealed or open run of encoded reports, oldest first.
#[derive(Default)]
pub struct Block {
    pub first_ts: i64,
    pub last_ts: i64,
    pub count: u32,
    bytes: Vec<u8>,
    /// The encoder's state after the last report (dropped when sealed).
    state: Option<Box<Slots>>,
}

impl Block {
    /// Appends `report`, whose `ts_ms` is not older than the block's newest.
    pub fn push(&mut self, report: &Report) {
        let state = self.state.get_or_insert_with(Box::default);
        if self.count == 0 {
            self.first_ts = report.ts_ms;
        }
        self.last_ts = report.ts_ms;
        self.count += 1;
        let mut copy = report.clone();
        walk(
            &mut copy,
            &mut Encoder {
                out: &mut self.bytes,
                slots: state,
                num: 0,
                text: 0,
            },
        );
    }

    pub fn is_full(&self) -> bool {
        self.count >= BLOCK_REPORTS
    }

    /// Gives back the spare capacity and the encoder state: nothing more
    /// will be appended.
    pub fn seal(&mut self) {
        self.state = None;
        self.bytes.shrink_to_fit();
    }

    /// Heap bytes held (the encoded reports and, while open, the state).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.state.as_ref().map_or(0, |s| s.heap_bytes())
    }

    /// Every report of the block, oldest first, handed to `f`.
    pub fn decode(&self, mut f: impl FnMut(Report)) {
        let mut slots = Slots::default();
        let mut input = &self.bytes[..];
        for _ in 0..self.count {
            let mut report = Report::default();
            let mut d = Decoder {
                input: &mut input,
                slots: &mut slots,
                num: 0,
                text: 0,
            };
            walk(&mut report, &mut d);
            f(report);
        }
    }
}

/// The previous report's numbers and strings, by position in the walk.
#[derive(Default)]
struct Slots {
    nums: Vec<u64>,
    texts: Vec<String>,
}

impl Slots {
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.nums.capacity() * 8
            + self.texts.capacity() * std::mem::size_of::<String>()
            + self.texts.iter().map(String::capacity).sum::<usize>()
    }
}

/// One side of the codec: the encoder reads each field, the decoder sets it.
trait Visit {
    fn flag(&mut self, present: bool) -> bool;
    fn len(&mut self, len: usize) -> usize;
    fn int(&mut self, v: &mut u64);
    fn float(&mut self, v: &mut f64);
    fn text(&mut self, v: &mut String);
}

fn opt<T: Default>(v: &mut impl Visit, field: &mut Option<T>, mut each: impl FnMut(&mut T)) {
    if v.flag(field.is_some()) {
        each(field.get_or_insert_with(T::default));
    } else {
        *field = None;
    }
}

fn list<T: Default>(v: &mut impl Visit, field: &mut Vec<T>, mut each: impl FnMut(&mut T)) {
    let n = v.len(field.len());
    field.resize_with(n, T::default);
    field.iter_mut().for_each(&mut each);
}

fn int_opt(v: &mut impl Visit, field: &mut Option<u64>) {
    opt(v, field, |_| {});
    if let Some(x) = field {
        v.int(x);
    }
}

/// The one field order both sides follow.
fn walk(r: &mut Report, v: &mut impl Visit) {
    let mut ts = r.ts_ms as u64;
    v.int(&mut ts);
    r.ts_ms = ts as i64;
    let mut interval = r.interval_ms.map(u64::from);
    int_opt(v, &mut interval);
    // A decoded interval came from a u32.
    r.interval_ms = interval.map(|i| i as u32);
    let present = v.flag(r.cpu.is_some());
    if present {
        let cpu: &mut Cpu = r.cpu.get_or_insert_with(Cpu::default);
        v.float(&mut cpu.total_pct);
        let n = v.len(cpu.cores_pct.len());
        cpu.cores_pct.resize(n, 0.0);
        for x in &mut cpu.cores_pct {
            v.float(x);
        }
        let n = v.len(cpu.cores_mhz.len());
        cpu.cores_mhz.resize(n, 0);
        for x in &mut cpu.cores_mhz {
            v.int(x);
        }
    } else {
        r.cpu = None;
    }
    let present = v.flag(r.load.is_some());
    if present {
        for x in r.load.get_or_insert([0.0; 3]) {
            v.float(x);
        }
    } else {
        r.load = None;
    }
    let present = v.flag(r.memory.is_some());
    if present {
        let m: &mut Memory = r.memory.get_or_insert_with(Memory::default);
        v.int(&mut m.total_bytes);
        v.int(&mut m.used_bytes);
        int_opt(v, &mut m.available_bytes);
        int_opt(v, &mut m.swap_total_bytes);
        int_opt(v, &mut m.swap_used_bytes);
    } else {
        r.memory = None;
    }
    let n = v.len(r.disks.len());
    r.disks.resize_with(n, Disk::default);
    for d in &mut r.disks {
        v.text(&mut d.mount);
        v.int(&mut d.total_bytes);
        v.int(&mut d.used_bytes);
        int_opt(v, &mut d.available_bytes);
        int_opt(v, &mut d.read_bps);
        int_opt(v, &mut d.write_bps);
    }
    list(v, &mut r.networks, |_: &mut Network| {});
    for n in &mut r.networks {
        v.text(&mut n.iface);
        v.int(&mut n.rx_bps);
        v.int(&mut n.tx_bps);
    }
    int_opt(v, &mut r.uptime_s);
    list(v, &mut r.temps, |_: &mut Temperature| {});
    for t in &mut r.temps {
        v.text(&mut t.sensor);
        v.float(&mut t.celsius);
    }
    let present = v.flag(r.containers.is_some());
    if present {
        let list: &mut Vec<Container> = r.containers.get_or_insert_with(Vec::new);
        let n = v.len(list.len());
        list.resize_with(n, Container::default);
        for c in list {
            for t in [&mut c.id, &mut c.name, &mut c.image, &mut c.state] {
                v.text(t);
            }
            opt(v, &mut c.health, |_| {});
            if let Some(h) = &mut c.health {
                v.text(h);
            }
            let mut restarts = c.restarts.map(u64::from);
            int_opt(v, &mut restarts);
            // A decoded count came from a u32.
            c.restarts = restarts.map(|x| x as u32);
            opt(v, &mut c.cpu_pct, |_| {});
            if let Some(x) = &mut c.cpu_pct {
                v.float(x);
            }
            for x in [
                &mut c.mem_used_bytes,
                &mut c.mem_limit_bytes,
                &mut c.net_rx_bps,
                &mut c.net_tx_bps,
                &mut c.block_read_bps,
                &mut c.block_write_bps,
            ] {
                int_opt(v, x);
            }
        }
    } else {
        r.containers = None;
    }
    let present = v.flag(r.processes.is_some());
    if present {
        let list: &mut Vec<Process> = r.processes.get_or_insert_with(Vec::new);
        let n = v.len(list.len());
        list.resize_with(n, Process::default);
        for p in list {
            let mut pid = u64::from(p.pid);
            v.int(&mut pid);
            p.pid = pid as u32;
            v.text(&mut p.name);
            opt(v, &mut p.user, |_| {});
            if let Some(u) = &mut p.user {
                v.text(u);
            }
            v.float(&mut p.cpu_pct);
            v.int(&mut p.rss_bytes);
            opt(v, &mut p.cmdline, |_| {});
            if let Some(c) = &mut p.cmdline {
                v.text(c);
            }
        }
    } else {
        r.processes = None;
    }
    let present = v.flag(r.services.is_some());
    if present {
        let list: &mut Vec<Service> = r.services.get_or_insert_with(Vec::new);
        let n = v.len(list.len());
        list.resize_with(n, Service::default);
        for s in list {
            v.text(&mut s.unit);
            v.text(&mut s.active);
            v.text(&mut s.sub);
        }
    } else {
        r.services = None;
    }
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint from `input`; a truncated input reads as zero bits (blocks are
/// only ever decoded from what the encoder wrote, in memory).
fn get_varint(input: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some((&b, rest)) = input.split_first() {
        *input = rest;
        if shift < 64 {
            v |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

const SCALES: [f64; 3] = [1.0, 10.0, 100.0];
const RAW_FLOAT: u64 = 3;
const MAX_SCALED: f64 = (1u64 << 50) as f64;

/// `(k, i)` with `i / 10^k` exactly `v`, if there is one.
fn scaled(v: f64) -> Option<(u64, i64)> {
    SCALES.iter().enumerate().find_map(|(k, &s)| {
        let x = v * s;
        if x.fract() != 0.0 || x.abs() >= MAX_SCALED {
            return None;
        }
        let i = x as i64;
        ((i as f64 / s).to_bits() == v.to_bits()).then_some((k as u64, i))
    })
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    slots: &'a mut Slots,
    num: usize,
    text: usize,
}

impl Encoder<'_> {
    /// Swaps `v` into the next number slot, returning the previous value.
    fn slot(&mut self, v: u64) -> u64 {
        let i = self.num;
        self.num += 1;
        match self.slots.nums.get_mut(i) {
            Some(prev) => std::mem::replace(prev, v),
            None => {
                self.slots.nums.push(v);
                0
            }
        }
    }
}

impl Visit for Encoder<'_> {
    fn flag(&mut self, present: bool) -> bool {
        self.out.push(u8::from(present));
        present
    }

    fn len(&mut self, len: usize) -> usize {
        put_varint(self.out, len as u64);
        len
    }

    fn int(&mut self, v: &mut u64) {
        let prev = self.slot(*v);
        put_varint(self.out, zigzag(v.wrapping_sub(prev) as i64));
    }

    fn float(&mut self, v: &mut f64) {
        let prev = self.slots.nums.get(self.num).copied().unwrap_or(0) as i64;
        if let Some((k, i)) = scaled(*v) {
            let d = zigzag(i.wrapping_sub(prev));
            if d < 1 << 61 {
                self.slot(i as u64);
                put_varint(self.out, d << 2 | k);
                return;
            }
        }
        // The decoder keeps the bits of a raw float in the slot, so do the same.
        self.slot(v.to_bits());
        put_varint(self.out, RAW_FLOAT);
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    fn text(&mut self, v: &mut String) {
        let i = self.text;
        self.text += 1;
        match self.slots.texts.get_mut(i) {
            Some(prev) if prev == v => self.out.push(0),
            slot => {
                put_varint(self.out, v.len() as u64 + 1);
                self.out.extend_from_slice(v.as_bytes());
                match slot {
                    Some(prev) => prev.clone_from(v),
                    None => self.slots.texts.push(v.clone()),
                }
            }
        }
    }
}

struct Decoder<'a, 'b> {
    input: &'a mut &'b [u8],
    slots: &'a mut Slots,
    num: usize,
    text: usize,
}

impl Decoder<'_, '_> {
    fn prev(&self) -> u64 {
        self.slots.nums.get(self.num).copied().unwrap_or(0)
    }

    fn set(&mut self, v: u64) {
        match self.slots.nums.get_mut(self.num) {
            Some(slot) => *slot = v,
            None => self.slots.nums.push(v),
        }
        self.num += 1;
    }
}

impl Visit for Decoder<'_, '_> {
    fn flag(&mut self, _: bool) -> bool {
        get_varint(self.input) != 0
    }

    fn len(&mut self, _: usize) -> usize {
        // Each element takes at least a byte: a damaged length cannot
        // allocate more than what is left.
        (get_varint(self.input) as usize).min(self.input.len())
    }

    fn int(&mut self, v: &mut u64) {
        *v = self
            .prev()
            .wrapping_add(unzigzag(get_varint(self.input)) as u64);
        self.set(*v);
    }

    fn float(&mut self, v: &mut f64) {
        let word = get_varint(self.input);
        if word == RAW_FLOAT {
            let (bytes, rest) = self.input.split_at(8.min(self.input.len()));
            *self.input = rest;
            let mut b = [0u8; 8];
            b[..bytes.len()].copy_from_slice(bytes);
            *v = f64::from_bits(u64::from_le_bytes(b));
            self.set(v.to_bits());
        } else {
            let k = (word & 3) as usize;
            let i = (self.prev() as i64).wrapping_add(unzigzag(word >> 2));
            *v = i as f64 / SCALES[k.min(2)];
            self.set(i as u64);
        }
    }

    fn text(&mut self, v: &mut String) {
        let i = self.text;
        self.text += 1;
        let n = get_varint(self.input) as usize;
        if n == 0 {
            v.clone_from(self.slots.texts.get(i).map_or(&String::new(), |s| s));
            return;
        }
        let (bytes, rest) = self.input.split_at((n - 1).min(self.input.len()));
        *self.input = rest;
        *v = String::from_utf8_lossy(bytes).into_owned();
        match self.slots.texts.get_mut(i) {
            Some(slot) => slot.clone_from(v),
            None => self.slots.texts.push(v.clone()),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A report shaped like an agent's: 8 cores, 2 mounts, 2 interfaces.
    pub fn agent_like(ts: i64, seed: u64) -> Report {
        let mut x = seed.wrapping_mul(6364136223846793005) ^ ts as u64;
        let mut next = move |span: f64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) as f64 / (1u64 << 31) as f64) * span
        };
        let cores: Vec<f64> = (0..8).map(|_| (next(1000.0)).round() / 10.0).collect();
        Report {
            ts_ms: ts,
            interval_ms: Some(5000),
            cpu: Some(Cpu {
                total_pct: (cores.iter().sum::<f64>() / 8.0 * 10.0).round() / 10.0,
                cores_mhz: (0..8).map(|_| 2000 + next(2000.0) as u64).collect(),
                cores_pct: cores,
            }),
            load: Some([(next(400.0)).round() / 100.0, 1.5, 1.2]),
            memory: Some(Memory {
                total_bytes: 16_000_000_000,
                used_bytes: 4_000_000_000 + next(4e9) as u64,
                available_bytes: Some(8_000_000_000),
                swap_total_bytes: Some(2_000_000_000),
                swap_used_bytes: Some(next(1e8) as u64),
            }),
            disks: ["/", "/data"]
                .iter()
                .map(|m| {
                    let used = 200_000_000_000 + next(1e6) as u64;
                    Disk {
                        mount: (*m).into(),
                        total_bytes: 500_000_000_000,
                        used_bytes: used,
                        // What is not used, less a 5 % reservation.
                        available_bytes: Some(475_000_000_000 - used),
                        read_bps: Some(next(1e6) as u64),
                        write_bps: Some(next(2e6) as u64),
                    }
                })
                .collect(),
            networks: ["eth0", "wg0"]
                .iter()
                .map(|i| Network {
                    iface: (*i).into(),
                    rx_bps: next(1e7) as u64,
                    tx_bps: next(1e6) as u64,
                })
                .collect(),
            uptime_s: Some(86_400 + ts as u64 / 1000),
            temps: Vec::new(),
            containers: None,
            processes: None,
            services: None,
        }
    }

    /// Containers, processes and services come back exactly, with their
    /// absent and present-but-empty parts apart.
    #[test]
    fn containers_processes_and_services_round_trip() {
        let mut reports = Vec::new();
        for i in 0..6i64 {
            let mut r = agent_like(i * 5000, 3);
            r.containers = match i {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(
                    (0..i)
                        .map(|c| Container {
                            id: format!("{c:064x}"),
                            name: format!("app-{c}"),
                            image: "nginx:1.27".into(),
                            state: if c == 1 { "exited" } else { "running" }.into(),
                            health: (c == 0).then(|| "unhealthy".into()),
                            restarts: Some(c as u32),
                            cpu_pct: (c != 1).then_some(0.1 * c as f64),
                            mem_used_bytes: Some(1_000 * c as u64),
                            mem_limit_bytes: Some(u64::MAX),
                            net_rx_bps: None,
                            net_tx_bps: Some(7),
                            block_read_bps: Some(0),
                            block_write_bps: None,
                        })
                        .collect(),
                ),
            };
            r.processes = (i % 2 == 0).then(|| {
                vec![Process {
                    pid: u32::MAX - i as u32,
                    name: "postgres".into(),
                    user: (i == 2).then(|| "postgres".into()),
                    cpu_pct: f64::NAN,
                    rss_bytes: 1 << 40,
                    cmdline: (i == 4).then(|| "postgres -D /var/lib/pg".into()),
                }]
            });
            r.services = (i > 2).then(|| {
                vec![Service {
                    unit: "nginx.service".into(),
                    active: "failed".into(),
                    sub: String::new(),
                }]
            });
            reports.push(r);
        }
        let back = roundtrip(&reports);
        // NaN != NaN: compare the bits of the process CPU, the rest with ==.
        let strip = |r: &Report| {
            let mut r = r.clone();
            for p in r.processes.iter_mut().flatten() {
                p.cpu_pct = f64::from_bits(p.cpu_pct.to_bits());
                assert!(p.cpu_pct.is_nan());
                p.cpu_pct = 0.0;
            }
            r
        };
        let back: Vec<Report> = back.iter().map(strip).collect();
        let want: Vec<Report> = reports.iter().map(strip).collect();
        assert_eq!(back, want);
    }

    fn roundtrip(reports: &[Report]) -> Vec<Report> {
        let mut block = Block::default();
        for r in reports {
            block.push(r);
        }
        let mut out = Vec::new();
        block.decode(|r| out.push(r));
        out
    }

    fn same_bits(a: &Report, b: &Report) -> bool {
        let floats = |r: &Report| -> Vec<u64> {
            let mut v = Vec::new();
            if let Some(c) = &r.cpu {
                v.push(c.total_pct.to_bits());
                v.extend(c.cores_pct.iter().map(|x| x.to_bits()));
            }
            v.extend(r.load.iter().flatten().map(|x| x.to_bits()));
            v.extend(r.temps.iter().map(|t| t.celsius.to_bits()));
            v
        };
        floats(a) == floats(b)
    }

    #[test]
    fn agent_reports_round_trip_exactly_and_small() {
        let reports: Vec<Report> = (0..BLOCK_REPORTS as i64)
            .map(|i| agent_like(1_795_608_000_000 + i * 5000, 7))
            .collect();
        let mut block = Block::default();
        reports.iter().for_each(|r| block.push(r));
        block.seal();
        let back = roundtrip(&reports);
        assert_eq!(back, reports);
        let per_report = block.heap_bytes() / reports.len();
        // About 3 bytes more per changing disk figure (two disks' available
        // bytes, moving with their used bytes).
        assert!(per_report < 128, "{per_report} bytes per report");
    }

    #[test]
    fn any_float_and_shape_change_round_trips() {
        let odd = [
            f64::NAN,
            -0.0,
            f64::INFINITY,
            f64::MIN_POSITIVE,
            0.1 + 0.2,
            1e300,
            -12.34,
            9_007_199_254_740_993.0,
        ];
        let mut reports = Vec::new();
        for (i, x) in odd.iter().enumerate() {
            let mut r = agent_like(i as i64 * 5000, i as u64);
            r.cpu.as_mut().unwrap().total_pct = *x;
            r.cpu.as_mut().unwrap().cores_pct.truncate(i);
            if i % 2 == 1 {
                r.disks.reverse();
                r.memory = None;
                r.temps.push(Temperature {
                    sensor: format!("s{i}"),
                    celsius: *x,
                });
            }
            if i == 3 {
                r = Report {
                    ts_ms: -5,
                    ..Report::default()
                };
            }
            reports.push(r);
        }
        let back = roundtrip(&reports);
        assert_eq!(back.len(), reports.len());
        for (a, b) in reports.iter().zip(&back) {
            assert!(same_bits(a, b), "{a:?} != {b:?}");
            assert_eq!(a.disks, b.disks);
            assert_eq!((a.ts_ms, a.memory.clone()), (b.ts_ms, b.memory.clone()));
            assert_eq!(a.networks, b.networks);
        }
    }

    #[test]
    fn decoding_garbage_does_not_panic() {
        let mut block = Block::default();
        block.push(&agent_like(0, 1));
        for cut in 0..block.bytes.len() {
            let mut b = Block {
                bytes: block.bytes[..cut].to_vec(),
                count: 3,
                ..Block::default()
            };
            b.bytes.extend([0xff, 0x03, 0x80]);
            b.decode(|_| {});
        }
    }
}
