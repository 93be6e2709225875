//! Agents and their tokens. A token is stored only as its SHA-256 hash, in
//! the agent record and in an index hash → agent. A new or regenerated token
//! is pending for [`PENDING_TOKEN_TTL_MS`]; the first accepted report
//! activates it for good. Regenerating replaces the hash in one transaction,
//! so the old token stops working at once.
//!
//! Tokens found active are cached in memory (hash → agent) so ingest can
//! authenticate without a transaction; regeneration and deletion drop the
//! entry after their commit and bump an epoch, so a check that read the
//! tables before the commit cannot put the old token back.
//!
//! Last seen / interval / host facts: [`Catalog::record_report`] runs for every
//! ingest batch, so it only updates an in-memory map (no disk, no write
//! transaction). Reads merge the map over the stored record.
//! [`Catalog::flush_live`] writes every changed agent in one transaction; the
//! server runs it every [`LAST_SEEN_PERSIST_MS`], and it runs when the catalog
//! closes. A crash loses at most that much of "last seen", never a report.

use crate::model::HostFacts;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::error::store;
use super::{AGENT_TOKENS, AGENTS, Catalog, CatalogError, TokenHash, codec, next_id};

/// How long a new or regenerated token waits for its first report.
pub const PENDING_TOKEN_TTL_MS: i64 = 300_000;

/// How often the server should call [`Catalog::flush_live`]: the stored
/// last-seen lags the real one by at most this much.
pub const LAST_SEEN_PERSIST_MS: i64 = 30_000;

/// [`HostFacts`] as stored: the same fields without serde skips (bincode is
/// not self-describing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub hostname: String,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub cpu_model: Option<String>,
    pub cores: Option<u32>,
}

impl From<HostFacts> for HostRecord {
    fn from(h: HostFacts) -> Self {
        HostRecord {
            hostname: h.hostname,
            os: h.os,
            kernel: h.kernel,
            arch: h.arch,
            cpu_model: h.cpu_model,
            cores: h.cores,
        }
    }
}

impl From<HostRecord> for HostFacts {
    fn from(h: HostRecord) -> Self {
        HostFacts {
            hostname: h.hostname,
            os: h.os,
            kernel: h.kernel,
            arch: h.arch,
            cpu_model: h.cpu_model,
            cores: h.cores,
        }
    }
}

/// An agent as stored (record version 2, data format 4: `tags` added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: u64,
    pub owner_id: u64,
    pub name: String,
    pub created_ms: i64,
    /// SHA-256 of the current token.
    pub token_hash: TokenHash,
    /// When the current token was issued (creation or last regeneration).
    pub token_created_ms: i64,
    /// When the current token was first used; `None` while pending.
    pub activated_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    pub interval_ms: Option<i64>,
    pub host: Option<HostRecord>,
    /// Lower-case labels (`home`, `vps`), sorted, without duplicates.
    pub tags: Vec<String>,
}

/// The layout of record version 1 (data formats 1 to 3), read as an agent
/// without tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecordV1 {
    pub id: u64,
    pub owner_id: u64,
    pub name: String,
    pub created_ms: i64,
    pub token_hash: TokenHash,
    pub token_created_ms: i64,
    pub activated_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    pub interval_ms: Option<i64>,
    pub host: Option<HostRecord>,
}

impl From<AgentRecordV1> for AgentRecord {
    fn from(v: AgentRecordV1) -> AgentRecord {
        AgentRecord {
            id: v.id,
            owner_id: v.owner_id,
            name: v.name,
            created_ms: v.created_ms,
            token_hash: v.token_hash,
            token_created_ms: v.token_created_ms,
            activated_ms: v.activated_ms,
            last_seen_ms: v.last_seen_ms,
            interval_ms: v.interval_ms,
            host: v.host,
            tags: Vec::new(),
        }
    }
}

/// Reads an agent record of either version.
pub fn decode_agent(what: &str, bytes: &[u8]) -> Result<AgentRecord, CatalogError> {
    match codec::split(what, bytes)? {
        (codec::VERSION_1, body) => codec::decode_body::<AgentRecordV1>(what, body).map(Into::into),
        (codec::VERSION_2, body) => codec::decode_body(what, body),
        (v, _) => Err(codec::unknown_version(what, v)),
    }
}

/// Writes an agent record (always the newest version).
pub fn encode_agent(record: &AgentRecord) -> Result<Vec<u8>, CatalogError> {
    codec::encode_as(codec::VERSION_2, &what(record.id), record)
}

