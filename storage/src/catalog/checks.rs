//! Uptime checks and their state changes.
//!
//! A check belongs to one user, like an agent. Its results are not here:
//! they are series in the time-series engine (see `server/src/checks`).
//! What is here is the definition ([`CheckRecord`]) and the history of its
//! up/down transitions ([`CheckEventRecord`], at most
//! [`MAX_EVENTS_PER_CHECK`] per check, oldest dropped first).

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::model::{CheckSpec, CheckState};

use super::check_runners::{self, CheckSaved};
use super::error::store;
use super::rules::RuleRecord;
use super::{Catalog, CatalogError, RULES, codec, next_id};

/// check id → [`CheckRecord`].
pub(super) const CHECKS: TableDefinition<u64, &[u8]> = TableDefinition::new("checks");
/// (check id, time ms, sequence) → [`CheckEventRecord`].
pub(super) const CHECK_EVENTS: TableDefinition<(u64, i64, u64), &[u8]> =
    TableDefinition::new("check_events");

/// rule id → check id, for alert rules on a check (`check_down`,
/// `check_latency_ms`, `check_cert_days`). A side table: the rule record's
/// layout is unchanged (its `agent_id` holds the check's engine id).
pub(super) const RULE_CHECKS: TableDefinition<u64, u64> = TableDefinition::new("rule_checks");

/// Transitions kept per check.
pub const MAX_EVENTS_PER_CHECK: usize = 500;

/// A check as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub id: u64,
    pub owner_id: u64,
    pub spec: CheckSpec,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A transition of a check to up or down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckEventRecord {
    pub ts_ms: i64,
    pub state: CheckState,
    /// The fixed phrase of the failure that made it down.
    pub error: Option<String>,
}

/// The keys of check `id`'s events, oldest first.
fn event_keys(
    events: &impl ReadableTable<(u64, i64, u64), &'static [u8]>,
    id: u64,
) -> Result<Vec<(u64, i64, u64)>, CatalogError> {
    let mut keys = Vec::new();
    for entry in events
        .range((id, i64::MIN, 0)..=(id, i64::MAX, u64::MAX))
        .map_err(store("scan check events"))?
    {
        let (key, _) = entry.map_err(store("scan check events"))?;
        keys.push(key.value());
    }
    Ok(keys)
}

fn what(id: u64) -> String {
    format!("check {id}")
}

/// Creates the tables (called when the catalog opens).
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), CatalogError> {
    txn.open_table(CHECKS).map_err(store("create tables"))?;
    txn.open_table(CHECK_EVENTS)
        .map_err(store("create tables"))?;
    txn.open_table(RULE_CHECKS)
        .map_err(store("create tables"))?;
    Ok(())
}

impl Catalog {
    /// Stores a new check of `owner_id` unless the owner already has `max`
    /// checks (`None`: no limit); `Ok(None)` when the limit is reached. The
    /// count and the insert are one transaction.
    pub fn create_check(
        &self,
        owner_id: u64,
        spec: &CheckSpec,
        now_ms: i64,
        max: Option<u64>,
    ) -> Result<Option<CheckRecord>, CatalogError> {
        Ok(
            match self.create_check_on(owner_id, spec, now_ms, max, None)? {
                CheckSaved::Saved(record) => Some(record),
                _ => None,
            },
        )
    }

    /// [`Catalog::create_check`] run by agent `runner` (`None`: the
    /// server), the check and its runner in one transaction.
    pub fn create_check_on(
        &self,
        owner_id: u64,
        spec: &CheckSpec,
        now_ms: i64,
        max: Option<u64>,
        runner: Option<u64>,
    ) -> Result<CheckSaved, CatalogError> {
        let txn = self.write()?;
        let record = {
            let mut checks = txn.open_table(CHECKS).map_err(store("open checks"))?;
            if let Some(max) = max {
                let mut count = 0u64;
                for entry in checks.iter().map_err(store("scan checks"))? {
                    let (id, bytes) = entry.map_err(store("scan checks"))?;
                    let r: CheckRecord = codec::decode(&what(id.value()), bytes.value())?;
                    count += u64::from(r.owner_id == owner_id);
                }
                if count >= max {
                    return Ok(CheckSaved::LimitReached);
                }
            }
            let id = next_id(&txn, "check")?;
            let record = CheckRecord {
                id,
                owner_id,
                spec: spec.clone(),
                created_ms: now_ms,
                updated_ms: now_ms,
            };
            checks
                .insert(id, codec::encode(&what(id), &record)?.as_slice())
                .map_err(store("write check"))?;
            if let Some(refused) = check_runners::assign(&txn, owner_id, id, runner)? {
                return Ok(refused);
            }
            record
        };
        txn.commit().map_err(store("commit check"))?;
        Ok(CheckSaved::Saved(record))
    }

