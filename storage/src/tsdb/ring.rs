//! The ring buffer: per agent, the last minutes of reports in memory.
//!
//! The newest few reports of an agent are kept decoded; older ones are packed
//! ([`packed`]: about 120 bytes for a report of 8 cores, 2 mounts and 2
//! interfaces, against ≈ 1 KB decoded), so 15 minutes of 10,000 agents at
//! 5 s take about 220 MB rather than about 2 GB. Reading older reports
//! decodes them: a snapshot of 15 minutes (180 reports) takes ≈ 0.2 ms.
//!
//! It is the latest-values cache (alert rules, dashboards) and the live
//! fan-out: every pushed report is broadcast to the agent's subscribers. A
//! subscriber that falls behind gets `RecvError::Lagged` from tokio's
//! broadcast channel and can resync with [`Ring::snapshot`]; writers never
//! wait for readers. After a restart, refill it from the engine with
//! [`Engine::recent_reports`](super::Engine::recent_reports).

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::sync::broadcast;

use crate::model::Report;
use packed::Block;

mod packed;

/// Reports a lagging subscriber may fall behind before it is told so.
const CHANNEL_CAPACITY: usize = 256;

/// A report as broadcast to live subscribers. Every subscriber of an agent
/// gets the same `Arc<Live>`, so the first one to encode it for the wire
/// ([`Live::encoded`]) does it for all of them.
pub struct Live {
    pub report: Arc<Report>,
    encoded: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl Live {
    fn new(report: Arc<Report>) -> Self {
        Live {
            report,
            encoded: OnceLock::new(),
        }
    }

    /// The report encoded by `make`, computed once per report and shared by
    /// every subscriber asking for the same type `T` (a cheap-to-clone byte
    /// buffer, such as a WebSocket text frame). Asking for another type
    /// than the first caller encodes without caching.
    pub fn encoded<T: Clone + Send + Sync + 'static>(&self, make: impl FnOnce(&Report) -> T) -> T {
        let mut make = Some(make);
        let cached = self.encoded.get_or_init(|| {
            let f = make.take().expect("runs at most once");
            Box::new(f(&self.report))
        });
        match cached.downcast_ref::<T>() {
            Some(t) => t.clone(),
            None => match make {
                Some(f) => f(&self.report),
                // `make` ran in get_or_init, so the cache holds a T.
                None => unreachable!("the cache holds what `make` returned"),
            },
        }
    }
}

impl std::ops::Deref for Live {
    type Target = Report;
    fn deref(&self) -> &Report {
        &self.report
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("report", &self.report)
            .finish()
    }
}

/// Newest reports of an agent kept decoded: `latest`, the ingest ordering
/// check and the live frames read them. Older ones are packed.
const DECODED_TAIL: usize = 4;

/// One agent's reports: the newest few decoded, the rest of the window packed
/// ([`packed`]), about a sixth of the memory of a decoded report.
#[derive(Default)]
struct Reports {
    /// Older reports, blocks oldest first; every report in them is older
    /// than (or as old as) the tail's.
    packed: VecDeque<Block>,
    /// Sorted by `ts_ms`; never empty once a report was pushed.
    tail: VecDeque<Arc<Report>>,
}

impl Reports {
    fn newest(&self) -> Option<i64> {
        self.tail
            .back()
            .map(|r| r.ts_ms)
            .or_else(|| self.packed.back().map(|b| b.last_ts))
    }

    /// Appends a report not older than the newest.
    fn append(&mut self, report: Arc<Report>, horizon: i64) {
        self.tail.push_back(report);
        while self.tail.len() > DECODED_TAIL {
            let Some(old) = self.tail.pop_front() else {
                break;
            };
            if old.ts_ms < horizon {
                continue;
            }
            if self.packed.back().is_none_or(Block::is_full) {
                if let Some(full) = self.packed.back_mut() {
                    full.seal();
                }
                self.packed.push_back(Block::default());
            }
            if let Some(block) = self.packed.back_mut() {
                block.push(&old);
            }
        }
    }

    fn evict(&mut self, horizon: i64) {
        while self.tail.front().is_some_and(|r| r.ts_ms < horizon) {
            self.tail.pop_front();
        }
        while self.packed.front().is_some_and(|b| b.last_ts < horizon) {
            self.packed.pop_front();
        }
    }

