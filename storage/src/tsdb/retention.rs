//! TTL eviction: whole partition keyspaces leave when their newest possible
//! sample is past the tier's retention (`db.delete_keyspace`, no tombstones),
//! and deleted agents' head rows and dictionary entries are purged.

use crate::error::Error;

use super::series::{deleted_key, meta};
use super::tier::Tier;
use super::{Engine, MaintenanceReport};

impl Engine {
    pub(crate) fn apply_retention(
        &self,
        now: i64,
        report: &mut MaintenanceReport,
    ) -> Result<(), Error> {
        let expired: Vec<(Tier, i64)> = self
            .parts_read()
            .iter()
            .filter(|((tier, _), (end, _))| *end <= now - self.config.retention_ms(*tier))
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let ks = self
                .parts
                .write()
                .expect("partition map lock is never held across a panic")
                .remove(&id);
            if let Some((_, ks)) = ks {
                self.db
                    .delete_keyspace(ks)
                    .map_err(Error::fjall("drop expired partition"))?;
                report.dropped_partitions += 1;
            }
        }
        self.evict_quiet_series(now, report);
        self.purge_deleted(now, report)
    }

    /// Remove what a deleted agent left outside the partitions: head rows,
    /// dictionary, watermarks, dirty marks. Its deletion mark stays until
    /// every partition that may hold its blocks has expired.
    fn purge_deleted(&self, now: i64, report: &mut MaintenanceReport) -> Result<(), Error> {
        let longest = Tier::ALL
            .iter()
            .map(|t| self.config.retention_ms(*t) + self.config.partition_ms[t.code() as usize])
            .max()
            .unwrap_or(0);
        for agent in self.all_agents() {
            let mut st = agent.lock();
            let Some(deleted_at) = st.deleted else {
                continue;
            };
            let mut batch = self.db.batch();
            let mut n = 0usize;
            for item in self.head.prefix(agent.id.to_be_bytes()) {
                batch.remove(&self.head, item.key().map_err(Error::fjall("scan head"))?);
                n += 1;
            }
            for kind in [
                meta::SERIES,
                meta::WATERMARK,
                meta::DIRTY,
                meta::HEAD_WINDOW,
            ] {
                let mut prefix = vec![kind];
                prefix.extend_from_slice(&agent.id.to_be_bytes());
                for item in self.meta.prefix(&prefix) {
                    batch.remove(&self.meta, item.key().map_err(Error::fjall("scan meta"))?);
                    n += 1;
                }
            }
            let forget = now - deleted_at > longest;
            if forget {
                batch.remove(&self.meta, deleted_key(agent.id));
            }
            if n == 0 && !forget {
                continue;
            }
            batch
                .commit()
                .map_err(Error::fjall("purge deleted agent"))?;
            let deleted = st.deleted;
            *st = super::AgentState::default();
            st.deleted = deleted;
            report.purged_agents += 1;
            if forget {
                drop(st);
                self.agents
                    .write()
                    .expect("agents map lock is never held across a panic")
                    .remove(&agent.id);
            }
        }
        Ok(())
    }
}
