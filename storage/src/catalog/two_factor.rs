//! Two-factor log-in (TOTP, RFC 6238): `user_totp`, user id →
//! [`TotpRecord`]. The secret is kept as it is (the catalog already holds
//! the JWT secret and is private to the server's user); the ten recovery
//! codes only as SHA-256 hashes (they are random, 49 bits each, so a fast
//! hash suffices), each removed when used.
//!
//! Replay: the last time step a code was accepted for is stored, and a code
//! is accepted only for a later step ([`Catalog::use_totp_step`], one
//! transaction), so a code seen over someone's shoulder is dead once used.
//!
//! The policy "every account needs two-factor" is the setting `accounts`.
//! Both it and the set of users with two-factor on are mirrored in memory,
//! since every authenticated request asks [`Catalog::restriction`].

use std::collections::HashSet;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::error::store;
use super::{Catalog, CatalogError, SETTINGS, TokenHash, USER_TOTP, codec};

const POLICY_KEY: &str = "accounts";

/// A user's TOTP enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpRecord {
    /// The shared secret (20 random bytes).
    pub secret: Vec<u8>,
    /// False between enrolment and the first correct code.
    pub confirmed: bool,
    /// The last time step (Unix seconds / 30) a code was accepted for.
    pub last_step: u64,
    /// SHA-256 of each recovery code not used yet.
    pub recovery: Vec<TokenHash>,
    pub created_ms: i64,
}

/// Account-wide rules an admin sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPolicyRecord {
    /// Every account must have two-factor log-in; one without it may only
    /// enrol until it has.
    pub require_two_factor: bool,
}

/// What an account must do before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    /// Logged in with a one-time password: choose a new one.
    ChangePassword,
    /// Two-factor log-in is required and this account has none yet.
    EnrolTwoFactor,
}

fn what(id: u64) -> String {
    format!("two-factor of user {id}")
}