    /// Every report with `ts_ms >= since_ms`, oldest first.
    fn since(&self, since_ms: i64) -> Vec<Arc<Report>> {
        let mut out = Vec::new();
        for block in self.packed.iter().filter(|b| b.last_ts >= since_ms) {
            block.decode(|r| {
                if r.ts_ms >= since_ms {
                    out.push(Arc::new(r));
                }
            });
        }
        let i = self.tail.partition_point(|r| r.ts_ms < since_ms);
        out.extend(self.tail.range(i..).cloned());
        out
    }
}

struct AgentRing {
    reports: Mutex<Reports>,
    /// Made by the first subscriber: a channel allocates all its slots up
    /// front (about 10 KB), which 10,000 agents nobody watches need not pay.
    tx: OnceLock<broadcast::Sender<Arc<Live>>>,
}

impl AgentRing {
    fn new() -> Self {
        AgentRing {
            reports: Mutex::new(Reports::default()),
            tx: OnceLock::new(),
        }
    }
}

/// What the ring holds (for the tests' size bounds).
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    pub agents: usize,
    /// Reports kept decoded (the newest few per agent).
    pub decoded: usize,
    /// Reports kept packed.
    pub packed: usize,
    /// Heap bytes of the packed reports.
    pub packed_bytes: usize,
}

/// Per-agent recent reports with a broadcast per agent.
pub struct Ring {
    window_ms: i64,
    agents: RwLock<HashMap<u64, Arc<AgentRing>>>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("window_ms", &self.window_ms)
            .finish()
    }
}

impl Ring {
    /// A ring keeping `window_ms` of reports per agent (15 min in the server).
    pub fn new(window_ms: i64) -> Self {
        Ring {
            window_ms,
            agents: RwLock::new(HashMap::new()),
        }
    }

    fn agent(&self, agent: u64) -> Arc<AgentRing> {
        if let Some(a) = self
            .agents
            .read()
            .expect("ring lock is never held across a panic")
            .get(&agent)
        {
            return a.clone();
        }
        self.agents
            .write()
            .expect("ring lock is never held across a panic")
            .entry(agent)
            .or_insert_with(|| Arc::new(AgentRing::new()))
            .clone()
    }

    /// Add a report (replayed, older reports are put in time order) and
    /// broadcast it; reports older than the window behind the newest are dropped.
    pub fn push(&self, agent: u64, report: Arc<Report>) {
        let ring = self.agent(agent);
        {
            let mut q = ring
                .reports
                .lock()
                .expect("ring lock is never held across a panic");
            let newest = q.newest().map_or(report.ts_ms, |t| t.max(report.ts_ms));
            let horizon = newest - self.window_ms;
            if report.ts_ms >= horizon {
                if q.newest().is_some_and(|t| t > report.ts_ms) {
                    // Out of order (rare: ingest only pushes newer reports):
                    // unpack, insert, pack again.
                    let mut all = q.since(i64::MIN);
                    let i = all.partition_point(|r| r.ts_ms <= report.ts_ms);
                    all.insert(i, report.clone());
                    *q = Reports::default();
                    for r in all {
                        q.append(r, horizon);
                    }
                } else {
                    q.append(report.clone(), horizon);
                }
            }
            q.evict(horizon);
        }
        // No subscribers: nothing to wrap or send. One subscribing right now
        // finds this report in its snapshot (it is in the queue already).
        if let Some(tx) = ring.tx.get()
            && tx.receiver_count() > 0
        {
            let _ = tx.send(Arc::new(Live::new(report)));
        }
    }

    /// Adds the reports of `reports` (in time order) that are newer than
    /// `agent`'s newest, and broadcasts each; the others (a spool replay
    /// behind what the ring holds) are history, not news, and are dropped.
    /// What ingest does with an accepted batch, with one look-up of the
    /// agent and one lock for the whole batch.
    pub fn push_newer(&self, agent: u64, reports: Vec<Report>) {
        let ring = self.agent(agent);
        let mut pushed = Vec::with_capacity(reports.len());
        {
            let mut q = ring
                .reports
                .lock()
                .expect("ring lock is never held across a panic");
            let newest = q.newest();
            for report in reports {
                if newest.is_some_and(|t| report.ts_ms <= t)
                    || q.newest().is_some_and(|t| report.ts_ms < t)
                {
                    continue;
                }
                let report = Arc::new(report);
                let horizon = report.ts_ms - self.window_ms;
                q.append(report.clone(), horizon);
                q.evict(horizon);
                pushed.push(report);
            }
        }
        if let Some(tx) = ring.tx.get()
            && tx.receiver_count() > 0
        {
            for report in pushed {
                let _ = tx.send(Arc::new(Live::new(report)));
            }
        }
    }

