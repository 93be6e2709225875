//! Notification settings per user: Telegram chat id, webhook URL and the
//! webhook's signing secret (stored as given: the server needs it to sign).

use serde::{Deserialize, Serialize};

use super::error::store;
use super::{Catalog, CatalogError, RECIPIENTS, codec};

/// Where a user's notifications go. Empty means "not configured".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRecord {
    pub telegram_chat_id: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
}

fn what(owner_id: u64) -> String {
    format!("recipient of user {owner_id}")
}

impl Catalog {
    /// The settings of `owner_id` (all empty when never set).
    pub fn recipient(&self, owner_id: u64) -> Result<RecipientRecord, CatalogError> {
        let txn = self.read()?;
        let table = txn
            .open_table(RECIPIENTS)
            .map_err(store("open recipients"))?;
        let Some(bytes) = table.get(owner_id).map_err(store("read recipient"))? else {
            return Ok(RecipientRecord::default());
        };
        codec::decode(&what(owner_id), bytes.value())
    }

    pub fn set_recipient(
        &self,
        owner_id: u64,
        recipient: &RecipientRecord,
    ) -> Result<(), CatalogError> {
        let txn = self.write()?;
        {
            let mut table = txn
                .open_table(RECIPIENTS)
                .map_err(store("open recipients"))?;
            table
                .insert(
                    owner_id,
                    codec::encode(&what(owner_id), recipient)?.as_slice(),
                )
                .map_err(store("write recipient"))?;
        }
        txn.commit().map_err(store("commit recipient"))?;
        Ok(())
    }
}
