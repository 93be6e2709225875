//! Agents shared with other users: `agent_shares`, (agent id, user id) →
//! role byte ([`ShareRole`]). A side table rather than a field of the agent
//! record, so looking up "may this user see that agent" never decodes the
//! agent twice and deleting a user or an agent removes its rows in the same
//! transaction.

use redb::{ReadableTable, WriteTransaction};

use super::error::store;
use super::{AGENT_SHARES, AGENTS, Catalog, CatalogError};

/// What a user may do with an agent shared with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShareRole {
    /// Sees live data, history and alert history; changes nothing.
    Viewer,
    /// A viewer who may also manage the agent's alert rules.
    Editor,
}

impl ShareRole {
    fn to_byte(self) -> u8 {
        match self {
            ShareRole::Viewer => 1,
            ShareRole::Editor => 2,
        }
    }

    fn from_byte(b: u8) -> Result<ShareRole, CatalogError> {
        match b {
            1 => Ok(ShareRole::Viewer),
            2 => Ok(ShareRole::Editor),
            other => Err(CatalogError::Corrupt {
                what: "agent share".into(),
                reason: format!("unknown role {other}"),
            }),
        }
    }
}

/// Removes every share of agent `agent_id` inside `txn`.
pub(super) fn remove_agent_shares(
    txn: &WriteTransaction,
    agent_id: u64,
) -> Result<(), CatalogError> {
    let mut table = txn.open_table(AGENT_SHARES).map_err(store("open shares"))?;
    let keys: Vec<(u64, u64)> = table
        .range((agent_id, 0)..=(agent_id, u64::MAX))
        .map_err(store("scan shares"))?
        .map(|e| e.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()
        .map_err(store("scan shares"))?;
    for key in keys {
        table.remove(key).map_err(store("delete share"))?;
    }
    Ok(())
}

/// Removes every share given to `user_id` inside `txn` (the shares of the
/// user's own agents go with the agents).
pub(super) fn remove_user_shares(txn: &WriteTransaction, user_id: u64) -> Result<(), CatalogError> {
    let mut table = txn.open_table(AGENT_SHARES).map_err(store("open shares"))?;
    let keys: Vec<(u64, u64)> = table
        .iter()
        .map_err(store("scan shares"))?
        .filter_map(|e| match e {
            Ok((k, _)) if k.value().1 == user_id => Some(Ok(k.value())),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()
        .map_err(store("scan shares"))?;
    for key in keys {
        table.remove(key).map_err(store("delete share"))?;
    }
    Ok(())
}

impl Catalog {
    /// Shares agent `agent_id` with `user_id` as `role` (replacing an
    /// earlier role). False when the agent is gone.
    pub fn share_agent(
        &self,
        agent_id: u64,
        user_id: u64,
        role: ShareRole,
    ) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        {
            let agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
            if agents.get(agent_id).map_err(store("read agent"))?.is_none() {
                return Ok(false);
            }
            txn.open_table(AGENT_SHARES)
                .map_err(store("open shares"))?
                .insert((agent_id, user_id), role.to_byte())
                .map_err(store("write share"))?;
        }
        txn.commit().map_err(store("commit share"))?;
        Ok(true)
    }

    /// Ends the share of `agent_id` with `user_id`. False when there was none.
    pub fn unshare_agent(&self, agent_id: u64, user_id: u64) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        let removed = txn
            .open_table(AGENT_SHARES)
            .map_err(store("open shares"))?
            .remove((agent_id, user_id))
            .map_err(store("delete share"))?
            .is_some();
        txn.commit().map_err(store("commit share"))?;
        Ok(removed)
    }

    /// The role `user_id` has on agent `agent_id`, if it is shared with them.
    pub fn share_role(
        &self,
        agent_id: u64,
        user_id: u64,
    ) -> Result<Option<ShareRole>, CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(AGENT_SHARES).map_err(store("open shares"))?;
        match table
            .get((agent_id, user_id))
            .map_err(store("read share"))?
        {
            Some(b) => ShareRole::from_byte(b.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Who agent `agent_id` is shared with: (user id, role), by user id.
    pub fn shares_of_agent(&self, agent_id: u64) -> Result<Vec<(u64, ShareRole)>, CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(AGENT_SHARES).map_err(store("open shares"))?;
        let mut out = Vec::new();
        for entry in table
            .range((agent_id, 0)..=(agent_id, u64::MAX))
            .map_err(store("scan shares"))?
        {
            let (k, v) = entry.map_err(store("scan shares"))?;
            out.push((k.value().1, ShareRole::from_byte(v.value())?));
        }
        Ok(out)
    }

    /// The agents shared with `user_id`: (agent id, role), by agent id.
    pub fn shared_with(&self, user_id: u64) -> Result<Vec<(u64, ShareRole)>, CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(AGENT_SHARES).map_err(store("open shares"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(store("scan shares"))? {
            let (k, v) = entry.map_err(store("scan shares"))?;
            let (agent, user) = k.value();
            if user == user_id {
                out.push((agent, ShareRole::from_byte(v.value())?));
            }
        }
        Ok(out)
    }
}
