//! Server settings kept in the catalog: the generated JWT secret and the
//! registration policy an admin can change at run time.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::error::store;
use super::{Catalog, CatalogError, SETTINGS, codec};

const SERVER_KEY: &str = "server";
const JWT_SECRET_KEY: &str = "jwt_secret";

/// Settings an admin changes through `PUT /api/admin/settings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSettingsRecord {
    /// Self-registration stays open after the first account.
    pub open_registration: bool,
}

pub(super) fn read_server_settings(
    txn: &WriteTransaction,
) -> Result<ServerSettingsRecord, CatalogError> {
    let table = txn.open_table(SETTINGS).map_err(store("open settings"))?;
    let Some(bytes) = table.get(SERVER_KEY).map_err(store("read settings"))? else {
        return Ok(ServerSettingsRecord::default());
    };
    codec::decode("server settings", bytes.value())
}

impl Catalog {
    pub fn server_settings(&self) -> Result<ServerSettingsRecord, CatalogError> {
        let txn = self.read()?;
        let table = txn.open_table(SETTINGS).map_err(store("open settings"))?;
        let Some(bytes) = table.get(SERVER_KEY).map_err(store("read settings"))? else {
            return Ok(ServerSettingsRecord::default());
        };
        codec::decode("server settings", bytes.value())
    }

    pub fn set_server_settings(&self, settings: &ServerSettingsRecord) -> Result<(), CatalogError> {
        let txn = self.write()?;
        {
            let mut table = txn.open_table(SETTINGS).map_err(store("open settings"))?;
            table
                .insert(
                    SERVER_KEY,
                    codec::encode("server settings", settings)?.as_slice(),
                )
                .map_err(store("write settings"))?;
        }
        txn.commit().map_err(store("commit settings"))
    }

    /// The stored JWT secret; when there is none yet, stores `candidate` (fresh
    /// random bytes from the caller) and returns it.
    pub fn jwt_secret_or_insert(&self, candidate: &[u8]) -> Result<Vec<u8>, CatalogError> {
        let txn = self.write()?;
        let secret = {
            let mut table = txn.open_table(SETTINGS).map_err(store("open settings"))?;
            let existing: Option<Vec<u8>> =
                match table.get(JWT_SECRET_KEY).map_err(store("read settings"))? {
                    Some(bytes) => Some(codec::decode("jwt secret", bytes.value())?),
                    None => None,
                };
            match existing {
                Some(secret) => secret,
                None => {
                    let secret = candidate.to_vec();
                    table
                        .insert(
                            JWT_SECRET_KEY,
                            codec::encode("jwt secret", &secret)?.as_slice(),
                        )
                        .map_err(store("write settings"))?;
                    secret
                }
            }
        };
        txn.commit().map_err(store("commit settings"))?;
        Ok(secret)
    }
}