/// The state of an agent's current token at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// Not used yet; refused from `expires_ms` on.
    Pending {
        expires_ms: i64,
    },
    Active,
    /// Never used within [`PENDING_TOKEN_TTL_MS`]: must be regenerated.
    Expired,
}

impl AgentRecord {
    pub fn token_status(&self, now_ms: i64) -> TokenStatus {
        if self.activated_ms.is_some() {
            return TokenStatus::Active;
        }
        let expires_ms = self.token_created_ms.saturating_add(PENDING_TOKEN_TTL_MS);
        if now_ms < expires_ms {
            TokenStatus::Pending { expires_ms }
        } else {
            TokenStatus::Expired
        }
    }
}

/// Who a valid agent token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentAuth {
    pub agent_id: u64,
    pub owner_id: u64,
}

/// Why an agent token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentAuthError {
    /// No agent has this token (never issued, regenerated, or agent deleted).
    #[error("unknown agent token")]
    Unknown,
    /// A pending token that was not used within five minutes.
    #[error("the agent token expired before its first report")]
    Expired,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// What [`Catalog::record_report`] keeps in memory per agent.
#[derive(Debug, Clone)]
pub(super) struct LiveState {
    last_seen_ms: i64,
    interval_ms: Option<i64>,
    host: Option<HostFacts>,
    /// Bumped by every report; `flushed` is the generation last written.
    generation: u64,
    flushed: u64,
}

fn what(id: u64) -> String {
    format!("agent {id}")
}

impl Catalog {
    /// Creates an agent of `owner_id` with a pending token hashing to `hash`.
    pub fn create_agent(
        &self,
        owner_id: u64,
        name: &str,
        hash: &TokenHash,
        now_ms: i64,
    ) -> Result<AgentRecord, CatalogError> {
        let txn = self.write()?;
        let record = {
            let id = next_id(&txn, "agent")?;
            let record = AgentRecord {
                id,
                owner_id,
                name: name.to_string(),
                created_ms: now_ms,
                token_hash: *hash,
                token_created_ms: now_ms,
                activated_ms: None,
                last_seen_ms: None,
                interval_ms: None,
                host: None,
                tags: Vec::new(),
            };
            let mut agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
            agents
                .insert(id, encode_agent(&record)?.as_slice())
                .map_err(store("write agent"))?;
            let mut tokens = txn
                .open_table(AGENT_TOKENS)
                .map_err(store("open agent tokens"))?;
            tokens
                .insert(hash, id)
                .map_err(store("write agent token"))?;
            record
        };
        txn.commit().map_err(store("commit agent"))?;
        Ok(record)
    }

    /// The agent with this id, whoever owns it, with the latest in-memory
    /// last-seen merged in. Ownership is the caller's check.
    pub fn agent(&self, id: u64) -> Result<Option<AgentRecord>, CatalogError> {
        let txn = self.read()?;
        let agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
        let Some(bytes) = agents.get(id).map_err(store("read agent"))? else {
            return Ok(None);
        };
        let mut record: AgentRecord = decode_agent(&what(id), bytes.value())?;
        self.merge_live(&mut record);
        Ok(Some(record))
    }

    /// Every agent of `owner_id`, by id.
    pub fn agents_of(&self, owner_id: u64) -> Result<Vec<AgentRecord>, CatalogError> {
        let txn = self.read()?;
        let agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
        let mut out = Vec::new();
        for entry in agents.iter().map_err(store("scan agents"))? {
            let (id, bytes) = entry.map_err(store("scan agents"))?;
            let mut record: AgentRecord = decode_agent(&what(id.value()), bytes.value())?;
            if record.owner_id == owner_id {
                self.merge_live(&mut record);
                out.push(record);
            }
        }
        Ok(out)
    }

    fn merge_live(&self, record: &mut AgentRecord) {
        if let Some(live) = self.live_mut().get(&record.id) {
            apply_live(record, live);
        }
    }

    /// Loads agent `id` of `owner_id` inside a write transaction, applies `f`,
    /// stores it. `None` when missing or someone else's.
    fn update_owned(
        &self,
        owner_id: u64,
        id: u64,
        f: impl FnOnce(
            &mut AgentRecord,
            &mut redb::Table<'_, &'static TokenHash, u64>,
        ) -> Result<(), CatalogError>,
    ) -> Result<Option<AgentRecord>, CatalogError> {
        let txn = self.write()?;
        let record = {
            let mut agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
            let mut record: AgentRecord = match agents.get(id).map_err(store("read agent"))? {
                Some(bytes) => decode_agent(&what(id), bytes.value())?,
                None => return Ok(None),
            };
            if record.owner_id != owner_id {
                return Ok(None);
            }
            let mut tokens = txn
                .open_table(AGENT_TOKENS)
                .map_err(store("open agent tokens"))?;
            f(&mut record, &mut tokens)?;
            agents
                .insert(id, encode_agent(&record)?.as_slice())
                .map_err(store("write agent"))?;
            record
        };
        txn.commit().map_err(store("commit agent"))?;
        let mut record = record;
        self.merge_live(&mut record);
        Ok(Some(record))
    }

