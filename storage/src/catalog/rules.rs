//! Alert rules and their per-label firing state.
//!
//! A rule belongs to one user and one of that user's agents. Its state is kept
//! per (rule, label): the label is the mount / interface / sensor the value
//! came from (`""` for whole-machine metrics and `offline`). Only firing
//! states are stored; a missing entry means "ok". A state change and the
//! alert event it produces are written in one transaction
//! ([`Catalog::record_transition`]), so after a crash or restart a rule that
//! was firing is still firing and its "firing" event exists exactly once.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::model::{AlertMetric, Comparison};

use super::alerts::{AlertRecord, insert_alert};
use super::error::store;
use super::{Catalog, CatalogError, RULE_STATES, RULES, codec, next_id};

/// An alert rule as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleRecord {
    pub id: u64,
    pub owner_id: u64,
    pub agent_id: u64,
    pub metric: AlertMetric,
    /// Mount / interface / sensor; `None`: every one separately.
    pub label: Option<String>,
    /// `None` only for `offline`.
    pub comparison: Option<Comparison>,
    /// `None` only for `offline`.
    pub threshold: Option<f64>,
    pub duration_s: Option<u32>,
    pub cooldown_s: u32,
    pub enabled: bool,
    pub name: Option<String>,
    pub description: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A (rule, label) that is firing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FiringRecord {
    /// When it started firing.
    pub since_ms: i64,
    /// When a notification was last sent (the start of the current cooldown).
    pub last_notified_ms: i64,
    /// The value that last notified.
    pub value: f64,
}

/// The state key of a rule's label; `""` stands for "no label".
pub fn label_key(label: Option<&str>) -> &str {
    label.unwrap_or("")
}

fn what(id: u64) -> String {
    format!("rule {id}")
}

fn state_what(rule_id: u64, label: &str) -> String {
    format!("state of rule {rule_id} label {label:?}")
}

impl Catalog {
    /// Stores a new rule; `rule.id` is ignored and assigned.
    pub fn create_rule(&self, rule: &RuleRecord) -> Result<RuleRecord, CatalogError> {
        let txn = self.write()?;
        let record = {
            let id = next_id(&txn, "rule")?;
            let record = RuleRecord { id, ..rule.clone() };
            let mut rules = txn.open_table(RULES).map_err(store("open rules"))?;
            rules
                .insert(id, codec::encode(&what(id), &record)?.as_slice())
                .map_err(store("write rule"))?;
            record
        };
        txn.commit().map_err(store("commit rule"))?;
        Ok(record)
    }

    /// The rule with this id, whoever owns it. Ownership is the caller's check.
    pub fn rule(&self, id: u64) -> Result<Option<RuleRecord>, CatalogError> {
        let txn = self.read()?;
        let rules = txn.open_table(RULES).map_err(store("open rules"))?;
        let Some(bytes) = rules.get(id).map_err(store("read rule"))? else {
            return Ok(None);
        };
        Ok(Some(codec::decode(&what(id), bytes.value())?))
    }

    /// Every rule, by id (the evaluator loads them once at start).
    pub fn all_rules(&self) -> Result<Vec<RuleRecord>, CatalogError> {
        self.rules_where(|_| true)
    }

    /// The rules of `owner_id`, by id.
    pub fn rules_of(&self, owner_id: u64) -> Result<Vec<RuleRecord>, CatalogError> {
        self.rules_where(|r| r.owner_id == owner_id)
    }

