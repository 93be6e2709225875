//! Session families. Logging in starts a family with one refresh token; each
//! refresh rotates it (the old hash stays, pointing at the family). Presenting
//! a rotated token means two parties hold the family's tokens: the whole
//! family is revoked (deleted), which also ends its access tokens because
//! every authenticated request checks [`Catalog::is_session_active`].
//!
//! Family ids are small sequential numbers (shown on the Account page), so
//! each family also has a 128-bit random key, chosen by the caller's CSPRNG
//! and kept in `session_keys`; an access token names both, and one whose key
//! does not match is refused ([`Catalog::is_session_key_valid`]).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::error::store;
use super::{
    Catalog, CatalogError, REFRESH_TOKENS, SESSION_KEYS, SESSIONS, TokenHash, codec, next_id,
};

/// A live session family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: u64,
    pub user_id: u64,
    pub created_ms: i64,
    /// Last login or refresh (access-token use is not recorded).
    pub last_used_ms: i64,
    /// The family ends here unless refreshed (sliding).
    pub expires_ms: i64,
    /// `User-Agent` at login, shortened, for the Account page.
    pub user_agent: String,
    /// Hash of the only refresh token that may be used next.
    pub current_hash: TokenHash,
}

/// What the in-memory mirror keeps of a live family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActiveSession {
    user_id: u64,
    /// `None` for a family created before keys existed (data format 2): its
    /// access tokens are refused; its next refresh gives it a key.
    key: Option<u128>,
}

/// Where an issued refresh token belongs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefreshRecord {
    session_id: u64,
    issued_ms: i64,
}

/// The result of [`Catalog::rotate_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is replaced by the new hash. With the
    /// family's key, which access tokens must carry.
    Rotated(SessionRecord, u128),
    /// The token had already been rotated: the family is now revoked.
    Reused { session_id: u64, user_id: u64 },
    /// Unknown token, or its family is gone or expired.
    Invalid,
}

fn what(id: u64) -> String {
    format!("session {id}")
}