    /// The newest report of `agent`.
    pub fn latest(&self, agent: u64) -> Option<Arc<Report>> {
        let ring = self
            .agents
            .read()
            .expect("ring lock is never held across a panic")
            .get(&agent)?
            .clone();
        let q = ring
            .reports
            .lock()
            .expect("ring lock is never held across a panic");
        q.tail.back().cloned()
    }

    /// Reports of `agent` with `ts_ms >= since_ms`, oldest first.
    pub fn snapshot(&self, agent: u64, since_ms: i64) -> Vec<Arc<Report>> {
        let Some(ring) = self
            .agents
            .read()
            .expect("ring lock is never held across a panic")
            .get(&agent)
            .cloned()
        else {
            return Vec::new();
        };
        let q = ring
            .reports
            .lock()
            .expect("ring lock is never held across a panic");
        q.since(since_ms)
    }

    /// Counts and bytes of what the ring holds.
    #[cfg(test)]
    fn stats(&self) -> RingStats {
        let agents: Vec<Arc<AgentRing>> = self
            .agents
            .read()
            .expect("ring lock is never held across a panic")
            .values()
            .cloned()
            .collect();
        let mut stats = RingStats {
            agents: agents.len(),
            ..RingStats::default()
        };
        for a in agents {
            let q = a
                .reports
                .lock()
                .expect("ring lock is never held across a panic");
            stats.decoded += q.tail.len();
            for b in &q.packed {
                stats.packed += b.count as usize;
                stats.packed_bytes += b.heap_bytes();
            }
        }
        stats
    }

