//! The time partitions of each tier: one keyspace per tier and span, found
//! or created for a timestamp.

use std::collections::BTreeMap;

use fjall::{Keyspace, KeyspaceCreateOptions};

use super::tier::floor_to;
use super::{Engine, Error, Tier};

impl Engine {
    pub(super) fn parts_read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<(Tier, i64), (i64, Keyspace)>> {
        self.parts
            .read()
            .expect("partition map lock is never held across a panic")
    }

    /// The partition of `tier` containing `ts`, if any.
    pub(super) fn find_part(
        parts: &BTreeMap<(Tier, i64), (i64, Keyspace)>,
        tier: Tier,
        ts: i64,
    ) -> Option<Keyspace> {
        parts
            .range((tier, i64::MIN)..=(tier, ts))
            .next_back()
            .filter(|(_, (end, _))| ts < *end)
            .map(|(_, (_, ks))| ks.clone())
    }

    /// The partition keyspace holding `ts` of `tier`, if it exists.
    pub(super) fn part(&self, tier: Tier, ts: i64) -> Option<Keyspace> {
        Self::find_part(&self.parts_read(), tier, ts)
    }

    /// The partition keyspace holding `ts` of `tier`, created when missing.
    /// A new partition spans the configured length, trimmed so it never
    /// overlaps partitions made with another span.
    pub(super) fn part_or_create(&self, tier: Tier, ts: i64) -> Result<Keyspace, Error> {
        if let Some(ks) = self.part(tier, ts) {
            return Ok(ks);
        }
        let mut parts = self
            .parts
            .write()
            .expect("partition map lock is never held across a panic");
        if let Some(ks) = Self::find_part(&parts, tier, ts) {
            return Ok(ks);
        }
        let span = self.config.partition_ms[tier.code() as usize];
        let mut start = floor_to(ts, span);
        let mut end = start + span;
        if let Some((_, (prev_end, _))) = parts.range((tier, i64::MIN)..=(tier, ts)).next_back() {
            start = start.max(*prev_end);
        }
        if let Some(((_, next_start), _)) = parts.range((tier, ts)..=(tier, i64::MAX)).next() {
            end = end.min(*next_start);
        }
        let ks = self
            .db
            .keyspace(
                &tier.partition_name(start, end),
                KeyspaceCreateOptions::default,
            )
            .map_err(Error::fjall("create partition"))?;
        parts.insert((tier, start), (end, ks.clone()));
        Ok(ks)
    }
}
