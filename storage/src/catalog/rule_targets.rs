//! Alert rules that watch every agent carrying a tag (`tag:vps`) rather
//! than one agent.
//!
//! A side table keyed by rule id: the rule record's layout is unchanged. A
//! tag rule's `agent_id` is [`TAG_RULE_AGENT`] (no agent has id 0); the
//! evaluator keeps its firing state per (rule, agent, label).

use std::collections::HashMap;

use redb::{ReadableTable, TableDefinition};

use super::error::store;
use super::rules::RuleRecord;
use super::{Catalog, CatalogError, RULES, codec, next_id};

/// rule id → the tag it watches.
pub(super) const RULE_TARGETS: TableDefinition<u64, &str> = TableDefinition::new("rule_targets");

/// The `agent_id` of a rule that targets a tag: ids start at 1.
pub const TAG_RULE_AGENT: u64 = 0;

impl Catalog {
    /// Stores a new rule watching every agent of its owner tagged `tag`:
    /// the rule and its target in one transaction. `rule.id` is assigned.
    pub fn create_tag_rule(
        &self,
        rule: &RuleRecord,
        tag: &str,
    ) -> Result<RuleRecord, CatalogError> {
        let txn = self.write()?;
        let record = {
            let id = next_id(&txn, "rule")?;
            let record = RuleRecord {
                id,
                agent_id: TAG_RULE_AGENT,
                ..rule.clone()
            };
            txn.open_table(RULES)
                .map_err(store("open rules"))?
                .insert(
                    id,
                    codec::encode(&format!("rule {id}"), &record)?.as_slice(),
                )
                .map_err(store("write rule"))?;
            txn.open_table(RULE_TARGETS)
                .map_err(store("open rule targets"))?
                .insert(id, tag)
                .map_err(store("write rule target"))?;
            record
        };
        txn.commit().map_err(store("commit rule"))?;
        Ok(record)
    }

    /// The tag rule `rule_id` watches, if it targets a tag.
    pub fn rule_tag(&self, rule_id: u64) -> Result<Option<String>, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(RULE_TARGETS)
            .map_err(store("open rule targets"))?;
        Ok(table
            .get(rule_id)
            .map_err(store("read rule target"))?
            .map(|t| t.value().to_string()))
    }

    /// Every rule that targets a tag: rule id → tag.
    pub fn rule_tags(&self) -> Result<HashMap<u64, String>, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(RULE_TARGETS)
            .map_err(store("open rule targets"))?;
        let mut out = HashMap::new();
        for entry in table.iter().map_err(store("scan rule targets"))? {
            let (id, tag) = entry.map_err(store("scan rule targets"))?;
            out.insert(id.value(), tag.value().to_string());
        }
        Ok(out)
    }
}

/// Removes the target of deleted rule `rule_id` inside `txn`.
pub(super) fn forget_target(
    txn: &redb::WriteTransaction,
    rule_id: u64,
) -> Result<(), CatalogError> {
    txn.open_table(RULE_TARGETS)
        .map_err(store("open rule targets"))?
        .remove(rule_id)
        .map_err(store("delete rule target"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertMetric, Comparison};

    #[test]
    fn a_tag_rule_keeps_its_tag_across_reopen_and_loses_it_with_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let rule = RuleRecord {
            id: 0,
            owner_id: 1,
            agent_id: 42,
            metric: AlertMetric::CpuPct,
            label: None,
            comparison: Some(Comparison::Gt),
            threshold: Some(90.0),
            duration_s: None,
            cooldown_s: 300,
            enabled: true,
            name: None,
            description: None,
            created_ms: 1,
            updated_ms: 1,
        };
        let id = {
            let c = Catalog::open_in(dir.path()).unwrap();
            let plain = c.create_rule(&rule).unwrap();
            let tagged = c.create_tag_rule(&rule, "vps").unwrap();
            assert_eq!(tagged.agent_id, TAG_RULE_AGENT);
            assert_eq!(c.rule_tag(plain.id).unwrap(), None);
            tagged.id
        };
        let c = Catalog::open_in(dir.path()).unwrap();
        assert_eq!(c.rule_tag(id).unwrap().as_deref(), Some("vps"));
        assert_eq!(
            c.rule_tags().unwrap(),
            HashMap::from([(id, "vps".to_string())])
        );
        assert!(c.delete_rule(1, id).unwrap());
        assert!(c.rule_tags().unwrap().is_empty());
    }
}