    /// Renames agent `id` of `owner_id`.
    pub fn rename_agent(
        &self,
        owner_id: u64,
        id: u64,
        name: &str,
    ) -> Result<Option<AgentRecord>, CatalogError> {
        self.update_owned(owner_id, id, |record, _| {
            record.name = name.to_string();
            Ok(())
        })
    }

    /// Replaces the token of agent `id` of `owner_id` with a new pending one
    /// hashing to `hash`; the old one is refused from this commit on.
    pub fn regenerate_agent_token(
        &self,
        owner_id: u64,
        id: u64,
        hash: &TokenHash,
        now_ms: i64,
    ) -> Result<Option<AgentRecord>, CatalogError> {
        let mut old = None;
        let updated = self.update_owned(owner_id, id, |record, tokens| {
            old = Some(record.token_hash);
            tokens
                .remove(&record.token_hash)
                .map_err(store("remove agent token"))?;
            tokens
                .insert(hash, record.id)
                .map_err(store("write agent token"))?;
            record.token_hash = *hash;
            record.token_created_ms = now_ms;
            record.activated_ms = None;
            Ok(())
        })?;
        if updated.is_some()
            && let Some(old) = old
        {
            self.forget_token(&old);
        }
        Ok(updated)
    }

    /// After a revocation committed: drops `hash` from the cache and makes
    /// checks that started before the commit unable to cache it again.
    fn forget_token(&self, hash: &TokenHash) {
        self.token_epoch.fetch_add(1, Ordering::SeqCst);
        self.active_tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(hash);
    }

    /// Caches `hash` as active unless a revocation committed since `epoch`.
    fn remember_token(&self, hash: &TokenHash, auth: AgentAuth, epoch: u64) {
        let mut cache = self
            .active_tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if self.token_epoch.load(Ordering::SeqCst) == epoch {
            cache.insert(*hash, auth);
        }
    }

    /// Memory-only: the agent of `hash` if it is a token already known to be
    /// active. The ingest path tries this first, then
    /// [`Catalog::authenticate_agent`] (which fills the cache).
    pub fn cached_agent_auth(&self, hash: &TokenHash) -> Option<AgentAuth> {
        self.active_tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .copied()
    }

