//! Public status pages: their definition, incidents and maintenance windows
//! (one record per page, bounded by the API), and the slug index.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::model::{Incident, StatusPageSpec};

use super::error::store;
use super::{Catalog, CatalogError, TokenHash, codec, next_id};

/// page id → [`StatusPageRecord`].
pub(super) const STATUS_PAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("status_pages");
/// slug → page id.
pub(super) const STATUS_SLUGS: TableDefinition<&str, u64> = TableDefinition::new("status_slugs");

/// A status page as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusPageRecord {
    pub id: u64,
    pub owner_id: u64,
    pub spec: StatusPageSpec,
    /// SHA-256 of a private page's secret key.
    pub key_hash: Option<TokenHash>,
    pub incidents: Vec<Incident>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

fn what(id: u64) -> String {
    format!("status page {id}")
}

pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), CatalogError> {
    txn.open_table(STATUS_PAGES)
        .map_err(store("create tables"))?;
    txn.open_table(STATUS_SLUGS)
        .map_err(store("create tables"))?;
    Ok(())
}

impl Catalog {
    /// Stores a new page (`record.id` is assigned). `Ok(None)` when the
    /// slug is taken.
    pub fn create_status_page(
        &self,
        record: &StatusPageRecord,
    ) -> Result<Option<StatusPageRecord>, CatalogError> {
        let txn = self.write()?;
        let record = {
            let mut slugs = txn
                .open_table(STATUS_SLUGS)
                .map_err(store("open status slugs"))?;
            if slugs
                .get(record.spec.slug.as_str())
                .map_err(store("read status slug"))?
                .is_some()
            {
                return Ok(None);
            }
            let id = next_id(&txn, "status_page")?;
            let record = StatusPageRecord {
                id,
                ..record.clone()
            };
            slugs
                .insert(record.spec.slug.as_str(), id)
                .map_err(store("write status slug"))?;
            let mut pages = txn
                .open_table(STATUS_PAGES)
                .map_err(store("open status pages"))?;
            pages
                .insert(id, codec::encode(&what(id), &record)?.as_slice())
                .map_err(store("write status page"))?;
            record
        };
        txn.commit().map_err(store("commit status page"))?;
        Ok(Some(record))
    }

    pub fn status_page(&self, id: u64) -> Result<Option<StatusPageRecord>, CatalogError> {
        let txn = self.read()?;
        let pages = txn
            .open_table(STATUS_PAGES)
            .map_err(store("open status pages"))?;
        let Some(bytes) = pages.get(id).map_err(store("read status page"))? else {
            return Ok(None);
        };
        Ok(Some(codec::decode(&what(id), bytes.value())?))
    }

    pub fn status_page_by_slug(
        &self,
        slug: &str,
    ) -> Result<Option<StatusPageRecord>, CatalogError> {
        let id = {
            let txn = self.read()?;
            let slugs = txn
                .open_table(STATUS_SLUGS)
                .map_err(store("open status slugs"))?;
            match slugs.get(slug).map_err(store("read status slug"))? {
                Some(id) => id.value(),
                None => return Ok(None),
            }
        };
        self.status_page(id)
    }

    /// Every page (for the maintenance windows), by id.
    pub fn all_status_pages(&self) -> Result<Vec<StatusPageRecord>, CatalogError> {
        let txn = self.read()?;
        let pages = txn
            .open_table(STATUS_PAGES)
            .map_err(store("open status pages"))?;
        let mut out = Vec::new();
        for entry in pages.iter().map_err(store("scan status pages"))? {
            let (id, bytes) = entry.map_err(store("scan status pages"))?;
            out.push(codec::decode(&what(id.value()), bytes.value())?);
        }
        Ok(out)
    }

    /// Replaces page `record.id` of `record.owner_id`, moving its slug.
    /// `Ok(None)` when missing or someone else's; `Ok(Some(false))` when the
    /// new slug is another page's.
    pub fn update_status_page(
        &self,
        record: &StatusPageRecord,
    ) -> Result<Option<bool>, CatalogError> {
        let txn = self.write()?;
        {
            let mut pages = txn
                .open_table(STATUS_PAGES)
                .map_err(store("open status pages"))?;
            let old: StatusPageRecord =
                match pages.get(record.id).map_err(store("read status page"))? {
                    Some(bytes) => codec::decode(&what(record.id), bytes.value())?,
                    None => return Ok(None),
                };
            if old.owner_id != record.owner_id {
                return Ok(None);
            }
            let mut slugs = txn
                .open_table(STATUS_SLUGS)
                .map_err(store("open status slugs"))?;
            if old.spec.slug != record.spec.slug {
                if slugs
                    .get(record.spec.slug.as_str())
                    .map_err(store("read status slug"))?
                    .is_some()
                {
                    return Ok(Some(false));
                }
                slugs
                    .remove(old.spec.slug.as_str())
                    .map_err(store("delete status slug"))?;
                slugs
                    .insert(record.spec.slug.as_str(), record.id)
                    .map_err(store("write status slug"))?;
            }
            pages
                .insert(
                    record.id,
                    codec::encode(&what(record.id), record)?.as_slice(),
                )
                .map_err(store("write status page"))?;
        }
        txn.commit().map_err(store("commit status page"))?;
        Ok(Some(true))
    }

    /// Deletes page `id` of `owner_id`; false when missing or someone else's.
    pub fn delete_status_page(&self, owner_id: u64, id: u64) -> Result<bool, CatalogError> {
        let txn = self.write()?;
        {
            let mut pages = txn
                .open_table(STATUS_PAGES)
                .map_err(store("open status pages"))?;
            let old: StatusPageRecord = match pages.get(id).map_err(store("read status page"))? {
                Some(bytes) => codec::decode(&what(id), bytes.value())?,
                None => return Ok(false),
            };
            if old.owner_id != owner_id {
                return Ok(false);
            }
            pages.remove(id).map_err(store("delete status page"))?;
            let mut slugs = txn
                .open_table(STATUS_SLUGS)
                .map_err(store("open status slugs"))?;
            slugs
                .remove(old.spec.slug.as_str())
                .map_err(store("delete status slug"))?;
        }
        txn.commit().map_err(store("commit delete status page"))?;
        Ok(true)
    }
}
