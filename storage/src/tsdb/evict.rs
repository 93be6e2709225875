//! Series that stopped leave memory: a container removed (or renamed, or
//! run with `docker run --rm` under a new name each time) leaves series keys
//! in its agent's dictionary that no report will use again. Maintenance
//! evicts the key of every series without a sample for longer than raw
//! retention ([`evict`]); its slot in the agent's id table keeps the shared
//! empty placeholder (one pointer), its history stays on disk under its id,
//! and its key stays in `meta`. Nothing on disk changes.
//!
//! The key is read back from `meta` when it is needed again: a write that
//! brings the series back ([`Engine::revive`]: same id, so its history
//! continues) and a query that reaches back before raw retention
//! ([`Engine::fill_evicted`], into the query's copy only).

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use super::series::{self, meta};
use super::tier::HOUR;
use super::{AgentState, Engine, Error, MaintenanceReport, Row, SeriesKey};

/// The key in the slot of an evicted series id (and of an id missing from
/// `meta`): no series has an empty metric name.
pub(crate) static PLACEHOLDER: LazyLock<Arc<SeriesKey>> =
    LazyLock::new(|| Arc::new(SeriesKey::new("")));

pub(crate) fn is_placeholder(key: &SeriesKey) -> bool {
    key.metric.is_empty()
}

/// The hour of `ts_ms`, as `AgentState::seen` keeps it.
pub(crate) fn hour_of(ts_ms: i64) -> u32 {
    u32::try_from(ts_ms.div_euclid(HOUR).max(0)).unwrap_or(u32::MAX)
}

/// Evicts the series of `st` whose newest sample is older than `limit`
/// (ms); the number evicted.
pub(crate) fn evict(st: &mut AgentState, limit: i64) -> usize {
    let mut n = 0;
    for sid in 0..st.keys.len() {
        if is_placeholder(&st.keys[sid]) {
            continue;
        }
        // A sample in hour h is at most (h + 1) × HOUR - 1.
        let seen = st.seen.get(sid).copied().unwrap_or(u32::MAX);
        if (i64::from(seen) + 1) * HOUR > limit {
            continue;
        }
        let key = std::mem::replace(&mut st.keys[sid], PLACEHOLDER.clone());
        st.series.remove(&key);
        n += 1;
    }
    if n == 0 {
        return 0;
    }
    st.evicted += n;
    // The agent's last shape, if it names an evicted series, must not let
    // a write skip the dictionary (and so the revival of its keys).
    let stale = |sids: &[u32], keys: &[Arc<SeriesKey>]| {
        sids.iter()
            .any(|sid| keys.get(*sid as usize).is_none_or(|k| is_placeholder(k)))
    };
    if st.shape.as_ref().is_some_and(|s| stale(&s.sids, &st.keys)) {
        st.shape = None;
    }
    st.marked = None;
    if st.series.len() < st.series.capacity() / 2 {
        st.series.shrink_to_fit();
    }
    n
}

impl Engine {
    /// Evicts, on every live agent, the series without a sample for longer
    /// than raw retention. Part of each maintenance pass.
    pub(crate) fn evict_quiet_series(&self, now: i64, report: &mut MaintenanceReport) {
        self.shapes.prune();
        let limit = now.saturating_sub(self.config.raw_retention_ms);
        for agent in self.all_agents() {
            let mut st = agent.lock();
            if st.deleted.is_none() {
                report.evicted_series += evict(&mut st, limit);
            }
        }
    }

    /// Puts back in `st` the evicted series that `rows` write again, with
    /// their ids from `meta`, so their history continues under the same
    /// id. Only rows whose key array is not the agent's last one look, and
    /// `meta` is read only when a key is missing while some are evicted.
    pub(crate) fn revive<'r>(
        &self,
        agent: u64,
        st: &mut AgentState,
        rows: impl IntoIterator<Item = &'r Row>,
    ) -> Result<(), Error> {
        if st.evicted == 0 {
            return Ok(());
        }
        let mut missing: HashSet<&SeriesKey> = HashSet::new();
        for row in rows {
            if st
                .shape
                .as_ref()
                .is_some_and(|s| Arc::ptr_eq(&s.keys, &row.keys))
            {
                continue;
            }
            missing.extend(row.keys.iter().filter(|k| !st.series.contains_key(*k)));
        }
        if missing.is_empty() {
            return Ok(());
        }
        let mut back = Vec::new();
        self.each_evicted(agent, &st.keys, |sid, key| {
            if missing.remove(&key) {
                back.push((sid, key));
            }
            !missing.is_empty()
        })?;
        for (sid, key) in back {
            let key = Arc::new(key);
            st.keys[sid as usize] = key.clone();
            st.series.insert(key, sid);
            st.evicted -= 1;
        }
        Ok(())
    }

    /// Fills the placeholder slots of `keys` (a query's copy of `agent`'s
    /// ids) with their keys from `meta`.
    pub(crate) fn fill_evicted(
        &self,
        agent: u64,
        keys: &mut [Arc<SeriesKey>],
    ) -> Result<(), Error> {
        let mut found = Vec::new();
        self.each_evicted(agent, keys, |sid, key| {
            found.push((sid, key));
            true
        })?;
        for (sid, key) in found {
            keys[sid as usize] = Arc::new(key);
        }
        Ok(())
    }

    /// Calls `f` with the id and the stored key of each series of `agent`
    /// whose slot in `keys` is a placeholder, until `f` returns false.
    fn each_evicted(
        &self,
        agent: u64,
        keys: &[Arc<SeriesKey>],
        mut f: impl FnMut(u32, SeriesKey) -> bool,
    ) -> Result<(), Error> {
        let mut prefix = vec![meta::SERIES];
        prefix.extend_from_slice(&agent.to_be_bytes());
        for item in self.meta.prefix(&prefix) {
            let (k, v) = item.into_inner().map_err(Error::fjall("scan meta"))?;
            let Some(sid) = k
                .get(9..13)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
            else {
                return Err(Error::corrupt("meta keyspace", "series key".to_owned()));
            };
            if !keys.get(sid as usize).is_some_and(|k| is_placeholder(k)) {
                continue;
            }
            if !f(sid, series::decode_series_key(&v)?) {
                break;
            }
        }
        Ok(())
    }
}
