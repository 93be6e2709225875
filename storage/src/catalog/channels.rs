//! Notification channels and routing: each user's named channels (any kind,
//! secrets stored as given: the server needs them to send), how each
//! channel's deliveries have gone, the channels and urgency of each rule
//! (a side table keyed by rule id, so the rule record is unchanged), each
//! user's quiet hours and mute, the alerts held for a quiet-hours summary,
//! which channel each delivery of an event went to, and the server-wide
//! Telegram bot token an admin set in the dashboard.
//!
//! Rule and channel ids are never reused, so an entry left behind by a
//! deleted rule or channel can never be read as someone else's.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::model::{Channel, FAILING_AFTER};

use super::alerts::{AlertRecord, DeliveryRecord};
use super::error::store;
use super::recipients::RecipientRecord;
use super::{ALERTS, Catalog, CatalogError, RECIPIENTS, SETTINGS, codec, next_id};

/// channel id → [`ChannelRecord`].
pub(super) const CHANNELS: TableDefinition<u64, &[u8]> = TableDefinition::new("channels");
/// channel id → [`ChannelHealthRecord`]: written by deliveries, so a
/// delivery never rewrites the channel's settings.
pub(super) const CHANNEL_HEALTH: TableDefinition<u64, &[u8]> =
    TableDefinition::new("channel_health");
/// rule id → [`RuleNotifyRecord`].
pub(super) const RULE_NOTIFY: TableDefinition<u64, &[u8]> = TableDefinition::new("rule_notify");
/// owner id → [`NotifyPrefsRecord`].
pub(super) const NOTIFY_PREFS: TableDefinition<u64, &[u8]> = TableDefinition::new("notify_prefs");
/// (owner id, event id) → the channel ids (bincode `Vec<u64>`) an event held
/// during quiet hours will be summarised to.
pub(super) const HELD_ALERTS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("held_alerts");
/// (owner id, event id) → [`DeliveryTargets`]: the channel of each entry of
/// the event's deliveries, in the same order.
pub(super) const ALERT_TARGETS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("alert_targets");

const TELEGRAM_TOKEN_KEY: &str = "telegram_bot_token";

/// One notification channel as stored. `fields` holds every field of the
/// kind that is set, secrets included (validated by the server against
/// [`crate::model::fields_of`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub id: u64,
    pub owner_id: u64,
    pub name: String,
    pub kind: Channel,
    pub default: bool,
    pub fields: BTreeMap<String, String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl ChannelRecord {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// How a channel's deliveries have gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelHealthRecord {
    pub last_ok_ms: Option<i64>,
    pub last_error_ms: Option<i64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
}

impl ChannelHealthRecord {
    pub fn failing(&self) -> bool {
        self.consecutive_failures >= FAILING_AFTER
    }
}

/// The channels and urgency of one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleNotifyRecord {
    /// Empty: the owner's default channels.
    pub channels: Vec<u64>,
    pub urgent: bool,
}

/// A user's quiet hours and mute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyPrefsRecord {
    /// (start minute of the day, end minute of the day, IANA time zone).
    pub quiet: Option<(u16, u16, String)>,
    pub mute_until_ms: Option<i64>,
}

/// The channel of each delivery of an event: (id, name when planned).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTargets {
    pub channels: Vec<(u64, String)>,
}

fn what(id: u64) -> String {
    format!("channel {id}")
}

fn decode_channel(id: u64, bytes: &[u8]) -> Result<ChannelRecord, CatalogError> {
    codec::decode(&what(id), bytes)
}

fn put<K: redb::Key + 'static>(
    txn: &WriteTransaction,
    table: TableDefinition<K, &[u8]>,
    key: K::SelfType<'_>,
    what: &str,
    value: &impl Serialize,
) -> Result<(), CatalogError> {
    let mut t = txn.open_table(table).map_err(store("open table"))?;
    t.insert(key, codec::encode(what, value)?.as_slice())
        .map_err(store("write record"))?;
    Ok(())
}