    fn rules_where(
        &self,
        keep: impl Fn(&RuleRecord) -> bool,
    ) -> Result<Vec<RuleRecord>, CatalogError> {
        let txn = self.read()?;
        let rules = txn.open_table(RULES).map_err(store("open rules"))?;
        let mut out = Vec::new();
        for entry in rules.iter().map_err(store("scan rules"))? {
            let (id, bytes) = entry.map_err(store("scan rules"))?;
            let record: RuleRecord = codec::decode(&what(id.value()), bytes.value())?;
            if keep(&record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Replaces rule `rule.id` (which must belong to `rule.owner_id`). When
    /// `reset_state` is set its firing states are dropped in the same
    /// transaction (the rule now watches something else). False when the rule
    /// is missing or someone else's.
    pub fn update_rule(&self, rule: &RuleRecord, reset_state: bool) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        {
            let mut rules = txn.open_table(RULES).map_err(store("open rules"))?;
            let old: RuleRecord = match rules.get(rule.id).map_err(store("read rule"))? {
                Some(bytes) => codec::decode(&what(rule.id), bytes.value())?,
                None => return Ok(false),
            };
            if old.owner_id != rule.owner_id {
                return Ok(false);
            }
            rules
                .insert(rule.id, codec::encode(&what(rule.id), rule)?.as_slice())
                .map_err(store("write rule"))?;
            if reset_state {
                clear_states(&txn, rule.id)?;
            }
        }
        txn.commit().map_err(store("commit rule"))?;
        Ok(true)
    }

    /// Deletes rule `id` of `owner_id` and its state. The alert history keeps
    /// its events. False when missing or someone else's.
    pub fn delete_rule(&self, owner_id: u64, id: u64) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        {
            let mut rules = txn.open_table(RULES).map_err(store("open rules"))?;
            let record: RuleRecord = match rules.get(id).map_err(store("read rule"))? {
                Some(bytes) => codec::decode(&what(id), bytes.value())?,
                None => return Ok(false),
            };
            if record.owner_id != owner_id {
                return Ok(false);
            }
            rules.remove(id).map_err(store("delete rule"))?;
            forget_rule(&txn, id)?;
        }
        txn.commit().map_err(store("commit delete rule"))?;
        Ok(true)
    }

    /// Deletes every rule of agent `agent_id` with its state; returns their ids.
    pub fn delete_rules_of_agent(&self, agent_id: u64) -> Result<Vec<u64>, CatalogError> {
        let txn = self.write()?;
        let mut deleted = Vec::new();
        {
            let mut rules = txn.open_table(RULES).map_err(store("open rules"))?;
            for entry in rules.iter().map_err(store("scan rules"))? {
                let (id, bytes) = entry.map_err(store("scan rules"))?;
                let record: RuleRecord = codec::decode(&what(id.value()), bytes.value())?;
                if record.agent_id == agent_id {
                    deleted.push(record.id);
                }
            }
            for &id in &deleted {
                rules.remove(id).map_err(store("delete rule"))?;
                forget_rule(&txn, id)?;
            }
        }
        txn.commit().map_err(store("commit delete rules"))?;
        Ok(deleted)
    }

    /// Every firing (rule, label) with its state.
    pub fn firing_states(&self) -> Result<Vec<(u64, String, FiringRecord)>, CatalogError> {
        let txn = self.read()?;
        let states = txn
            .open_table(RULE_STATES)
            .map_err(store("open rule states"))?;
        let mut out = Vec::new();
        for entry in states.iter().map_err(store("scan rule states"))? {
            let (key, bytes) = entry.map_err(store("scan rule states"))?;
            let (rule_id, label) = key.value();
            let state = codec::decode(&state_what(rule_id, label), bytes.value())?;
            out.push((rule_id, label.to_string(), state));
        }
        Ok(out)
    }

    /// Sets (or, with `None`, clears) the state of (`rule_id`, `label`) and,
    /// when `event` is given, appends it to its owner's history in the same
    /// transaction, keeping that owner's newest `keep_events`. Returns the
    /// stored event (with its id).
    pub fn record_transition(
        &self,
        rule_id: u64,
        label: &str,
        state: Option<FiringRecord>,
        event: Option<(u64, AlertRecord)>,
        keep_events: u64,
    ) -> Result<Option<AlertRecord>, CatalogError> {
        let txn = self.write()?;
        let stored = {
            let mut states = txn
                .open_table(RULE_STATES)
                .map_err(store("open rule states"))?;
            match state {
                Some(s) => {
                    states
                        .insert(
                            (rule_id, label),
                            codec::encode(&state_what(rule_id, label), &s)?.as_slice(),
                        )
                        .map_err(store("write rule state"))?;
                }
                None => {
                    states
                        .remove((rule_id, label))
                        .map_err(store("delete rule state"))?;
                }
            }
            match event {
                Some((owner_id, event)) => Some(insert_alert(&txn, owner_id, event, keep_events)?),
                None => None,
            }
        };
        txn.commit().map_err(store("commit rule state"))?;
        Ok(stored)
    }
}

/// Removes everything kept beside deleted rule `rule_id` inside `txn`: its
/// states and its rows in the side tables (its channels, its check, its
/// tag).
fn forget_rule(txn: &redb::WriteTransaction, rule_id: u64) -> Result<(), CatalogError> {
    clear_states(txn, rule_id)?;
    txn.open_table(super::channels::RULE_NOTIFY)
        .map_err(store("open rule notify"))?
        .remove(rule_id)
        .map_err(store("delete rule notify"))?;
    txn.open_table(super::checks::RULE_CHECKS)
        .map_err(store("open rule checks"))?
        .remove(rule_id)
        .map_err(store("delete rule check"))?;
    super::rule_targets::forget_target(txn, rule_id)?;
    Ok(())
}

/// Removes every state of `rule_id` inside `txn`.
fn clear_states(txn: &redb::WriteTransaction, rule_id: u64) -> Result<(), CatalogError> {
    let mut states = txn
        .open_table(RULE_STATES)
        .map_err(store("open rule states"))?;
    let mut keys = Vec::new();
    for entry in states
        .range((rule_id, "")..)
        .map_err(store("scan rule states"))?
    {
        let (key, _) = entry.map_err(store("scan rule states"))?;
        let (id, label) = key.value();
        if id != rule_id {
            break;
        }
        keys.push(label.to_string());
    }
    for label in keys {
        states
            .remove((rule_id, label.as_str()))
            .map_err(store("delete rule state"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AlertState;

    fn rule(owner_id: u64, agent_id: u64) -> RuleRecord {
        RuleRecord {
            id: 0,
            owner_id,
            agent_id,
            metric: AlertMetric::DiskPct,
            label: Some("/".into()),
            comparison: Some(Comparison::Gt),
            threshold: Some(90.0),
            duration_s: None,
            cooldown_s: 300,
            enabled: true,
            name: Some("root full".into()),
            description: None,
            created_ms: 1,
            updated_ms: 1,
        }
    }

    fn firing(at: i64) -> FiringRecord {
        FiringRecord {
            since_ms: at,
            last_notified_ms: at,
            value: 95.0,
        }
    }

    #[test]
    fn rules_state_and_events_survive_reopen_and_go_with_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let c = Catalog::open_in(dir.path()).unwrap();
            let a = c.create_rule(&rule(1, 7)).unwrap();
            let b = c.create_rule(&rule(1, 8)).unwrap();
            assert_ne!(a.id, b.id);
            let mut event = super::super::alerts::tests::event(7, 5);
            event.rule_id = a.id;
            let stored = c
                .record_transition(a.id, "/", Some(firing(5)), Some((1, event)), 100)
                .unwrap()
                .unwrap();
            assert!(stored.id > 0);
            c.record_transition(b.id, "", Some(firing(6)), None, 100)
                .unwrap();
            (a, b)
        };
        let c = Catalog::open_in(dir.path()).unwrap();
        assert_eq!(c.rule(a.id).unwrap().unwrap(), a);
        assert_eq!(c.rules_of(1).unwrap().len(), 2);
        assert!(c.rules_of(2).unwrap().is_empty());
        let states = c.firing_states().unwrap();
        assert_eq!(states.len(), 2);
        assert_eq!(c.alerts_of(1).unwrap()[0].state, AlertState::Firing);

        // Someone else cannot update or delete it.
        let mut theirs = a.clone();
        theirs.owner_id = 2;
        assert!(!c.update_rule(&theirs, true).unwrap());
        assert!(!c.delete_rule(2, a.id).unwrap());
        // Editing with a reset drops the state.
        assert!(c.update_rule(&a, true).unwrap());
        assert_eq!(c.firing_states().unwrap().len(), 1);

        // The side rows of a rule (its channels) go with it, either way.
        let routed = crate::catalog::RuleNotifyRecord {
            channels: vec![3],
            urgent: true,
        };
        for id in [a.id, b.id] {
            c.set_rule_notify(id, &routed).unwrap();
            assert_eq!(c.rule_notify(id).unwrap(), routed);
        }

        assert_eq!(c.delete_rules_of_agent(8).unwrap(), vec![b.id]);
        assert!(c.firing_states().unwrap().is_empty());
        assert!(c.delete_rule(1, a.id).unwrap());
        assert!(c.all_rules().unwrap().is_empty());
        for id in [a.id, b.id] {
            assert_eq!(c.rule_notify(id).unwrap(), Default::default());
        }
    }
}