    /// Every report pushed for `agent` from now on.
    pub fn subscribe(&self, agent: u64) -> broadcast::Receiver<Arc<Live>> {
        self.agent(agent)
            .tx
            .get_or_init(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// Forget an agent (deleted); its subscribers see the channel close.
    pub fn remove(&self, agent: u64) {
        self.agents
            .write()
            .expect("ring lock is never held across a panic")
            .remove(&agent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast::error::TryRecvError;

    fn rep(ts: i64) -> Arc<Report> {
        Arc::new(Report {
            ts_ms: ts,
            ..Report::default()
        })
    }

    #[test]
    fn keeps_window_in_order_and_latest() {
        let ring = Ring::new(15 * 60_000);
        for ts in [0, 5_000, 10_000] {
            ring.push(1, rep(ts));
        }
        ring.push(1, rep(7_000)); // replayed out of order
        let ts: Vec<i64> = ring.snapshot(1, 0).iter().map(|r| r.ts_ms).collect();
        assert_eq!(ts, [0, 5_000, 7_000, 10_000]);
        assert_eq!(ring.latest(1).unwrap().ts_ms, 10_000);
        ring.push(1, rep(16 * 60_000));
        let ts: Vec<i64> = ring.snapshot(1, 0).iter().map(|r| r.ts_ms).collect();
        assert_eq!(ts, [60_000 * 16]);
        assert_eq!(ring.snapshot(1, 0).len(), 1);
        assert!(ring.latest(2).is_none());
        ring.remove(1);
        assert!(ring.latest(1).is_none());
    }

    #[test]
    fn push_newer_keeps_only_what_is_newer_than_the_ring_and_broadcasts_it() {
        let ring = Ring::new(15 * 60_000);
        let plain = |ts: i64| Report {
            ts_ms: ts,
            ..Report::default()
        };
        ring.push_newer(1, vec![plain(0), plain(5_000)]);
        let mut rx = ring.subscribe(1);
        // A spool replay reaching back behind the ring's newest: only the
        // part after it is news.
        ring.push_newer(
            1,
            vec![plain(2_000), plain(5_000), plain(10_000), plain(15_000)],
        );
        let ts: Vec<i64> = ring.snapshot(1, 0).iter().map(|r| r.ts_ms).collect();
        assert_eq!(ts, [0, 5_000, 10_000, 15_000]);
        assert_eq!(rx.try_recv().unwrap().ts_ms, 10_000);
        assert_eq!(rx.try_recv().unwrap().ts_ms, 15_000);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        // Wholly older: nothing stored, nothing sent.
        ring.push_newer(1, vec![plain(1_000)]);
        assert_eq!(ring.snapshot(1, 0).len(), 4);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        // A report a window ahead evicts what fell out of it.
        ring.push_newer(1, vec![plain(16 * 60_000)]);
        let ts: Vec<i64> = ring.snapshot(1, 0).iter().map(|r| r.ts_ms).collect();
        assert_eq!(ts, [16 * 60_000]);
        assert_eq!(ring.latest(1).unwrap().ts_ms, 16 * 60_000);
    }

    #[test]
    fn slow_subscriber_is_told_it_lagged_and_writer_never_blocks() {
        let ring = Ring::new(i64::MAX / 4);
        let mut rx = ring.subscribe(3);
        for ts in 0..(CHANNEL_CAPACITY as i64 + 10) {
            ring.push(3, rep(ts));
        }
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Lagged(10))));
        assert_eq!(rx.try_recv().unwrap().ts_ms, 10);
        assert_eq!(ring.snapshot(3, 0).len(), CHANNEL_CAPACITY + 10);
    }

    #[test]
    fn subscribers_share_one_encoding() {
        let ring = Ring::new(i64::MAX / 4);
        let (mut a, mut b) = (ring.subscribe(4), ring.subscribe(4));
        ring.push(4, rep(42));
        let (la, lb) = (a.try_recv().unwrap(), b.try_recv().unwrap());
        assert!(Arc::ptr_eq(&la, &lb));
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let make = |r: &Report| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Arc::<str>::from(r.ts_ms.to_string())
        };
        assert_eq!(&*la.encoded(make), "42");
        assert_eq!(&*lb.encoded(make), "42");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Another type is encoded, not confused with the cached one.
        assert_eq!(lb.encoded(|r| r.ts_ms), 42);
    }

    #[test]
    fn fifteen_minutes_are_kept_packed_and_snapshot_gives_them_back() {
        let window = 15 * 60_000;
        let ring = Ring::new(window);
        let t0 = 1_795_608_000_000;
        // 20 minutes at 5 s for 3 agents.
        let mut pushed = Vec::new();
        for i in 0..240 {
            for agent in 0..3 {
                let r = Arc::new(packed::tests::agent_like(t0 + i * 5000, agent));
                if agent == 0 {
                    pushed.push(r.clone());
                }
                ring.push(agent, r);
            }
        }
        let newest = t0 + 239 * 5000;
        let snap = ring.snapshot(0, newest - window);
        let want: Vec<&Report> = pushed
            .iter()
            .filter(|r| r.ts_ms >= newest - window)
            .map(|r| &**r)
            .collect();
        assert_eq!(want.len(), 181);
        assert_eq!(snap.iter().map(|r| &**r).collect::<Vec<_>>(), want);
        assert_eq!(ring.latest(0).unwrap().ts_ms, newest);

        let stats = ring.stats();
        let per_agent = stats.packed + stats.decoded;
        // The window and at most one block more, nearly all of it packed.
        assert!(
            (181..=181 + packed::BLOCK_REPORTS as usize).contains(&(per_agent / 3)),
            "{stats:?}"
        );
        assert_eq!(stats.decoded, 3 * DECODED_TAIL);
        let bytes_per_report = stats.packed_bytes / stats.packed;
        // Three bytes of it are the absent containers, processes and services.
        assert!(
            bytes_per_report < 133,
            "{bytes_per_report} B per packed report"
        );

        // A replayed report lands in order among packed ones.
        let mut late = packed::tests::agent_like(newest - 600_002, 9);
        late.uptime_s = Some(1);
        ring.push(0, Arc::new(late.clone()));
        let snap = ring.snapshot(0, newest - 600_010);
        assert_eq!(*snap[0], late);
        assert!(snap.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
        assert_eq!(ring.snapshot(0, newest - window).len(), 182);
    }
}