    /// The check with this id, whoever owns it. Ownership is the caller's check.
    pub fn check(&self, id: u64) -> Result<Option<CheckRecord>, CatalogError> {
        let txn = self.read()?;
        let checks = txn.open_table(CHECKS).map_err(store("open checks"))?;
        let Some(bytes) = checks.get(id).map_err(store("read check"))? else {
            return Ok(None);
        };
        Ok(Some(codec::decode(&what(id), bytes.value())?))
    }

    /// Every check, by id (the scheduler loads them at start).
    pub fn all_checks(&self) -> Result<Vec<CheckRecord>, CatalogError> {
        self.checks_where(|_| true)
    }

    /// The checks of `owner_id`, by id.
    pub fn checks_of(&self, owner_id: u64) -> Result<Vec<CheckRecord>, CatalogError> {
        self.checks_where(|c| c.owner_id == owner_id)
    }

    fn checks_where(
        &self,
        keep: impl Fn(&CheckRecord) -> bool,
    ) -> Result<Vec<CheckRecord>, CatalogError> {
        let txn = self.read()?;
        let checks = txn.open_table(CHECKS).map_err(store("open checks"))?;
        let mut out = Vec::new();
        for entry in checks.iter().map_err(store("scan checks"))? {
            let (id, bytes) = entry.map_err(store("scan checks"))?;
            let record: CheckRecord = codec::decode(&what(id.value()), bytes.value())?;
            if keep(&record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Replaces the spec of check `id` of `owner_id`. `None` when it is
    /// missing or someone else's.
    pub fn update_check(
        &self,
        owner_id: u64,
        id: u64,
        spec: &CheckSpec,
        now_ms: i64,
    ) -> Result<Option<CheckRecord>, CatalogError> {
        Ok(
            match self.update_check_on(owner_id, id, spec, now_ms, None)? {
                CheckSaved::Saved(record) => Some(record),
                _ => None,
            },
        )
    }

    /// [`Catalog::update_check`] that also sets where the check runs
    /// (`None`: the server), in one transaction.
    pub fn update_check_on(
        &self,
        owner_id: u64,
        id: u64,
        spec: &CheckSpec,
        now_ms: i64,
        runner: Option<u64>,
    ) -> Result<CheckSaved, CatalogError> {
        let txn = self.write()?;
        let record = {
            let mut checks = txn.open_table(CHECKS).map_err(store("open checks"))?;
            let old: CheckRecord = match checks.get(id).map_err(store("read check"))? {
                Some(bytes) => codec::decode(&what(id), bytes.value())?,
                None => return Ok(CheckSaved::NotFound),
            };
            if old.owner_id != owner_id {
                return Ok(CheckSaved::NotFound);
            }
            let record = CheckRecord {
                spec: spec.clone(),
                updated_ms: now_ms,
                ..old
            };
            checks
                .insert(id, codec::encode(&what(id), &record)?.as_slice())
                .map_err(store("write check"))?;
            if let Some(refused) = check_runners::assign(&txn, owner_id, id, runner)? {
                return Ok(refused);
            }
            record
        };
        txn.commit().map_err(store("commit check"))?;
        Ok(CheckSaved::Saved(record))
    }

    /// Deletes check `id` of `owner_id` with its events. False when it is
    /// missing or someone else's.
    pub fn delete_check(&self, owner_id: u64, id: u64) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        {
            let mut checks = txn.open_table(CHECKS).map_err(store("open checks"))?;
            let old: CheckRecord = match checks.get(id).map_err(store("read check"))? {
                Some(bytes) => codec::decode(&what(id), bytes.value())?,
                None => return Ok(false),
            };
            if old.owner_id != owner_id {
                return Ok(false);
            }
            checks.remove(id).map_err(store("delete check"))?;
            let mut events = txn
                .open_table(CHECK_EVENTS)
                .map_err(store("open check events"))?;
            let keys = event_keys(&events, id)?;
            for key in keys {
                events.remove(key).map_err(store("delete check event"))?;
            }
            let mut rule_checks = txn
                .open_table(RULE_CHECKS)
                .map_err(store("open rule checks"))?;
            let mut rules = Vec::new();
            for entry in rule_checks.iter().map_err(store("scan rule checks"))? {
                let (rule, check) = entry.map_err(store("scan rule checks"))?;
                if check.value() == id {
                    rules.push(rule.value());
                }
            }
            for rule in rules {
                rule_checks
                    .remove(rule)
                    .map_err(store("delete rule check"))?;
            }
            check_runners::assign(&txn, owner_id, id, None)?;
        }
        txn.commit().map_err(store("commit delete check"))?;
        Ok(true)
    }

    /// Stores a new alert rule on check `check_id` (`rule.id` is assigned)
    /// and its entry in the side table, in one transaction.
    pub fn create_check_rule(
        &self,
        rule: &RuleRecord,
        check_id: u64,
    ) -> Result<RuleRecord, CatalogError> {
        let txn = self.write()?;
        let record = {
            let id = next_id(&txn, "rule")?;
            let record = RuleRecord { id, ..rule.clone() };
            let mut rules = txn.open_table(RULES).map_err(store("open rules"))?;
            rules
                .insert(
                    id,
                    codec::encode(&format!("rule {id}"), &record)?.as_slice(),
                )
                .map_err(store("write rule"))?;
            let mut rule_checks = txn
                .open_table(RULE_CHECKS)
                .map_err(store("open rule checks"))?;
            rule_checks
                .insert(id, check_id)
                .map_err(store("write rule check"))?;
            record
        };
        txn.commit().map_err(store("commit rule"))?;
        Ok(record)
    }

    /// The check an alert rule watches, if it is a check rule.
    pub fn check_of_rule(&self, rule_id: u64) -> Result<Option<u64>, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(RULE_CHECKS)
            .map_err(store("open rule checks"))?;
        Ok(table
            .get(rule_id)
            .map_err(store("read rule check"))?
            .map(|v| v.value()))
    }

    /// Appends a transition of check `id`, dropping the oldest beyond
    /// [`MAX_EVENTS_PER_CHECK`].
    pub fn record_check_event(
        &self,
        id: u64,
        event: &CheckEventRecord,
    ) -> Result<(), CatalogError> {
        let txn = self.write()?;
        {
            let mut events = txn
                .open_table(CHECK_EVENTS)
                .map_err(store("open check events"))?;
            let seq = next_id(&txn, "check_event")?;
            events
                .insert(
                    (id, event.ts_ms, seq),
                    codec::encode(&what(id), event)?.as_slice(),
                )
                .map_err(store("write check event"))?;
            let keys = event_keys(&events, id)?;
            let excess = keys.len().saturating_sub(MAX_EVENTS_PER_CHECK);
            for key in keys.into_iter().take(excess) {
                events.remove(key).map_err(store("trim check events"))?;
            }
        }
        txn.commit().map_err(store("commit check event"))?;
        Ok(())
    }

    /// The transitions of check `id`, newest first, at most `limit`.
    pub fn check_events(
        &self,
        id: u64,
        limit: usize,
    ) -> Result<Vec<CheckEventRecord>, CatalogError> {
        let txn = self.read()?;
        let events = txn
            .open_table(CHECK_EVENTS)
            .map_err(store("open check events"))?;
        let mut out = Vec::new();
        for entry in events
            .range((id, i64::MIN, 0)..=(id, i64::MAX, u64::MAX))
            .map_err(store("scan check events"))?
            .rev()
            .take(limit)
        {
            let (_, bytes) = entry.map_err(store("scan check events"))?;
            out.push(codec::decode(&what(id), bytes.value())?);
        }
        Ok(out)
    }
}