impl Catalog {
    pub(super) fn load_active_sessions(&self) -> Result<(), CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(SESSIONS).map_err(store("open sessions"))?;
        let keys = txn
            .open_table(SESSION_KEYS)
            .map_err(store("open session keys"))?;
        let mut active = self.active_sessions_mut();
        active.clear();
        for entry in table.iter().map_err(store("scan sessions"))? {
            let (id, bytes) = entry.map_err(store("scan sessions"))?;
            let record: SessionRecord = codec::decode(&what(id.value()), bytes.value())?;
            let key = keys
                .get(record.id)
                .map_err(store("read session key"))?
                .map(|k| k.value());
            active.insert(
                record.id,
                ActiveSession {
                    user_id: record.user_id,
                    key,
                },
            );
        }
        Ok(())
    }

    /// Whether family `session_id` is live and belongs to `user_id`. Memory
    /// only. For a check of a token, use [`Catalog::is_session_key_valid`].
    pub fn is_session_active(&self, session_id: u64, user_id: u64) -> bool {
        self.active_sessions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&session_id)
            .is_some_and(|s| s.user_id == user_id)
    }

    /// Whether family `session_id` is live, belongs to `user_id` and has the
    /// key `key`: what an access token must show. Memory only.
    pub fn is_session_key_valid(&self, session_id: u64, user_id: u64, key: u128) -> bool {
        self.active_sessions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&session_id)
            .is_some_and(|s| s.user_id == user_id && s.key == Some(key))
    }

    /// Starts a family for `user_id` whose first refresh token hashes to
    /// `hash`, with the secret `key` (128 random bits from a CSPRNG).
    pub fn create_session(
        &self,
        user_id: u64,
        hash: &TokenHash,
        key: u128,
        user_agent: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<SessionRecord, CatalogError> {
        let txn = self.write()?;
        let record = {
            let id = next_id(&txn, "session")?;
            let record = SessionRecord {
                id,
                user_id,
                created_ms: now_ms,
                last_used_ms: now_ms,
                expires_ms: now_ms.saturating_add(ttl_ms),
                user_agent: user_agent.to_string(),
                current_hash: *hash,
            };
            let mut sessions = txn.open_table(SESSIONS).map_err(store("open sessions"))?;
            sessions
                .insert(id, codec::encode(&what(id), &record)?.as_slice())
                .map_err(store("write session"))?;
            txn.open_table(SESSION_KEYS)
                .map_err(store("open session keys"))?
                .insert(id, key)
                .map_err(store("write session key"))?;
            let mut tokens = txn
                .open_table(REFRESH_TOKENS)
                .map_err(store("open refresh tokens"))?;
            let link = RefreshRecord {
                session_id: id,
                issued_ms: now_ms,
            };
            tokens
                .insert(hash, codec::encode("refresh token", &link)?.as_slice())
                .map_err(store("write refresh token"))?;
            record
        };
        txn.commit().map_err(store("commit session"))?;
        self.active_sessions_mut().insert(
            record.id,
            ActiveSession {
                user_id,
                key: Some(key),
            },
        );
        Ok(record)
    }

    /// Rotates the refresh token `old` to `new`, sliding the family's expiry.
    /// A family without a key (from before keys) gets `key_if_none`.
    pub fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &TokenHash,
        key_if_none: u128,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<RefreshOutcome, CatalogError> {
        // Unknown tokens (garbage, purged) are answered from a read
        // transaction, so they never queue for the single writer.
        {
            let txn = self.read()?;
            let tokens = txn
                .open_table(REFRESH_TOKENS)
                .map_err(store("open refresh tokens"))?;
            if tokens
                .get(old)
                .map_err(store("read refresh token"))?
                .is_none()
            {
                return Ok(RefreshOutcome::Invalid);
            }
        }
        let mut expired = None;
        let txn = self.write()?;
        let outcome = {
            let mut tokens = txn
                .open_table(REFRESH_TOKENS)
                .map_err(store("open refresh tokens"))?;
            let link: RefreshRecord = match tokens.get(old).map_err(store("read refresh token"))? {
                Some(bytes) => codec::decode("refresh token", bytes.value())?,
                None => return Ok(RefreshOutcome::Invalid),
            };
            let mut sessions = txn.open_table(SESSIONS).map_err(store("open sessions"))?;
            let id = link.session_id;
            let mut record: SessionRecord = match sessions.get(id).map_err(store("read session"))? {
                Some(bytes) => codec::decode(&what(id), bytes.value())?,
                None => return Ok(RefreshOutcome::Invalid),
            };
            let mut keys = txn
                .open_table(SESSION_KEYS)
                .map_err(store("open session keys"))?;
            if record.current_hash != *old {
                sessions.remove(id).map_err(store("revoke session"))?;
                keys.remove(id).map_err(store("revoke session key"))?;
                RefreshOutcome::Reused {
                    session_id: id,
                    user_id: record.user_id,
                }
            } else if record.expires_ms <= now_ms {
                sessions.remove(id).map_err(store("expire session"))?;
                keys.remove(id).map_err(store("expire session key"))?;
                expired = Some(id);
                RefreshOutcome::Invalid
            } else {
                record.current_hash = *new;
                record.last_used_ms = now_ms;
                record.expires_ms = now_ms.saturating_add(ttl_ms);
                sessions
                    .insert(id, codec::encode(&what(id), &record)?.as_slice())
                    .map_err(store("write session"))?;
                let link = RefreshRecord {
                    session_id: id,
                    issued_ms: now_ms,
                };
                tokens
                    .insert(new, codec::encode("refresh token", &link)?.as_slice())
                    .map_err(store("write refresh token"))?;
                let existing = keys
                    .get(id)
                    .map_err(store("read session key"))?
                    .map(|k| k.value());
                let key = match existing {
                    Some(k) => k,
                    None => {
                        keys.insert(id, key_if_none)
                            .map_err(store("write session key"))?;
                        key_if_none
                    }
                };
                RefreshOutcome::Rotated(record, key)
            }
        };
        txn.commit().map_err(store("commit refresh"))?;
        match &outcome {
            RefreshOutcome::Rotated(record, key) => {
                self.active_sessions_mut().insert(
                    record.id,
                    ActiveSession {
                        user_id: record.user_id,
                        key: Some(*key),
                    },
                );
            }
            RefreshOutcome::Reused { session_id, .. } => {
                self.active_sessions_mut().remove(session_id);
            }
            RefreshOutcome::Invalid => {
                if let Some(id) = expired {
                    self.active_sessions_mut().remove(&id);
                }
            }
        }
        Ok(outcome)
    }

    /// The live family whose *current* refresh token hashes to `hash`.
    pub fn session_by_refresh(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionRecord>, CatalogError> {
        let txn = self.read()?;
        let tokens = txn
            .open_table(REFRESH_TOKENS)
            .map_err(store("open refresh tokens"))?;
        let link: RefreshRecord = match tokens.get(hash).map_err(store("read refresh token"))? {
            Some(bytes) => codec::decode("refresh token", bytes.value())?,
            None => return Ok(None),
        };
        let sessions = txn.open_table(SESSIONS).map_err(store("open sessions"))?;
        let id = link.session_id;
        let Some(bytes) = sessions.get(id).map_err(store("read session"))? else {
            return Ok(None);
        };
        let record: SessionRecord = codec::decode(&what(id), bytes.value())?;
        Ok((record.current_hash == *hash).then_some(record))
    }

    /// Revokes family `session_id` of `user_id`. False when there is none.
    pub fn revoke_session(&self, user_id: u64, session_id: u64) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        let removed = {
            let mut sessions = txn.open_table(SESSIONS).map_err(store("open sessions"))?;
            let owned = match sessions.get(session_id).map_err(store("read session"))? {
                Some(bytes) => {
                    let record: SessionRecord = codec::decode(&what(session_id), bytes.value())?;
                    record.user_id == user_id
                }
                None => false,
            };
            if owned {
                sessions
                    .remove(session_id)
                    .map_err(store("revoke session"))?;
                txn.open_table(SESSION_KEYS)
                    .map_err(store("open session keys"))?
                    .remove(session_id)
                    .map_err(store("revoke session key"))?;
            }
            owned
        };
        txn.commit().map_err(store("commit revoke"))?;
        if removed {
            self.active_sessions_mut().remove(&session_id);
        }
        Ok(removed)
    }

    /// After families were removed in a transaction that committed: drops
    /// them from the in-memory mirror, so their tokens are refused at once.
    pub(super) fn forget_sessions(&self, ids: &[u64]) {
        let mut active = self.active_sessions_mut();
        for id in ids {
            active.remove(id);
        }
    }

    /// Revokes every family of `user_id` except `keep`; returns the revoked ids.
    pub fn revoke_user_sessions(
        &self,
        user_id: u64,
        keep: Option<u64>,
    ) -> Result<Vec<u64>, CatalogError> {
        let victims: Vec<u64> = self
            .sessions_of(user_id)?
            .into_iter()
            .map(|s| s.id)
            .filter(|id| Some(*id) != keep)
            .collect();
        let txn = self.write()?;
        {
            let mut sessions = txn.open_table(SESSIONS).map_err(store("open sessions"))?;
            let mut keys = txn
                .open_table(SESSION_KEYS)
                .map_err(store("open session keys"))?;
            for id in &victims {
                sessions.remove(*id).map_err(store("revoke session"))?;
                keys.remove(*id).map_err(store("revoke session key"))?;
            }
        }
        txn.commit().map_err(store("commit revoke"))?;
        let mut active = self.active_sessions_mut();
        for id in &victims {
            active.remove(id);
        }
        Ok(victims)
    }

    /// The live families of `user_id`, oldest first.
    pub fn sessions_of(&self, user_id: u64) -> Result<Vec<SessionRecord>, CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(SESSIONS).map_err(store("open sessions"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(store("scan sessions"))? {
            let (id, bytes) = entry.map_err(store("scan sessions"))?;
            let record: SessionRecord = codec::decode(&what(id.value()), bytes.value())?;
            if record.user_id == user_id {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Deletes expired families and refresh-token hashes that can no longer
    /// matter (family gone, or issued longer than `ttl_ms` ago). Returns how
    /// many records went. Run at start and then now and then.
    pub fn purge_sessions(&self, now_ms: i64, ttl_ms: i64) -> Result<usize, CatalogError> {
        let txn = self.write()?;
        let mut purged = 0;
        {
            let mut sessions = txn.open_table(SESSIONS).map_err(store("open sessions"))?;
            let mut live = std::collections::HashSet::new();
            let mut dead = Vec::new();
            for entry in sessions.iter().map_err(store("scan sessions"))? {
                let (id, bytes) = entry.map_err(store("scan sessions"))?;
                let record: SessionRecord = codec::decode(&what(id.value()), bytes.value())?;
                if record.expires_ms <= now_ms {
                    dead.push(record.id);
                } else {
                    live.insert(record.id);
                }
            }
            for id in dead {
                sessions.remove(id).map_err(store("purge session"))?;
                purged += 1;
            }
            // Keys of families that are gone (and, after a crash between two
            // commits of an older version, any orphan).
            let mut keys = txn
                .open_table(SESSION_KEYS)
                .map_err(store("open session keys"))?;
            let mut orphans = Vec::new();
            for entry in keys.iter().map_err(store("scan session keys"))? {
                let (id, _) = entry.map_err(store("scan session keys"))?;
                if !live.contains(&id.value()) {
                    orphans.push(id.value());
                }
            }
            for id in orphans {
                keys.remove(id).map_err(store("purge session key"))?;
            }
            let mut tokens = txn
                .open_table(REFRESH_TOKENS)
                .map_err(store("open refresh tokens"))?;
            let mut stale = Vec::new();
            for entry in tokens.iter().map_err(store("scan refresh tokens"))? {
                let (hash, bytes) = entry.map_err(store("scan refresh tokens"))?;
                let link: RefreshRecord = codec::decode("refresh token", bytes.value())?;
                if !live.contains(&link.session_id)
                    || link.issued_ms.saturating_add(ttl_ms) <= now_ms
                {
                    stale.push(*hash.value());
                }
            }
            for hash in stale {
                tokens.remove(&hash).map_err(store("purge refresh token"))?;
                purged += 1;
            }
        }
        txn.commit().map_err(store("commit purge"))?;
        self.load_active_sessions()?;
        Ok(purged)
    }
}
