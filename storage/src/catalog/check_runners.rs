//! Where a check runs: the server (no entry) or one of its owner's agents.
//!
//! A side table, so the check record keeps its layout: check id → agent id.
//! Deleting the check removes its entry; deleting the agent (or its owner)
//! removes every entry naming it, and those checks fall back to the server.

use std::collections::HashMap;

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use crate::model::MAX_AGENT_CHECKS;

use super::checks::CheckRecord;
use super::error::store;
use super::{AGENTS, Catalog, CatalogError};

/// check id → the agent that runs it.
pub(super) const CHECK_RUNNERS: TableDefinition<u64, u64> = TableDefinition::new("check_runners");

/// What saving a check with a runner came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckSaved {
    Saved(CheckRecord),
    /// The owner has `max_checks_per_user` checks already.
    LimitReached,
    /// The runner is not an agent of the check's owner.
    NoSuchAgent,
    /// The runner runs [`MAX_AGENT_CHECKS`] checks already.
    AgentFull,
    /// The check is missing or someone else's.
    NotFound,
}

pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), CatalogError> {
    txn.open_table(CHECK_RUNNERS)
        .map_err(store("create tables"))?;
    Ok(())
}

/// Sets (or with `None` removes) the runner of check `check_id` of
/// `owner_id`, in `txn`. `Some(refusal)` when the agent is not the owner's
/// or is full; nothing is written then.
pub(super) fn assign(
    txn: &WriteTransaction,
    owner_id: u64,
    check_id: u64,
    runner: Option<u64>,
) -> Result<Option<CheckSaved>, CatalogError> {
    let mut table = txn
        .open_table(CHECK_RUNNERS)
        .map_err(store("open check runners"))?;
    let Some(agent_id) = runner else {
        table
            .remove(check_id)
            .map_err(store("delete check runner"))?;
        return Ok(None);
    };
    let agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
    let owned = match agents.get(agent_id).map_err(store("read agent"))? {
        Some(bytes) => {
            super::agents::decode_agent(&format!("agent {agent_id}"), bytes.value())?.owner_id
                == owner_id
        }
        None => false,
    };
    if !owned {
        return Ok(Some(CheckSaved::NoSuchAgent));
    }
    let mut count = 0usize;
    for entry in table.iter().map_err(store("scan check runners"))? {
        let (check, agent) = entry.map_err(store("scan check runners"))?;
        count += usize::from(agent.value() == agent_id && check.value() != check_id);
    }
    if count >= MAX_AGENT_CHECKS {
        return Ok(Some(CheckSaved::AgentFull));
    }
    table
        .insert(check_id, agent_id)
        .map_err(store("write check runner"))?;
    Ok(None)
}

/// Removes the entries naming agent `agent_id`, in `txn`.
pub(super) fn remove_agent(txn: &WriteTransaction, agent_id: u64) -> Result<(), CatalogError> {
    let mut table = txn
        .open_table(CHECK_RUNNERS)
        .map_err(store("open check runners"))?;
    let mut checks = Vec::new();
    for entry in table.iter().map_err(store("scan check runners"))? {
        let (check, agent) = entry.map_err(store("scan check runners"))?;
        if agent.value() == agent_id {
            checks.push(check.value());
        }
    }
    for check in checks {
        table.remove(check).map_err(store("delete check runner"))?;
    }
    Ok(())
}

impl Catalog {
    /// The agent that runs check `check_id`; `None`: the server.
    pub fn check_runner(&self, check_id: u64) -> Result<Option<u64>, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(CHECK_RUNNERS)
            .map_err(store("open check runners"))?;
        Ok(table
            .get(check_id)
            .map_err(store("read check runner"))?
            .map(|v| v.value()))
    }

    /// Every check run by an agent: check id → agent id.
    pub fn check_runners(&self) -> Result<HashMap<u64, u64>, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(CHECK_RUNNERS)
            .map_err(store("open check runners"))?;
        let mut out = HashMap::new();
        for entry in table.iter().map_err(store("scan check runners"))? {
            let (check, agent) = entry.map_err(store("scan check runners"))?;
            out.insert(check.value(), agent.value());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::model::{CheckKind, CheckSpec};

    const T0: i64 = 1_767_225_600_000;

    fn spec() -> CheckSpec {
        CheckSpec {
            name: "router".into(),
            kind: CheckKind::Tcp,
            target: "192.168.1.1:80".into(),
            interval_s: 60,
            timeout_ms: 1_000,
            retries: 0,
            enabled: true,
            http: None,
            dns_expected: None,
        }
    }

    fn saved(s: CheckSaved) -> CheckRecord {
        match s {
            CheckSaved::Saved(r) => r,
            other => panic!("not saved: {other:?}"),
        }
    }

    #[test]
    fn only_the_owners_agent_runs_a_bounded_number_and_deletes_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open_in(dir.path()).unwrap();
        let mine = c.create_agent(1, "nas", &[9; 32], T0).unwrap().id;
        let theirs = c.create_agent(2, "pc", &[8; 32], T0).unwrap().id;

        // Someone else's or an unknown agent: nothing is stored.
        for agent in [theirs, 999] {
            assert_eq!(
                c.create_check_on(1, &spec(), T0, None, Some(agent))
                    .unwrap(),
                CheckSaved::NoSuchAgent
            );
        }
        assert!(c.checks_of(1).unwrap().is_empty(), "nothing half-saved");

        let mut ids = Vec::new();
        for _ in 0..MAX_AGENT_CHECKS {
            ids.push(saved(c.create_check_on(1, &spec(), T0, None, Some(mine)).unwrap()).id);
        }
        assert_eq!(
            c.create_check_on(1, &spec(), T0, None, Some(mine)).unwrap(),
            CheckSaved::AgentFull
        );
        assert_eq!(c.checks_of(1).unwrap().len(), MAX_AGENT_CHECKS);
        // Re-saving a check the agent runs already is no new one.
        saved(
            c.update_check_on(1, ids[0], &spec(), T0, Some(mine))
                .unwrap(),
        );
        // To the server and back.
        saved(c.update_check_on(1, ids[0], &spec(), T0, None).unwrap());
        assert_eq!(c.check_runner(ids[0]).unwrap(), None);
        saved(
            c.update_check_on(1, ids[0], &spec(), T0, Some(mine))
                .unwrap(),
        );
        assert_eq!(c.check_runner(ids[0]).unwrap(), Some(mine));
        assert_eq!(
            c.update_check_on(2, ids[0], &spec(), T0, None).unwrap(),
            CheckSaved::NotFound
        );

        assert!(c.delete_check(1, ids[0]).unwrap());
        assert_eq!(c.check_runner(ids[0]).unwrap(), None);
        assert_eq!(c.check_runners().unwrap().len(), MAX_AGENT_CHECKS - 1);
        assert!(c.delete_agent(1, mine).unwrap());
        assert!(c.check_runners().unwrap().is_empty());
        assert_eq!(
            c.checks_of(1).unwrap().len(),
            MAX_AGENT_CHECKS - 1,
            "the checks stay"
        );
    }
}
