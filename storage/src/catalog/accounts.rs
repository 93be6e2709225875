//! Managing accounts (what an admin does to other users): accounts created
//! by an admin, invitations, disabling, password resets, the admin flag and
//! deletion. Every change that must hold together (a flag and the end of the
//! user's sessions, the last admin, a single-use invitation) is one
//! transaction.
//!
//! Invitations are kept by the SHA-256 of their token (the link), like every
//! other secret of the catalog: `invitations`, hash → [`InvitationRecord`].

use std::collections::HashSet;
use std::sync::PoisonError;

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::agents::AgentRecord;
use super::error::store;
use super::users::{UserRecord, decode_user, encode_user, what};
use super::{
    AGENT_TOKENS, AGENTS, ALERT_COUNTS, ALERTS, Catalog, CatalogError, INVITATIONS, RECIPIENTS,
    SESSION_KEYS, SESSIONS, TokenHash, USERNAMES, USERS, codec, next_id,
};

/// A pending invitation: whoever opens the link before `expires_ms` creates
/// the account `username` with a password of their choice, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRecord {
    pub username: String,
    pub created_by: u64,
    pub created_ms: i64,
    pub expires_ms: i64,
}

/// What [`Catalog::delete_user`] removed, for the caller to finish: the time
/// series, rules and alert history of each agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedUser {
    pub user: UserRecord,
    pub agent_ids: Vec<u64>,
    pub session_ids: Vec<u64>,
}

