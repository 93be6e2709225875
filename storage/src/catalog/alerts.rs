//! Alert history: every firing and resolution, per user, with the delivery
//! outcome of each channel.
//!
//! Keyed by (owner, event id) so one user's history is one contiguous range
//! and its oldest events come first: trimming to the newest N is a short scan
//! from the start of the range. A per-owner counter keeps the size so an
//! insert does not count the whole range.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::model::{
    AlertEvent, AlertMetric, AlertState, Channel, Comparison, Delivery, DeliveryStatus,
};

use super::error::store;
use super::{ALERT_COUNTS, ALERTS, Catalog, CatalogError, codec, next_id};

/// One channel's delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub channel: Channel,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub error: Option<String>,
}

/// An alert event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: u64,
    pub rule_id: u64,
    pub rule_name: Option<String>,
    pub agent_id: u64,
    pub agent_name: String,
    pub metric: AlertMetric,
    pub label: Option<String>,
    pub state: AlertState,
    pub value: f64,
    pub threshold: f64,
    pub comparison: Option<Comparison>,
    pub ts_ms: i64,
    pub deliveries: Vec<DeliveryRecord>,
}

impl From<DeliveryRecord> for Delivery {
    fn from(d: DeliveryRecord) -> Self {
        Delivery {
            channel: d.channel,
            status: d.status,
            attempts: d.attempts,
            error: d.error,
            channel_id: None,
            channel_name: None,
        }
    }
}

impl From<Delivery> for DeliveryRecord {
    fn from(d: Delivery) -> Self {
        DeliveryRecord {
            channel: d.channel,
            status: d.status,
            attempts: d.attempts,
            error: d.error,
        }
    }
}

impl From<AlertRecord> for AlertEvent {
    fn from(a: AlertRecord) -> Self {
        AlertEvent {
            id: a.id,
            rule_id: a.rule_id,
            rule_name: a.rule_name,
            agent_id: a.agent_id,
            agent_name: a.agent_name,
            metric: a.metric,
            label: a.label,
            state: a.state,
            value: a.value,
            threshold: a.threshold,
            comparison: a.comparison,
            ts_ms: a.ts_ms,
            deliveries: a.deliveries.into_iter().map(Delivery::from).collect(),
        }
    }
}

fn what(owner_id: u64, id: u64) -> String {
    format!("alert {id} of user {owner_id}")
}

/// Appends `event` (its id is assigned) to `owner_id`'s history inside `txn`
/// and drops that owner's oldest events beyond `keep`.
pub(super) fn insert_alert(
    txn: &WriteTransaction,
    owner_id: u64,
    event: AlertRecord,
    keep: u64,
) -> Result<AlertRecord, CatalogError> {
    let id = next_id(txn, "alert")?;
    let event = AlertRecord { id, ..event };
    let mut alerts = txn.open_table(ALERTS).map_err(store("open alerts"))?;
    alerts
        .insert(
            (owner_id, id),
            codec::encode(&what(owner_id, id), &event)?.as_slice(),
        )
        .map_err(store("write alert"))?;
    let mut counts = txn
        .open_table(ALERT_COUNTS)
        .map_err(store("open alert counts"))?;
    let mut count = counts
        .get(owner_id)
        .map_err(store("read alert count"))?
        .map_or(0, |v| v.value())
        + 1;
    if count > keep {
        let excess = count - keep;
        let mut oldest = Vec::new();
        for entry in alerts
            .range((owner_id, 0)..=(owner_id, u64::MAX))
            .map_err(store("scan alerts"))?
            .take(usize::try_from(excess).unwrap_or(usize::MAX))
        {
            let (key, _) = entry.map_err(store("scan alerts"))?;
            oldest.push(key.value());
        }
        for key in oldest {
            alerts.remove(key).map_err(store("trim alerts"))?;
            count -= 1;
        }
    }
    counts
        .insert(owner_id, count)
        .map_err(store("write alert count"))?;
    Ok(event)
}

impl Catalog {
    /// The history of `owner_id`, oldest first. Filtering, sorting and
    /// paging are the caller's (the history is bounded per user).
    pub fn alerts_of(&self, owner_id: u64) -> Result<Vec<AlertRecord>, CatalogError> {
        let txn = self.read()?;
        let alerts = txn.open_table(ALERTS).map_err(store("open alerts"))?;
        let mut out = Vec::new();
        for entry in alerts
            .range((owner_id, 0)..=(owner_id, u64::MAX))
            .map_err(store("scan alerts"))?
        {
            let (key, bytes) = entry.map_err(store("scan alerts"))?;
            let (owner, id) = key.value();
            out.push(codec::decode(&what(owner, id), bytes.value())?);
        }
        Ok(out)
    }