impl Catalog {
    /// Every channel of `owner_id`, by id.
    pub fn channels_of(&self, owner_id: u64) -> Result<Vec<ChannelRecord>, CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(CHANNELS).map_err(store("open channels"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(store("scan channels"))? {
            let (id, bytes) = entry.map_err(store("scan channels"))?;
            let c = decode_channel(id.value(), bytes.value())?;
            if c.owner_id == owner_id {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Channel `id` if it belongs to `owner_id`.
    pub fn channel(&self, owner_id: u64, id: u64) -> Result<Option<ChannelRecord>, CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(CHANNELS).map_err(store("open channels"))?;
        let Some(bytes) = table.get(id).map_err(store("read channel"))? else {
            return Ok(None);
        };
        let c = decode_channel(id, bytes.value())?;
        Ok((c.owner_id == owner_id).then_some(c))
    }

    /// Stores a new channel (its `id` is assigned) unless its owner already
    /// has `max` channels; `None` then.
    pub fn create_channel(
        &self,
        channel: &ChannelRecord,
        max: usize,
    ) -> Result<Option<ChannelRecord>, CatalogError> {
        let txn = self.write()?;
        let count = {
            let table = txn.open_table(CHANNELS).map_err(store("open channels"))?;
            let mut n = 0;
            for entry in table.iter().map_err(store("scan channels"))? {
                let (id, bytes) = entry.map_err(store("scan channels"))?;
                n += usize::from(
                    decode_channel(id.value(), bytes.value())?.owner_id == channel.owner_id,
                );
            }
            n
        };
        if count >= max {
            return Ok(None);
        }
        let mut c = channel.clone();
        c.id = next_id(&txn, "channel")?;
        put(&txn, CHANNELS, c.id, &what(c.id), &c)?;
        txn.commit().map_err(store("commit channel"))?;
        Ok(Some(c))
    }

    /// Replaces channel `channel.id` of `channel.owner_id`; false when
    /// missing or someone else's.
    pub fn update_channel(&self, channel: &ChannelRecord) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        {
            let table = txn.open_table(CHANNELS).map_err(store("open channels"))?;
            let Some(bytes) = table.get(channel.id).map_err(store("read channel"))? else {
                return Ok(false);
            };
            if decode_channel(channel.id, bytes.value())?.owner_id != channel.owner_id {
                return Ok(false);
            }
        }
        put(&txn, CHANNELS, channel.id, &what(channel.id), channel)?;
        txn.commit().map_err(store("commit channel"))?;
        Ok(true)
    }

    /// Deletes channel `id` of `owner_id` and its health; rules naming it
    /// keep the id and fall back to the defaults when none of theirs is left.
    pub fn delete_channel(&self, owner_id: u64, id: u64) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        {
            let mut table = txn.open_table(CHANNELS).map_err(store("open channels"))?;
            let owned = match table.get(id).map_err(store("read channel"))? {
                Some(bytes) => decode_channel(id, bytes.value())?.owner_id == owner_id,
                None => false,
            };
            if !owned {
                return Ok(false);
            }
            table.remove(id).map_err(store("delete channel"))?;
            let mut health = txn
                .open_table(CHANNEL_HEALTH)
                .map_err(store("open channel health"))?;
            health.remove(id).map_err(store("delete channel health"))?;
        }
        txn.commit().map_err(store("commit channel"))?;
        Ok(true)
    }

    pub fn channel_health(&self, id: u64) -> Result<ChannelHealthRecord, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(CHANNEL_HEALTH)
            .map_err(store("open channel health"))?;
        match table.get(id).map_err(store("read channel health"))? {
            Some(bytes) => codec::decode(&format!("health of channel {id}"), bytes.value()),
            None => Ok(ChannelHealthRecord::default()),
        }
    }

    /// Records the outcome of a delivery to channel `id` at `now_ms`: a
    /// success resets the failure count, a failure (`error`) adds one.
    /// Nothing is written for a channel deleted meanwhile.
    pub fn record_channel_outcome(
        &self,
        id: u64,
        now_ms: i64,
        error: Option<&str>,
    ) -> Result<(), CatalogError> {
        let txn = self.write()?;
        {
            let channels = txn.open_table(CHANNELS).map_err(store("open channels"))?;
            if channels.get(id).map_err(store("read channel"))?.is_none() {
                return Ok(());
            }
            let mut table = txn
                .open_table(CHANNEL_HEALTH)
                .map_err(store("open channel health"))?;
            let what = format!("health of channel {id}");
            let mut h: ChannelHealthRecord = match table.get(id).map_err(store("read health"))? {
                Some(bytes) => codec::decode(&what, bytes.value())?,
                None => ChannelHealthRecord::default(),
            };
            match error {
                None => {
                    h.last_ok_ms = Some(now_ms);
                    h.consecutive_failures = 0;
                }
                Some(e) => {
                    h.last_error_ms = Some(now_ms);
                    h.last_error = Some(e.to_string());
                    h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                }
            }
            table
                .insert(id, codec::encode(&what, &h)?.as_slice())
                .map_err(store("write health"))?;
        }
        txn.commit().map_err(store("commit channel health"))
    }