/// Whether `id` may lose its admin power (or its access) without leaving no
/// enabled admin at all.
fn check_not_last_admin(
    users: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<(), CatalogError> {
    let mut others = 0;
    for entry in users.iter().map_err(store("scan users"))? {
        let (uid, bytes) = entry.map_err(store("scan users"))?;
        let uid = uid.value();
        if uid == id {
            continue;
        }
        let u = decode_user(&what(uid), bytes.value())?;
        if u.is_admin && !u.disabled {
            others += 1;
        }
    }
    if others == 0 {
        return Err(CatalogError::LastAdmin);
    }
    Ok(())
}

/// Removes every session family of `user_id` inside `txn`; returns their ids.
fn remove_sessions(txn: &WriteTransaction, user_id: u64) -> Result<Vec<u64>, CatalogError> {
    let mut sessions = txn.open_table(SESSIONS).map_err(store("open sessions"))?;
    let mut victims = Vec::new();
    for entry in sessions.iter().map_err(store("scan sessions"))? {
        let (id, bytes) = entry.map_err(store("scan sessions"))?;
        let record: super::SessionRecord =
            codec::decode(&format!("session {}", id.value()), bytes.value())?;
        if record.user_id == user_id {
            victims.push(record.id);
        }
    }
    let mut keys = txn
        .open_table(SESSION_KEYS)
        .map_err(store("open session keys"))?;
    for id in &victims {
        sessions.remove(*id).map_err(store("revoke session"))?;
        keys.remove(*id).map_err(store("revoke session key"))?;
    }
    Ok(victims)
}

/// Inserts a new, enabled, non-admin user inside `txn`.
fn insert_user(
    txn: &WriteTransaction,
    username: &str,
    password_hash: &str,
    must_change_password: bool,
    now_ms: i64,
) -> Result<UserRecord, CatalogError> {
    let mut users = txn.open_table(USERS).map_err(store("open users"))?;
    let mut names = txn.open_table(USERNAMES).map_err(store("open usernames"))?;
    if names
        .get(username)
        .map_err(store("read usernames"))?
        .is_some()
    {
        return Err(CatalogError::UsernameTaken {
            username: username.to_string(),
        });
    }
    let id = next_id(txn, "user")?;
    let record = UserRecord {
        id,
        username: username.to_string(),
        password_hash: password_hash.to_string(),
        is_admin: false,
        created_ms: now_ms,
        disabled: false,
        must_change_password,
        last_login_ms: None,
    };
    users
        .insert(id, encode_user(&record)?.as_slice())
        .map_err(store("write user"))?;
    names
        .insert(username, id)
        .map_err(store("write usernames"))?;
    Ok(record)
}

/// Whether an unexpired invitation other than `except` names `username`.
fn invited(
    txn: &WriteTransaction,
    username: &str,
    now_ms: i64,
    except: Option<&TokenHash>,
) -> Result<bool, CatalogError> {
    let table = txn
        .open_table(INVITATIONS)
        .map_err(store("open invitations"))?;
    for entry in table.iter().map_err(store("scan invitations"))? {
        let (hash, bytes) = entry.map_err(store("scan invitations"))?;
        if Some(hash.value()) == except {
            continue;
        }
        let inv: InvitationRecord = codec::decode("invitation", bytes.value())?;
        if inv.username == username && inv.expires_ms > now_ms {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Catalog {
    /// Loads the users who must change their password into memory.
    pub(super) fn load_restricted_users(&self) -> Result<(), CatalogError> {
        let restricted: HashSet<u64> = self
            .users()?
            .into_iter()
            .filter(|u| u.must_change_password)
            .map(|u| u.id)
            .collect();
        *self
            .restricted_users
            .write()
            .unwrap_or_else(PoisonError::into_inner) = restricted;
        Ok(())
    }

    /// Keeps the in-memory mirror in step after `record` was stored.
    pub(super) fn note_user(&self, record: &UserRecord) {
        let mut set = self
            .restricted_users
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if record.must_change_password {
            set.insert(record.id);
        } else {
            set.remove(&record.id);
        }
    }

    /// Whether `user_id` must change its password before doing anything
    /// else. Memory only: checked on every authenticated request.
    pub fn must_change_password(&self, user_id: u64) -> bool {
        self.restricted_users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&user_id)
    }

    /// An account created by an admin, whatever the registration policy:
    /// not an admin, enabled, and (with a one-time password) bound to choose
    /// its own password at the first log-in.
    pub fn create_user_as_admin(
        &self,
        username: &str,
        password_hash: &str,
        must_change_password: bool,
        now_ms: i64,
    ) -> Result<UserRecord, CatalogError> {
        let txn = self.write()?;
        if invited(&txn, username, now_ms, None)? {
            return Err(CatalogError::UsernameTaken {
                username: username.to_string(),
            });
        }
        let record = insert_user(&txn, username, password_hash, must_change_password, now_ms)?;
        txn.commit().map_err(store("commit user"))?;
        self.note_user(&record);
        Ok(record)
    }

    /// Number of agents per owner.
    pub fn agent_counts(&self) -> Result<std::collections::HashMap<u64, u64>, CatalogError> {
        let txn = self.read()?;
        let agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
        let mut out = std::collections::HashMap::new();
        for entry in agents.iter().map_err(store("scan agents"))? {
            let (id, bytes) = entry.map_err(store("scan agents"))?;
            let a = super::agents::decode_agent(&format!("agent {}", id.value()), bytes.value())?;
            *out.entry(a.owner_id).or_insert(0) += 1;
        }
        Ok(out)
    }

    /// Notes a successful log-in.
    pub fn record_login(&self, id: u64, now_ms: i64) -> Result<(), CatalogError> {
        self.update_user(id, |u| {
            u.last_login_ms = Some(now_ms);
            Ok(())
        })?;
        Ok(())
    }

    /// Disables (ending every session in the same transaction) or enables
    /// user `id`. Returns the user and the ended sessions; `None` when there
    /// is no such user. Disabling the last enabled admin is refused.
    pub fn set_user_disabled(
        &self,
        id: u64,
        disabled: bool,
    ) -> Result<Option<(UserRecord, Vec<u64>)>, CatalogError> {
        let txn = self.write()?;
        let (record, ended) = {
            let mut users = txn.open_table(USERS).map_err(store("open users"))?;
            let mut record = match users.get(id).map_err(store("read user"))? {
                Some(bytes) => decode_user(&what(id), bytes.value())?,
                None => return Ok(None),
            };
            if disabled && record.is_admin && !record.disabled {
                check_not_last_admin(&users, id)?;
            }
            record.disabled = disabled;
            users
                .insert(id, encode_user(&record)?.as_slice())
                .map_err(store("write user"))?;
            let ended = if disabled {
                remove_sessions(&txn, id)?
            } else {
                Vec::new()
            };
            (record, ended)
        };
        txn.commit().map_err(store("commit user"))?;
        self.forget_sessions(&ended);
        self.note_user(&record);
        Ok(Some((record, ended)))
    }

    /// Grants or removes admin power. Removing it from the last enabled
    /// admin is refused.
    pub fn set_user_admin(&self, id: u64, admin: bool) -> Result<Option<UserRecord>, CatalogError> {
        let txn = self.write()?;
        let record = {
            let mut users = txn.open_table(USERS).map_err(store("open users"))?;
            let mut record = match users.get(id).map_err(store("read user"))? {
                Some(bytes) => decode_user(&what(id), bytes.value())?,
                None => return Ok(None),
            };
            if !admin && record.is_admin {
                check_not_last_admin(&users, id)?;
            }
            record.is_admin = admin;
            users
                .insert(id, encode_user(&record)?.as_slice())
                .map_err(store("write user"))?;
            record
        };
        txn.commit().map_err(store("commit user"))?;
        Ok(Some(record))
    }

    /// Sets a one-time password: the user must choose a new one at the next
    /// log-in, and every session ends now. Returns the ended sessions.
    pub fn reset_password(
        &self,
        id: u64,
        password_hash: &str,
    ) -> Result<Option<(UserRecord, Vec<u64>)>, CatalogError> {
        let txn = self.write()?;
        let (record, ended) = {
            let mut users = txn.open_table(USERS).map_err(store("open users"))?;
            let mut record = match users.get(id).map_err(store("read user"))? {
                Some(bytes) => decode_user(&what(id), bytes.value())?,
                None => return Ok(None),
            };
            record.password_hash = password_hash.to_string();
            record.must_change_password = true;
            users
                .insert(id, encode_user(&record)?.as_slice())
                .map_err(store("write user"))?;
            (record, remove_sessions(&txn, id)?)
        };
        txn.commit().map_err(store("commit user"))?;
        self.forget_sessions(&ended);
        self.note_user(&record);
        Ok(Some((record, ended)))
    }

    /// Deletes user `id` with its sessions, agents (and their tokens),
    /// notification settings and alert history, in one transaction. The
    /// caller then deletes each agent's time series and rules. The last
    /// enabled admin cannot be deleted.
    pub fn delete_user(&self, id: u64) -> Result<Option<DeletedUser>, CatalogError> {
        let txn = self.write()?;
        let (user, agents, session_ids) = {
            let mut users = txn.open_table(USERS).map_err(store("open users"))?;
            let user = match users.get(id).map_err(store("read user"))? {
                Some(bytes) => decode_user(&what(id), bytes.value())?,
                None => return Ok(None),
            };
            if user.is_admin && !user.disabled {
                check_not_last_admin(&users, id)?;
            }
            users.remove(id).map_err(store("delete user"))?;
            txn.open_table(USERNAMES)
                .map_err(store("open usernames"))?
                .remove(user.username.as_str())
                .map_err(store("delete username"))?;
            let session_ids = remove_sessions(&txn, id)?;
            let mut agents = txn.open_table(AGENTS).map_err(store("open agents"))?;
            let mut theirs: Vec<AgentRecord> = Vec::new();
            for entry in agents.iter().map_err(store("scan agents"))? {
                let (aid, bytes) = entry.map_err(store("scan agents"))?;
                let a =
                    super::agents::decode_agent(&format!("agent {}", aid.value()), bytes.value())?;
                if a.owner_id == id {
                    theirs.push(a);
                }
            }
            let mut tokens = txn
                .open_table(AGENT_TOKENS)
                .map_err(store("open agent tokens"))?;
            for a in &theirs {
                agents.remove(a.id).map_err(store("delete agent"))?;
                super::shares::remove_agent_shares(&txn, a.id)?;
                super::check_runners::remove_agent(&txn, a.id)?;
                tokens
                    .remove(&a.token_hash)
                    .map_err(store("remove agent token"))?;
            }
            txn.open_table(RECIPIENTS)
                .map_err(store("open recipients"))?
                .remove(id)
                .map_err(store("delete recipient"))?;
            let mut alerts = txn.open_table(ALERTS).map_err(store("open alerts"))?;
            let keys: Vec<(u64, u64)> = alerts
                .range((id, 0)..=(id, u64::MAX))
                .map_err(store("scan alerts"))?
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()
                .map_err(store("scan alerts"))?;
            for key in keys {
                alerts.remove(key).map_err(store("delete alert"))?;
            }
            txn.open_table(ALERT_COUNTS)
                .map_err(store("open alert counts"))?
                .remove(id)
                .map_err(store("delete alert count"))?;
            super::shares::remove_user_shares(&txn, id)?;
            txn.open_table(super::USER_TOTP)
                .map_err(store("open user totp"))?
                .remove(id)
                .map_err(store("delete user totp"))?;
            (user, theirs, session_ids)
        };
        txn.commit().map_err(store("commit delete user"))?;
        self.forget_sessions(&session_ids);
        self.restricted_users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        self.totp_users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        for a in &agents {
            self.forget_agent(a);
        }
        Ok(Some(DeletedUser {
            user,
            agent_ids: agents.iter().map(|a| a.id).collect(),
            session_ids,
        }))
    }

    /// Stores an invitation for `username`, valid until `expires_ms`. A taken
    /// name, or one with a pending invitation, is refused.
    pub fn create_invitation(
        &self,
        hash: &TokenHash,
        invitation: &InvitationRecord,
    ) -> Result<(), CatalogError> {
        let txn = self.write()?;
        {
            let names = txn.open_table(USERNAMES).map_err(store("open usernames"))?;
            if names
                .get(invitation.username.as_str())
                .map_err(store("read usernames"))?
                .is_some()
                || invited(&txn, &invitation.username, invitation.created_ms, None)?
            {
                return Err(CatalogError::UsernameTaken {
                    username: invitation.username.clone(),
                });
            }
            let mut table = txn
                .open_table(INVITATIONS)
                .map_err(store("open invitations"))?;
            // Expired ones go now: the table stays as small as what is pending.
            let mut stale = Vec::new();
            for entry in table.iter().map_err(store("scan invitations"))? {
                let (h, bytes) = entry.map_err(store("scan invitations"))?;
                let inv: InvitationRecord = codec::decode("invitation", bytes.value())?;
                if inv.expires_ms <= invitation.created_ms {
                    stale.push(*h.value());
                }
            }
            for h in stale {
                table.remove(&h).map_err(store("purge invitation"))?;
            }
            table
                .insert(hash, codec::encode("invitation", invitation)?.as_slice())
                .map_err(store("write invitation"))?;
        }
        txn.commit().map_err(store("commit invitation"))
    }

    /// The invitation of `hash`, if any (expired or not).
    pub fn invitation(&self, hash: &TokenHash) -> Result<Option<InvitationRecord>, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(INVITATIONS)
            .map_err(store("open invitations"))?;
        match table.get(hash).map_err(store("read invitation"))? {
            Some(bytes) => codec::decode("invitation", bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Pending (unexpired) invitations.
    pub fn invitations(&self, now_ms: i64) -> Result<Vec<InvitationRecord>, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(INVITATIONS)
            .map_err(store("open invitations"))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(store("scan invitations"))? {
            let (_, bytes) = entry.map_err(store("scan invitations"))?;
            let inv: InvitationRecord = codec::decode("invitation", bytes.value())?;
            if inv.expires_ms > now_ms {
                out.push(inv);
            }
        }
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }

    /// Revokes every invitation for `username` (expired ones too): the link
    /// no longer works and the name is free again. False when there was no
    /// pending (unexpired) one.
    pub fn revoke_invitation(&self, username: &str, now_ms: i64) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        let mut pending = false;
        {
            let mut table = txn
                .open_table(INVITATIONS)
                .map_err(store("open invitations"))?;
            let mut hashes: Vec<TokenHash> = Vec::new();
            for entry in table.iter().map_err(store("scan invitations"))? {
                let (hash, bytes) = entry.map_err(store("scan invitations"))?;
                let inv: InvitationRecord = codec::decode("invitation", bytes.value())?;
                if inv.username == username {
                    pending |= inv.expires_ms > now_ms;
                    hashes.push(*hash.value());
                }
            }
            for hash in hashes {
                table.remove(&hash).map_err(store("delete invitation"))?;
            }
        }
        txn.commit().map_err(store("commit invitations"))?;
        Ok(pending)
    }

    /// Uses invitation `hash` once: creates its account with
    /// `password_hash` and removes the invitation, in one transaction.
    pub fn accept_invitation(
        &self,
        hash: &TokenHash,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<UserRecord, CatalogError> {
        let txn = self.write()?;
        let inv: InvitationRecord = {
            let table = txn
                .open_table(INVITATIONS)
                .map_err(store("open invitations"))?;
            let found = table.get(hash).map_err(store("read invitation"))?;
            match found {
                Some(bytes) => codec::decode("invitation", bytes.value())?,
                None => return Err(CatalogError::InvitationInvalid),
            }
        };
        if inv.expires_ms <= now_ms {
            return Err(CatalogError::InvitationExpired);
        }
        txn.open_table(INVITATIONS)
            .map_err(store("open invitations"))?
            .remove(hash)
            .map_err(store("use invitation"))?;
        let record = insert_user(&txn, &inv.username, password_hash, false, now_ms)?;
        txn.commit().map_err(store("commit invitation"))?;
        Ok(record)
    }
}