    /// Replaces the outcome of `delivery.channel` on event `id` of
    /// `owner_id` (read and written in one transaction, so concurrent
    /// channels do not overwrite each other). False when the event is gone
    /// (cleared or trimmed meanwhile).
    pub fn set_alert_delivery(
        &self,
        owner_id: u64,
        id: u64,
        delivery: DeliveryRecord,
    ) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        {
            let mut alerts = txn.open_table(ALERTS).map_err(store("open alerts"))?;
            let mut event: AlertRecord =
                match alerts.get((owner_id, id)).map_err(store("read alert"))? {
                    Some(bytes) => codec::decode(&what(owner_id, id), bytes.value())?,
                    None => return Ok(false),
                };
            match event
                .deliveries
                .iter_mut()
                .find(|d| d.channel == delivery.channel)
            {
                Some(slot) => *slot = delivery,
                None => event.deliveries.push(delivery),
            }
            alerts
                .insert(
                    (owner_id, id),
                    codec::encode(&what(owner_id, id), &event)?.as_slice(),
                )
                .map_err(store("write alert"))?;
        }
        txn.commit().map_err(store("commit alert"))?;
        Ok(true)
    }

    /// Marks every delivery still `pending` as failed with `reason`: run at
    /// start, since deliveries in flight when the server stopped are gone.
    /// Returns how many events changed.
    pub fn fail_pending_deliveries(&self, reason: &str) -> Result<u64, CatalogError> {
        let txn = self.write()?;
        let changed = {
            let mut alerts = txn.open_table(ALERTS).map_err(store("open alerts"))?;
            let mut changed = Vec::new();
            for entry in alerts.iter().map_err(store("scan alerts"))? {
                let (key, bytes) = entry.map_err(store("scan alerts"))?;
                let (owner, id) = key.value();
                let mut event: AlertRecord = codec::decode(&what(owner, id), bytes.value())?;
                let mut any = false;
                for d in &mut event.deliveries {
                    if d.status == DeliveryStatus::Pending {
                        d.status = DeliveryStatus::Failed;
                        d.error = Some(reason.to_string());
                        any = true;
                    }
                }
                if any {
                    changed.push(((owner, id), event));
                }
            }
            for ((owner, id), event) in &changed {
                alerts
                    .insert(
                        (*owner, *id),
                        codec::encode(&what(*owner, *id), event)?.as_slice(),
                    )
                    .map_err(store("write alert"))?;
            }
            changed.len() as u64
        };
        txn.commit().map_err(store("commit alerts"))?;
        Ok(changed)
    }

    /// Deletes the events of `owner_id` that `matches`; returns how many.
    pub fn delete_alerts_where(
        &self,
        owner_id: u64,
        matches: impl Fn(&AlertRecord) -> bool,
    ) -> Result<u64, CatalogError> {
        let txn = self.write()?;
        let deleted = {
            let mut alerts = txn.open_table(ALERTS).map_err(store("open alerts"))?;
            let mut doomed = Vec::new();
            let mut total = 0u64;
            for entry in alerts
                .range((owner_id, 0)..=(owner_id, u64::MAX))
                .map_err(store("scan alerts"))?
            {
                let (key, bytes) = entry.map_err(store("scan alerts"))?;
                let (owner, id) = key.value();
                total += 1;
                let event: AlertRecord = codec::decode(&what(owner, id), bytes.value())?;
                if matches(&event) {
                    doomed.push(id);
                }
            }
            for &id in &doomed {
                alerts
                    .remove((owner_id, id))
                    .map_err(store("delete alert"))?;
            }
            let mut counts = txn
                .open_table(ALERT_COUNTS)
                .map_err(store("open alert counts"))?;
            let left = total - doomed.len() as u64;
            if left == 0 {
                counts
                    .remove(owner_id)
                    .map_err(store("write alert count"))?;
            } else {
                counts
                    .insert(owner_id, left)
                    .map_err(store("write alert count"))?;
            }
            doomed.len() as u64
        };
        txn.commit().map_err(store("commit delete alerts"))?;
        Ok(deleted)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn event(agent_id: u64, ts_ms: i64) -> AlertRecord {
        AlertRecord {
            id: 0,
            rule_id: 1,
            rule_name: None,
            agent_id,
            agent_name: "nas".into(),
            metric: AlertMetric::CpuPct,
            label: None,
            state: AlertState::Firing,
            value: 95.0,
            threshold: 90.0,
            comparison: Some(Comparison::Gt),
            ts_ms,
            deliveries: vec![],
        }
    }

    #[test]
    fn history_keeps_the_newest_n_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open_in(dir.path()).unwrap();
        for i in 0..7 {
            c.record_transition(1, "", None, Some((10, event(1, i))), 5)
                .unwrap();
            c.record_transition(2, "", None, Some((20, event(2, i))), 5)
                .unwrap();
        }
        let mine = c.alerts_of(10).unwrap();
        assert_eq!(
            mine.iter().map(|e| e.ts_ms).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6]
        );
        assert!(mine.iter().all(|e| e.agent_id == 1));
        assert_eq!(c.alerts_of(20).unwrap().len(), 5);
        assert_eq!(c.delete_alerts_where(10, |e| e.ts_ms < 4).unwrap(), 2);
        assert_eq!(c.alerts_of(10).unwrap().len(), 3);
        // The counter followed the deletion: two more fit before trimming.
        for i in 10..12 {
            c.record_transition(1, "", None, Some((10, event(1, i))), 5)
                .unwrap();
        }
        assert_eq!(c.alerts_of(10).unwrap().len(), 5);
        assert_eq!(c.alerts_of(10).unwrap()[0].ts_ms, 4);
    }

    #[test]
    fn pending_deliveries_fail_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open_in(dir.path()).unwrap();
        let mut e = event(1, 1);
        e.deliveries = vec![
            DeliveryRecord {
                channel: Channel::Telegram,
                status: DeliveryStatus::Pending,
                attempts: 0,
                error: None,
            },
            DeliveryRecord {
                channel: Channel::Webhook,
                status: DeliveryStatus::Sent,
                attempts: 1,
                error: None,
            },
        ];
        c.record_transition(1, "", None, Some((10, e)), 5).unwrap();
        c.record_transition(1, "", None, Some((10, event(1, 2))), 5)
            .unwrap();
        assert_eq!(c.fail_pending_deliveries("restarted").unwrap(), 1);
        let stored = &c.alerts_of(10).unwrap()[0];
        assert_eq!(stored.deliveries[0].status, DeliveryStatus::Failed);
        assert_eq!(stored.deliveries[0].error.as_deref(), Some("restarted"));
        assert_eq!(stored.deliveries[1].status, DeliveryStatus::Sent);
        assert_eq!(c.fail_pending_deliveries("restarted").unwrap(), 0);
    }
}