impl Catalog {
    pub(super) fn load_two_factor(&self) -> Result<(), CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(USER_TOTP).map_err(store("open user totp"))?;
        let mut on = HashSet::new();
        for entry in table.iter().map_err(store("scan user totp"))? {
            let (id, bytes) = entry.map_err(store("scan user totp"))?;
            let r: TotpRecord = codec::decode(&what(id.value()), bytes.value())?;
            if r.confirmed {
                on.insert(id.value());
            }
        }
        *self
            .totp_users
            .write()
            .unwrap_or_else(PoisonError::into_inner) = on;
        let settings = txn.open_table(SETTINGS).map_err(store("open settings"))?;
        let policy: AccountPolicyRecord =
            match settings.get(POLICY_KEY).map_err(store("read settings"))? {
                Some(bytes) => codec::decode("account policy", bytes.value())?,
                None => AccountPolicyRecord::default(),
            };
        self.require_two_factor
            .store(policy.require_two_factor, Ordering::SeqCst);
        Ok(())
    }

    fn note_two_factor(&self, user_id: u64, on: bool) {
        let mut set = self
            .totp_users
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if on {
            set.insert(user_id);
        } else {
            set.remove(&user_id);
        }
    }

    /// Whether `user_id` has two-factor log-in on. Memory only.
    pub fn has_two_factor(&self, user_id: u64) -> bool {
        self.totp_users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&user_id)
    }

    /// What `user_id` must do first, if anything. Memory only: asked on
    /// every authenticated request.
    pub fn restriction(&self, user_id: u64) -> Option<Restriction> {
        if self.must_change_password(user_id) {
            Some(Restriction::ChangePassword)
        } else if self.require_two_factor.load(Ordering::SeqCst) && !self.has_two_factor(user_id) {
            Some(Restriction::EnrolTwoFactor)
        } else {
            None
        }
    }

    pub fn account_policy(&self) -> AccountPolicyRecord {
        AccountPolicyRecord {
            require_two_factor: self.require_two_factor.load(Ordering::SeqCst),
        }
    }

    pub fn set_account_policy(&self, policy: AccountPolicyRecord) -> Result<(), CatalogError> {
        let txn = self.write()?;
        txn.open_table(SETTINGS)
            .map_err(store("open settings"))?
            .insert(
                POLICY_KEY,
                codec::encode("account policy", &policy)?.as_slice(),
            )
            .map_err(store("write settings"))?;
        txn.commit().map_err(store("commit settings"))?;
        self.require_two_factor
            .store(policy.require_two_factor, Ordering::SeqCst);
        Ok(())
    }

    /// The TOTP enrolment of `user_id`, confirmed or not.
    pub fn totp(&self, user_id: u64) -> Result<Option<TotpRecord>, CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(USER_TOTP).map_err(store("open user totp"))?;
        match table.get(user_id).map_err(store("read user totp"))? {
            Some(bytes) => codec::decode(&what(user_id), bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Loads, changes and stores the enrolment of `user_id` in one
    /// transaction: `f` gets the current record and gives the new one
    /// (`None`: no enrolment) and the caller's answer.
    fn update_totp<T>(
        &self,
        user_id: u64,
        f: impl FnOnce(Option<TotpRecord>) -> (Option<TotpRecord>, T),
    ) -> Result<T, CatalogError> {
        let txn = self.write()?;
        let (out, on) = {
            let mut table = txn.open_table(USER_TOTP).map_err(store("open user totp"))?;
            let current: Option<TotpRecord> =
                match table.get(user_id).map_err(store("read user totp"))? {
                    Some(bytes) => Some(codec::decode(&what(user_id), bytes.value())?),
                    None => None,
                };
            let (new, out) = f(current);
            let on = new.as_ref().is_some_and(|r| r.confirmed);
            match new {
                Some(r) => {
                    table
                        .insert(user_id, codec::encode(&what(user_id), &r)?.as_slice())
                        .map_err(store("write user totp"))?;
                }
                None => {
                    table.remove(user_id).map_err(store("delete user totp"))?;
                }
            }
            (out, on)
        };
        txn.commit().map_err(store("commit user totp"))?;
        self.note_two_factor(user_id, on);
        Ok(out)
    }

    /// Starts (or restarts) an enrolment with `secret`. False, and nothing
    /// changed, when two-factor is already on.
    pub fn begin_totp(
        &self,
        user_id: u64,
        secret: &[u8],
        now_ms: i64,
    ) -> Result<bool, CatalogError> {
        self.update_totp(user_id, |current| match current {
            Some(r) if r.confirmed => (Some(r), false),
            _ => (
                Some(TotpRecord {
                    secret: secret.to_vec(),
                    confirmed: false,
                    last_step: 0,
                    recovery: Vec::new(),
                    created_ms: now_ms,
                }),
                true,
            ),
        })
    }

    /// Confirms a pending enrolment whose code of `step` was right, with the
    /// hashes of the recovery codes. False when there is no pending
    /// enrolment (none, or already confirmed).
    pub fn confirm_totp(
        &self,
        user_id: u64,
        step: u64,
        recovery: Vec<TokenHash>,
    ) -> Result<bool, CatalogError> {
        self.update_totp(user_id, |current| match current {
            Some(mut r) if !r.confirmed => {
                r.confirmed = true;
                r.last_step = step;
                r.recovery = recovery;
                (Some(r), true)
            }
            other => (other, false),
        })
    }

    /// Accepts a code of time step `step` once: true (and the step is
    /// remembered) when it is later than the last accepted one.
    pub fn use_totp_step(&self, user_id: u64, step: u64) -> Result<bool, CatalogError> {
        self.update_totp(user_id, |current| match current {
            Some(mut r) if r.confirmed && step > r.last_step => {
                r.last_step = step;
                (Some(r), true)
            }
            other => (other, false),
        })
    }

    /// Uses the recovery code hashing to `hash` once. Returns how many are
    /// left, or `None` when it is not (or no longer) one of them.
    pub fn use_recovery_code(
        &self,
        user_id: u64,
        hash: &TokenHash,
    ) -> Result<Option<usize>, CatalogError> {
        self.update_totp(user_id, |current| match current {
            Some(mut r) if r.confirmed && r.recovery.contains(hash) => {
                r.recovery.retain(|h| h != hash);
                let left = r.recovery.len();
                (Some(r), Some(left))
            }
            other => (other, None),
        })
    }

    /// Turns two-factor off for `user_id`. False when it was not on (or pending).
    pub fn remove_totp(&self, user_id: u64) -> Result<bool, CatalogError> {
        self.update_totp(user_id, |current| (None, current.is_some()))
    }
}