    /// Deletes agent `id` of `owner_id` and its token. False when missing or
    /// someone else's. The caller deletes the agent's time series.
    pub fn delete_agent(&self, owner_id: u64, id: u64) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        let token_hash = {
            let mut agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
            let record: AgentRecord = match agents.get(id).map_err(store("read agent"))? {
                Some(bytes) => decode_agent(&what(id), bytes.value())?,
                None => return Ok(false),
            };
            if record.owner_id != owner_id {
                return Ok(false);
            }
            agents.remove(id).map_err(store("delete agent"))?;
            super::shares::remove_agent_shares(&txn, id)?;
            super::check_runners::remove_agent(&txn, id)?;
            let mut tokens = txn
                .open_table(AGENT_TOKENS)
                .map_err(store("open agent tokens"))?;
            tokens
                .remove(&record.token_hash)
                .map_err(store("remove agent token"))?;
            record.token_hash
        };
        txn.commit().map_err(store("commit delete agent"))?;
        self.forget_token(&token_hash);
        self.live_mut().remove(&id);
        Ok(true)
    }

    /// After the deletion of `agent` committed: its token and live state go.
    pub(super) fn forget_agent(&self, agent: &AgentRecord) {
        self.forget_token(&agent.token_hash);
        self.live_mut().remove(&agent.id);
    }

    /// Replaces the tags of agent `id` of `owner_id`.
    pub fn set_agent_tags(
        &self,
        owner_id: u64,
        id: u64,
        tags: Vec<String>,
    ) -> Result<Option<AgentRecord>, CatalogError> {
        self.update_owned(owner_id, id, |record, _| {
            record.tags = tags;
            Ok(())
        })
    }

    /// Checks an agent token (by its hash) at `now_ms`. A valid pending token
    /// is activated for good by this call.
    pub fn authenticate_agent(
        &self,
        hash: &TokenHash,
        now_ms: i64,
    ) -> Result<AgentAuth, AgentAuthError> {
        let epoch = self.token_epoch.load(Ordering::SeqCst);
        let record = {
            let txn = self.read()?;
            let tokens = txn
                .open_table(AGENT_TOKENS)
                .map_err(store("open agent tokens"))?;
            let Some(id) = tokens.get(hash).map_err(store("read agent token"))? else {
                return Err(AgentAuthError::Unknown);
            };
            let id = id.value();
            let agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
            let Some(bytes) = agents.get(id).map_err(store("read agent"))? else {
                return Err(AgentAuthError::Unknown);
            };
            let record: AgentRecord = decode_agent(&what(id), bytes.value())?;
            record
        };
        if record.token_hash != *hash {
            return Err(AgentAuthError::Unknown);
        }
        let auth = AgentAuth {
            agent_id: record.id,
            owner_id: record.owner_id,
        };
        match record.token_status(now_ms) {
            TokenStatus::Active => {
                self.remember_token(hash, auth, epoch);
                Ok(auth)
            }
            TokenStatus::Expired => Err(AgentAuthError::Expired),
            TokenStatus::Pending { .. } => {
                // Activate, re-checking inside the write transaction in case
                // the token was regenerated in between.
                let activated = self.update_owned(record.owner_id, record.id, |r, _| {
                    if r.token_hash == *hash && r.activated_ms.is_none() {
                        r.activated_ms = Some(now_ms);
                    }
                    Ok(())
                })?;
                match activated {
                    Some(r) if r.token_hash == *hash && r.activated_ms.is_some() => {
                        self.remember_token(hash, auth, epoch);
                        Ok(auth)
                    }
                    _ => Err(AgentAuthError::Unknown),
                }
            }
        }
    }

    /// Notes a report of agent `agent_id` received at `last_seen_ms` (server
    /// time), with its interval and host facts when it sent them. Memory
    /// only; see [`Catalog::flush_live`].
    pub fn record_report(
        &self,
        agent_id: u64,
        last_seen_ms: i64,
        interval_ms: Option<i64>,
        host: Option<HostFacts>,
    ) -> Result<(), CatalogError> {
        let mut live = self.live_mut();
        let entry = live.entry(agent_id).or_insert(LiveState {
            last_seen_ms,
            interval_ms: None,
            host: None,
            generation: 0,
            flushed: 0,
        });
        entry.last_seen_ms = entry.last_seen_ms.max(last_seen_ms);
        if interval_ms.is_some() {
            entry.interval_ms = interval_ms;
        }
        if host.is_some() {
            entry.host = host;
        }
        entry.generation += 1;
        Ok(())
    }

    /// Writes every agent whose last report is not on disk yet, in one
    /// transaction. Returns how many were written.
    pub fn flush_live(&self) -> Result<usize, CatalogError> {
        let dirty: Vec<(u64, LiveState)> = self
            .live_mut()
            .iter()
            .filter(|(_, s)| s.generation != s.flushed)
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        if dirty.is_empty() {
            return Ok(0);
        }
        let mut gone = Vec::new();
        let txn = self.write()?;
        {
            let mut agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
            for (id, state) in &dirty {
                let mut record: AgentRecord = match agents.get(*id).map_err(store("read agent"))? {
                    Some(bytes) => decode_agent(&what(*id), bytes.value())?,
                    None => {
                        gone.push(*id); // deleted meanwhile
                        continue;
                    }
                };
                apply_live(&mut record, state);
                agents
                    .insert(*id, encode_agent(&record)?.as_slice())
                    .map_err(store("write agent"))?;
            }
        }
        txn.commit().map_err(store("commit last seen"))?;
        let written = dirty.len() - gone.len();
        let mut live = self.live_mut();
        for (id, state) in &dirty {
            if let Some(entry) = live.get_mut(id) {
                entry.flushed = state.generation;
            }
        }
        for id in gone {
            live.remove(&id);
        }
        Ok(written)
    }
}

/// Lays the in-memory report state over a stored record.
fn apply_live(record: &mut AgentRecord, live: &LiveState) {
    if record.last_seen_ms.is_none_or(|t| t < live.last_seen_ms) {
        record.last_seen_ms = Some(live.last_seen_ms);
    }
    if live.interval_ms.is_some() {
        record.interval_ms = live.interval_ms;
    }
    if let Some(host) = &live.host {
        record.host = Some(host.clone().into());
    }
}

impl Drop for Catalog {
    fn drop(&mut self) {
        if let Err(e) = self.flush_live() {
            tracing::warn!(error = %e, "could not save agents' last-seen times on close");
        }
    }
}
