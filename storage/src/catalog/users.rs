//! User accounts: name (lower-case, unique), Argon2 PHC hash, admin flag.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::error::store;
use super::settings::read_server_settings;
use super::{Catalog, CatalogError, USERNAMES, USERS, codec, next_id};

/// A user as stored. `password_hash` is an Argon2 PHC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: u64,
    /// Lower-case; unique.
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_ms: i64,
}

fn what(id: u64) -> String {
    format!("user {id}")
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
            };
            users
                .insert(id, codec::encode(&what(id), &record)?.as_slice())
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
        codec::decode(&what(id), bytes.value()).map(Some)
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

    /// Replaces the password hash. False when the user does not exist.
    pub fn set_password_hash(&self, id: u64, password_hash: &str) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        {
            let mut users = txn.open_table(USERS).map_err(store("open users"))?;
            let mut record: UserRecord = match users.get(id).map_err(store("read user"))? {
                Some(bytes) => codec::decode(&what(id), bytes.value())?,
                None => return Ok(false),
            };
            record.password_hash = password_hash.to_string();
            users
                .insert(id, codec::encode(&what(id), &record)?.as_slice())
                .map_err(store("write user"))?;
        }
        txn.commit().map_err(store("commit user"))?;
        Ok(true)
    }
}
