//! The ring buffer: per agent, the last minutes of reports in memory.
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

struct AgentRing {
    /// Sorted by `ts_ms`.
    reports: Mutex<VecDeque<Arc<Report>>>,
    /// Made by the first subscriber: a channel allocates all its slots up
    /// front (about 10 KB), which 10,000 agents nobody watches need not pay.
    tx: OnceLock<broadcast::Sender<Arc<Live>>>,
}

impl AgentRing {
    fn new() -> Self {
        AgentRing {
            reports: Mutex::new(VecDeque::new()),
            tx: OnceLock::new(),
        }
    }
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
            let newest = q.back().map_or(report.ts_ms, |r| r.ts_ms.max(report.ts_ms));
            let horizon = newest - self.window_ms;
            if report.ts_ms >= horizon {
                match q.back() {
                    Some(last) if last.ts_ms > report.ts_ms => {
                        let i = q.partition_point(|r| r.ts_ms <= report.ts_ms);
                        q.insert(i, report.clone());
                    }
                    _ => q.push_back(report.clone()),
                }
            }
            while q.front().is_some_and(|r| r.ts_ms < horizon) {
                q.pop_front();
            }
        }
        // No subscribers: nothing to wrap or send. One subscribing right now
        // finds this report in its snapshot (it is in the queue already).
        if let Some(tx) = ring.tx.get()
            && tx.receiver_count() > 0
        {
            let _ = tx.send(Arc::new(Live::new(report)));
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
        q.back().cloned()
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
        let i = q.partition_point(|r| r.ts_ms < since_ms);
        q.range(i..).cloned().collect()
    }

    /// Every report pushed for `agent` from now on.
    pub fn subscribe(&self, agent: u64) -> broadcast::Receiver<Arc<Live>> {
        self.agent(agent)
            .tx
            .get_or_init(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }

    /// Live subscribers over all agents (open WebSockets).
    pub fn subscribers(&self) -> usize {
        self.agents
            .read()
            .expect("ring lock is never held across a panic")
            .values()
            .map(|a| a.tx.get().map_or(0, broadcast::Sender::receiver_count))
            .sum()
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
}
