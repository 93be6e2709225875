//! User accounts: name (lower-case, unique), Argon2 PHC hash, admin flag,
//! and (record version 2, data format 4) whether the account is disabled,
//! must change its password, and when it last logged in. Version-1 records
//! are read as accounts that are enabled, need no change and never logged in;
//! they are rewritten as version 2 the next time they change.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::error::store;
use super::settings::read_server_settings;
use super::{Catalog, CatalogError, USERNAMES, USERS, codec, next_id};

/// A user as stored (record version 2). `password_hash` is an Argon2 PHC
/// string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: u64,
    /// Lower-case; unique.
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_ms: i64,
    /// Disabled by an admin: cannot log in; the agents keep reporting.
    pub disabled: bool,
    /// Set by a password reset: the account may only change its password
    /// (and log out) until it does.
    pub must_change_password: bool,
    pub last_login_ms: Option<i64>,
}

/// The layout of record version 1 (data formats 1 to 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecordV1 {
    pub id: u64,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_ms: i64,
}

impl From<UserRecordV1> for UserRecord {
    fn from(v: UserRecordV1) -> UserRecord {
        UserRecord {
            id: v.id,
            username: v.username,
            password_hash: v.password_hash,
            is_admin: v.is_admin,
            created_ms: v.created_ms,
            disabled: false,
            must_change_password: false,
            last_login_ms: None,
        }
    }
}

pub(super) fn what(id: u64) -> String {
    format!("user {id}")
}

/// Reads a user record of either version.
pub fn decode_user(what: &str, bytes: &[u8]) -> Result<UserRecord, CatalogError> {
    match codec::split(what, bytes)? {
        (codec::VERSION_1, body) => codec::decode_body::<UserRecordV1>(what, body).map(Into::into),
        (codec::VERSION_2, body) => codec::decode_body(what, body),
        (v, _) => Err(codec::unknown_version(what, v)),
    }
}

/// Writes a user record (always the newest version).
pub fn encode_user(record: &UserRecord) -> Result<Vec<u8>, CatalogError> {
    codec::encode_as(codec::VERSION_2, &what(record.id), record)
}

impl Catalog {
    /// How many accounts exist.
    pub fn user_count(&self) -> Result<u64, CatalogError> {
        let txn = self.read()?;
        let users = txn.open_table(USERS).map_err(store("open users"))?;
        users.len().map_err(store("count users"))
    }

    /// Creates an account in one transaction that also enforces the
    /// registration policy, so two concurrent first registrations cannot both
    /// become admin: the first account is always allowed and is the admin;
    /// later ones only when `open_by_config` or the stored setting allows.
    /// `username` must already be lower-case and valid.
    pub fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        open_by_config: bool,
        now_ms: i64,
    ) -> Result<UserRecord, CatalogError> {
        let txn = self.write()?;
        let record = {
            let mut users = txn.open_table(USERS).map_err(store("open users"))?;
            let mut names = txn.open_table(USERNAMES).map_err(store("open usernames"))?;
            let count = users.len().map_err(store("count users"))?;
            if count > 0 && !open_by_config && !read_server_settings(&txn)?.open_registration {
                return Err(CatalogError::RegistrationClosed);
            }
            if names
                .get(username)
                .map_err(store("read usernames"))?
                .is_some()
            {
                return Err(CatalogError::UsernameTaken {
                    username: username.to_string(),
                });
            }
            let id = next_id(&txn, "user")?;
            let record = UserRecord {
                id,
                username: username.to_string(),
                password_hash: password_hash.to_string(),
                is_admin: count == 0,
                created_ms: now_ms,
                disabled: false,
                must_change_password: false,
                last_login_ms: None,
            };
            users
                .insert(id, encode_user(&record)?.as_slice())
                .map_err(store("write user"))?;
            names
                .insert(username, id)
                .map_err(store("write usernames"))?;
            record
        };
        txn.commit().map_err(store("commit user"))?;
        Ok(record)
    }

    /// The user with this id.
    pub fn user(&self, id: u64) -> Result<Option<UserRecord>, CatalogError> {
        let txn = self.read()?;
        let users = txn.open_table(USERS).map_err(store("open users"))?;
        let Some(bytes) = users.get(id).map_err(store("read user"))? else {
            return Ok(None);
        };
        decode_user(&what(id), bytes.value()).map(Some)
    }

    /// The user with this (lower-case) name.
    pub fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, CatalogError> {
        let id = {
            let txn = self.read()?;
            let names = txn.open_table(USERNAMES).map_err(store("open usernames"))?;
            match names.get(username).map_err(store("read usernames"))? {
                Some(id) => id.value(),
                None => return Ok(None),
            }
        };
        self.user(id)
    }

    /// Replaces the password hash (the user chose it: no change is required
    /// any more). False when the user does not exist.
    pub fn set_password_hash(&self, id: u64, password_hash: &str) -> Result<bool, CatalogError> {
        let updated = self.update_user(id, |record| {
            record.password_hash = password_hash.to_string();
            record.must_change_password = false;
            Ok(())
        })?;
        Ok(updated.is_some())
    }

    /// Loads user `id` in a write transaction, applies `f`, stores it.
    /// `None` when there is no such user.
    pub(super) fn update_user(
        &self,
        id: u64,
        f: impl FnOnce(&mut UserRecord) -> Result<(), CatalogError>,
    ) -> Result<Option<UserRecord>, CatalogError> {
        let txn = self.write()?;
        let record = {
            let mut users = txn.open_table(USERS).map_err(store("open users"))?;
            let mut record = match users.get(id).map_err(store("read user"))? {
                Some(bytes) => decode_user(&what(id), bytes.value())?,
                None => return Ok(None),
            };
            f(&mut record)?;
            users
                .insert(id, encode_user(&record)?.as_slice())
                .map_err(store("write user"))?;
            record
        };
        txn.commit().map_err(store("commit user"))?;
        self.note_user(&record);
        Ok(Some(record))
    }

    /// Every user, by id.
    pub fn users(&self) -> Result<Vec<UserRecord>, CatalogError> {
        let txn = self.read()?;
        let users = txn.open_table(USERS).map_err(store("open users"))?;
        let mut out = Vec::new();
        for entry in users.iter().map_err(store("scan users"))? {
            let (id, bytes) = entry.map_err(store("scan users"))?;
            out.push(decode_user(&what(id.value()), bytes.value())?);
        }
        Ok(out)
    }
}