    pub fn rule_notify(&self, rule_id: u64) -> Result<RuleNotifyRecord, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(RULE_NOTIFY)
            .map_err(store("open rule notify"))?;
        match table.get(rule_id).map_err(store("read rule notify"))? {
            Some(bytes) => codec::decode(&format!("channels of rule {rule_id}"), bytes.value()),
            None => Ok(RuleNotifyRecord::default()),
        }
    }

    pub fn set_rule_notify(
        &self,
        rule_id: u64,
        notify: &RuleNotifyRecord,
    ) -> Result<(), CatalogError> {
        let txn = self.write()?;
        put(
            &txn,
            RULE_NOTIFY,
            rule_id,
            &format!("channels of rule {rule_id}"),
            notify,
        )?;
        txn.commit().map_err(store("commit rule notify"))
    }

    pub fn notify_prefs(&self, owner_id: u64) -> Result<NotifyPrefsRecord, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(NOTIFY_PREFS)
            .map_err(store("open notify prefs"))?;
        match table.get(owner_id).map_err(store("read notify prefs"))? {
            Some(bytes) => codec::decode(
                &format!("notify settings of user {owner_id}"),
                bytes.value(),
            ),
            None => Ok(NotifyPrefsRecord::default()),
        }
    }

    pub fn set_notify_prefs(
        &self,
        owner_id: u64,
        prefs: &NotifyPrefsRecord,
    ) -> Result<(), CatalogError> {
        let txn = self.write()?;
        put(
            &txn,
            NOTIFY_PREFS,
            owner_id,
            &format!("notify settings of user {owner_id}"),
            prefs,
        )?;
        txn.commit().map_err(store("commit notify prefs"))
    }

    /// Every user with quiet-hours settings, for the end-of-quiet check.
    pub fn all_notify_prefs(&self) -> Result<Vec<(u64, NotifyPrefsRecord)>, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(NOTIFY_PREFS)
            .map_err(store("open notify prefs"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(store("scan notify prefs"))? {
            let (k, bytes) = entry.map_err(store("scan notify prefs"))?;
            let owner = k.value();
            out.push((
                owner,
                codec::decode(&format!("notify settings of user {owner}"), bytes.value())?,
            ));
        }
        Ok(out)
    }

    /// Holds event `event_id` of `owner_id` for the quiet-hours summary to
    /// `channels`.
    pub fn hold_alert(
        &self,
        owner_id: u64,
        event_id: u64,
        channels: &[u64],
    ) -> Result<(), CatalogError> {
        let txn = self.write()?;
        put(
            &txn,
            HELD_ALERTS,
            (owner_id, event_id),
            "held alert",
            &channels.to_vec(),
        )?;
        txn.commit().map_err(store("commit held alert"))
    }

    /// Takes (removes and returns) the alerts of `owner_id` held for the
    /// summary, oldest first, with their channels.
    pub fn take_held_alerts(&self, owner_id: u64) -> Result<Vec<(u64, Vec<u64>)>, CatalogError> {
        let txn = self.write()?;
        let held = {
            let mut table = txn
                .open_table(HELD_ALERTS)
                .map_err(store("open held alerts"))?;
            let mut held = Vec::new();
            for entry in table
                .range((owner_id, 0)..=(owner_id, u64::MAX))
                .map_err(store("scan held alerts"))?
            {
                let (k, bytes) = entry.map_err(store("scan held alerts"))?;
                let channels: Vec<u64> = codec::decode("held alert", bytes.value())?;
                held.push((k.value().1, channels));
            }
            for (id, _) in &held {
                table
                    .remove((owner_id, *id))
                    .map_err(store("delete held alert"))?;
            }
            held
        };
        txn.commit().map_err(store("commit held alerts"))?;
        Ok(held)
    }

    /// Records the channels of event `event_id` of `owner_id`, and drops
    /// those of the owner's events the history no longer holds (older than
    /// its oldest: the history is trimmed from the oldest end), so the table
    /// stays as long as the history.
    pub fn set_delivery_targets(
        &self,
        owner_id: u64,
        event_id: u64,
        targets: &DeliveryTargets,
    ) -> Result<(), CatalogError> {
        let txn = self.write()?;
        {
            let alerts = txn.open_table(ALERTS).map_err(store("open alerts"))?;
            let oldest = alerts
                .range((owner_id, 0)..=(owner_id, u64::MAX))
                .map_err(store("scan alerts"))?
                .next()
                .transpose()
                .map_err(store("scan alerts"))?
                .map_or(event_id, |(k, _)| k.value().1);
            let mut table = txn
                .open_table(ALERT_TARGETS)
                .map_err(store("open delivery targets"))?;
            let stale: Vec<u64> = table
                .range((owner_id, 0)..(owner_id, oldest))
                .map_err(store("scan delivery targets"))?
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()
                .map_err(store("scan delivery targets"))?;
            for id in stale {
                table
                    .remove((owner_id, id))
                    .map_err(store("delete delivery targets"))?;
            }
        }
        put(
            &txn,
            ALERT_TARGETS,
            (owner_id, event_id),
            "delivery targets",
            targets,
        )?;
        txn.commit().map_err(store("commit delivery targets"))
    }

    /// The targets of each of `event_ids` of `owner_id` that has any.
    pub fn delivery_targets(
        &self,
        owner_id: u64,
        event_ids: &[u64],
    ) -> Result<BTreeMap<u64, DeliveryTargets>, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(ALERT_TARGETS)
            .map_err(store("open delivery targets"))?;
        let mut out = BTreeMap::new();
        for id in event_ids {
            if let Some(bytes) = table
                .get((owner_id, *id))
                .map_err(store("read delivery targets"))?
            {
                out.insert(*id, codec::decode("delivery targets", bytes.value())?);
            }
        }
        Ok(out)
    }

    /// Replaces delivery `index` of event `id` of `owner_id` (an event with
    /// two channels of one kind has two entries of that kind, so the slot is
    /// found by position). False when the event or the slot is gone.
    pub fn set_alert_delivery_at(
        &self,
        owner_id: u64,
        id: u64,
        index: usize,
        delivery: DeliveryRecord,
    ) -> Result<bool, CatalogError> {
        let what = format!("alert {id} of user {owner_id}");
        let txn = self.write()?;
        {
            let mut alerts = txn.open_table(ALERTS).map_err(store("open alerts"))?;
            let mut event: AlertRecord =
                match alerts.get((owner_id, id)).map_err(store("read alert"))? {
                    Some(bytes) => codec::decode(&what, bytes.value())?,
                    None => return Ok(false),
                };
            let Some(slot) = event.deliveries.get_mut(index) else {
                return Ok(false);
            };
            *slot = delivery;
            alerts
                .insert((owner_id, id), codec::encode(&what, &event)?.as_slice())
                .map_err(store("write alert"))?;
        }
        txn.commit().map_err(store("commit alert"))?;
        Ok(true)
    }

    /// The Telegram bot token an admin set in the dashboard.
    pub fn telegram_bot_token(&self) -> Result<Option<String>, CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(SETTINGS).map_err(store("open settings"))?;
        match table
            .get(TELEGRAM_TOKEN_KEY)
            .map_err(store("read settings"))?
        {
            Some(bytes) => codec::decode("telegram bot token", bytes.value()),
            None => Ok(None),
        }
    }

    /// Sets (or with `None` clears) the dashboard's Telegram bot token.
    pub fn set_telegram_bot_token(&self, token: Option<&str>) -> Result<(), CatalogError> {
        let txn = self.write()?;
        {
            let mut table = txn.open_table(SETTINGS).map_err(store("open settings"))?;
            match token {
                Some(t) => {
                    table
                        .insert(
                            TELEGRAM_TOKEN_KEY,
                            codec::encode("telegram bot token", &Some(t.to_string()))?.as_slice(),
                        )
                        .map_err(store("write settings"))?;
                }
                None => {
                    table
                        .remove(TELEGRAM_TOKEN_KEY)
                        .map_err(store("write settings"))?;
                }
            }
        }
        txn.commit().map_err(store("commit settings"))
    }

    /// The data-format 3 → 4 step: every user's recipient settings (a
    /// Telegram chat id, a webhook URL and secret) become default channels
    /// named "Telegram" and "Webhook", and the recipient record goes, all in
    /// one transaction (so running it again finds nothing to do). Returns
    /// the number of channels made.
    pub fn migrate_recipients_to_channels(&self, now_ms: i64) -> Result<u64, CatalogError> {
        let txn = self.write()?;
        let mut made = 0;
        {
            let mut recipients = txn
                .open_table(RECIPIENTS)
                .map_err(store("open recipients"))?;
            let mut old = Vec::new();
            for entry in recipients.iter().map_err(store("scan recipients"))? {
                let (owner, bytes) = entry.map_err(store("scan recipients"))?;
                let owner = owner.value();
                let r: RecipientRecord =
                    codec::decode(&format!("recipient of user {owner}"), bytes.value())?;
                old.push((owner, r));
            }
            for (owner, r) in &old {
                let mut made_channel = |name: &str, kind: Channel, fields: Vec<(&str, &str)>| {
                    let id = next_id(&txn, "channel")?;
                    let c = ChannelRecord {
                        id,
                        owner_id: *owner,
                        name: name.to_string(),
                        kind,
                        default: true,
                        fields: fields
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        created_ms: now_ms,
                        updated_ms: now_ms,
                    };
                    made += 1;
                    put(&txn, CHANNELS, id, &what(id), &c)
                };
                if let Some(chat) = &r.telegram_chat_id {
                    made_channel("Telegram", Channel::Telegram, vec![("chat_id", chat)])?;
                }
                if let Some(url) = &r.webhook_url {
                    let mut fields = vec![("url", url.as_str())];
                    if let Some(secret) = &r.webhook_secret {
                        fields.push(("secret", secret));
                    }
                    made_channel("Webhook", Channel::Webhook, fields)?;
                }
                recipients
                    .remove(*owner)
                    .map_err(store("delete recipient"))?;
            }
        }
        txn.commit().map_err(store("commit channel migration"))?;
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertMetric, AlertState, DeliveryStatus};

    fn event(ts: i64) -> AlertRecord {
        AlertRecord {
            id: 0,
            rule_id: 1,
            rule_name: None,
            agent_id: 1,
            agent_name: "nas".into(),
            metric: AlertMetric::CpuPct,
            label: None,
            state: AlertState::Firing,
            value: 95.0,
            threshold: 90.0,
            comparison: None,
            ts_ms: ts,
            deliveries: vec![DeliveryRecord {
                channel: Channel::Ntfy,
                status: DeliveryStatus::Pending,
                attempts: 0,
                error: None,
            }],
        }
    }

    #[test]
    fn delivery_targets_are_kept_only_as_long_as_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open_in(dir.path()).unwrap();
        let targets = DeliveryTargets {
            channels: vec![(5, "ntfy".into())],
        };
        let mut ids = Vec::new();
        for ts in 0..4 {
            // The history keeps the newest two events of user 7.
            let stored = catalog
                .record_transition(1, "", None, Some((7, event(ts))), 2)
                .unwrap()
                .unwrap();
            catalog
                .set_delivery_targets(7, stored.id, &targets)
                .unwrap();
            ids.push(stored.id);
        }
        let kept = catalog.delivery_targets(7, &ids).unwrap();
        assert_eq!(kept.keys().copied().collect::<Vec<_>>(), ids[2..]);
        // The slot of a delivery is its position.
        let sent = DeliveryRecord {
            channel: Channel::Ntfy,
            status: DeliveryStatus::Sent,
            attempts: 1,
            error: None,
        };
        assert!(
            catalog
                .set_alert_delivery_at(7, ids[3], 0, sent.clone())
                .unwrap()
        );
        assert!(
            !catalog
                .set_alert_delivery_at(7, ids[3], 1, sent.clone())
                .unwrap()
        );
        assert!(!catalog.set_alert_delivery_at(7, ids[0], 0, sent).unwrap());
    }

    #[test]
    fn channels_belong_to_their_owner_and_health_counts_failures_in_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open_in(dir.path()).unwrap();
        let c = ChannelRecord {
            id: 0,
            owner_id: 7,
            name: "n".into(),
            kind: Channel::Ntfy,
            default: true,
            fields: BTreeMap::new(),
            created_ms: 0,
            updated_ms: 0,
        };
        let a = catalog.create_channel(&c, 2).unwrap().unwrap();
        catalog.create_channel(&c, 2).unwrap().unwrap();
        assert!(catalog.create_channel(&c, 2).unwrap().is_none(), "limit");
        assert!(catalog.channel(8, a.id).unwrap().is_none());
        assert!(!catalog.delete_channel(8, a.id).unwrap());
        assert!(
            !catalog
                .update_channel(&ChannelRecord {
                    owner_id: 8,
                    ..a.clone()
                })
                .unwrap()
        );
        for _ in 0..3 {
            catalog
                .record_channel_outcome(a.id, 10, Some("HTTP 500"))
                .unwrap();
        }
        assert!(catalog.channel_health(a.id).unwrap().failing());
        catalog.record_channel_outcome(a.id, 20, None).unwrap();
        let h = catalog.channel_health(a.id).unwrap();
        assert!(!h.failing());
        assert_eq!(
            (h.last_ok_ms, h.last_error.as_deref()),
            (Some(20), Some("HTTP 500"))
        );
        assert!(catalog.delete_channel(7, a.id).unwrap());
        // A delivery finishing after the delete records nothing.
        catalog.record_channel_outcome(a.id, 30, None).unwrap();
        assert_eq!(catalog.channel_health(a.id).unwrap(), Default::default());
    }
}
