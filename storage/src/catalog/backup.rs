//! Consistent copies of the catalog and its integrity check.
//!
//! A copy is logical: every table is read from one redb read transaction (a
//! snapshot) and written into a fresh file, so it never contains a
//! half-committed write and is compact. [`Catalog::frozen_snapshot`] also
//! holds off every catalog writer for a moment, so the caller can take a
//! snapshot of another store (the time series) at the same instant.

use std::path::Path;

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    Value, WriteTransaction,
};

use super::alerts::AlertRecord;
use super::channels::{
    self, ChannelHealthRecord, ChannelRecord, DeliveryTargets, NotifyPrefsRecord, RuleNotifyRecord,
};
use super::codec;
use super::error::store;
use super::recipients::RecipientRecord;
use super::rules::{FiringRecord, RuleRecord};
use super::sessions::{RefreshRecord, SessionRecord};
use super::*;

/// Every table of the catalog; a table not listed here makes a copy or a
/// check fail rather than be left out silently.
const TABLE_NAMES: [&str; 30] = [
    "counters",
    "users",
    "usernames",
    "sessions",
    "session_keys",
    "refresh_tokens",
    "agents",
    "agent_tokens",
    "settings",
    "rules",
    "rule_states",
    "alerts",
    "alert_counts",
    "recipients",
    "invitations",
    "agent_shares",
    "user_totp",
    "checks",
    "check_events",
    "rule_checks",
    "status_pages",
    "status_slugs",
    "channels",
    "channel_health",
    "rule_notify",
    "notify_prefs",
    "held_alerts",
    "alert_targets",
    "rule_targets",
    "check_runners",
];

/// A point-in-time view of the whole catalog.
pub struct CatalogSnapshot {
    txn: ReadTransaction,
}

impl std::fmt::Debug for CatalogSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogSnapshot").finish()
    }
}

/// What [`check_file`] found.
#[derive(Debug, Default, Clone)]
pub struct CatalogCheck {
    /// Records read (and decoded where they are versioned records).
    pub records: u64,
    /// One line per damaged table or record.
    pub problems: Vec<String>,
}

impl Catalog {
    /// Writes pending last-seen times, then holds off every catalog writer
    /// while `during` runs and takes a read snapshot right after it: the
    /// snapshot is the catalog as it was at every moment of `during`.
    pub fn frozen_snapshot<R>(
        &self,
        during: impl FnOnce() -> R,
    ) -> Result<(CatalogSnapshot, R), CatalogError> {
        self.flush_live()?;
        // A write transaction is exclusive: no other writer commits until it ends.
        let writer = self.write()?;
        let out = during();
        let txn = self.read();
        writer.abort().map_err(store("end backup write lock"))?;
        Ok((CatalogSnapshot { txn: txn? }, out))
    }
}

fn copy_table<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<u64, CatalogError> {
    let src = from
        .open_table(def)
        .map_err(store("open table for backup"))?;
    let mut dst = to
        .open_table(def)
        .map_err(store("create table in backup"))?;
    let mut n = 0;
    for item in src.iter().map_err(store("read table for backup"))? {
        let (k, v) = item.map_err(store("read table for backup"))?;
        dst.insert(k.value(), v.value())
            .map_err(store("write table in backup"))?;
        n += 1;
    }
    Ok(n)
}

impl CatalogSnapshot {
    /// Writes the snapshot as a fresh catalog file at `path` (which must not
    /// exist) and syncs it. Returns the number of records copied.
    pub fn write_to(&self, path: &Path) -> Result<u64, CatalogError> {
        let names: Vec<String> = self
            .txn
            .list_tables()
            .map_err(store("list tables"))?
            .map(|t| t.name().to_string())
            .collect();
        if let Some(unknown) = names.iter().find(|n| !TABLE_NAMES.contains(&n.as_str())) {
            return Err(CatalogError::Corrupt {
                what: format!("table {unknown}"),
                reason: "unknown to this version; refusing to leave it out of the copy".into(),
            });
        }
        let db = Database::create(path).map_err(|source| CatalogError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let to = db.begin_write().map_err(store("begin backup write"))?;
        let mut n = 0;
        n += copy_table(&self.txn, &to, COUNTERS)?;
        n += copy_table(&self.txn, &to, USERS)?;
        n += copy_table(&self.txn, &to, USERNAMES)?;
        n += copy_table(&self.txn, &to, SESSIONS)?;
        n += copy_table(&self.txn, &to, SESSION_KEYS)?;
        n += copy_table(&self.txn, &to, REFRESH_TOKENS)?;
        n += copy_table(&self.txn, &to, AGENTS)?;
        n += copy_table(&self.txn, &to, AGENT_TOKENS)?;
        n += copy_table(&self.txn, &to, SETTINGS)?;
        n += copy_table(&self.txn, &to, RULES)?;
        n += copy_table(&self.txn, &to, RULE_STATES)?;
        n += copy_table(&self.txn, &to, ALERTS)?;
        n += copy_table(&self.txn, &to, ALERT_COUNTS)?;
        n += copy_table(&self.txn, &to, RECIPIENTS)?;
        n += copy_table(&self.txn, &to, INVITATIONS)?;
        n += copy_table(&self.txn, &to, AGENT_SHARES)?;
        n += copy_table(&self.txn, &to, USER_TOTP)?;
        n += copy_table(&self.txn, &to, super::checks::CHECKS)?;
        n += copy_table(&self.txn, &to, super::checks::CHECK_EVENTS)?;
        n += copy_table(&self.txn, &to, super::checks::RULE_CHECKS)?;
        n += copy_table(&self.txn, &to, super::status_pages::STATUS_PAGES)?;
        n += copy_table(&self.txn, &to, super::status_pages::STATUS_SLUGS)?;
        n += copy_table(&self.txn, &to, channels::CHANNELS)?;
        n += copy_table(&self.txn, &to, channels::CHANNEL_HEALTH)?;
        n += copy_table(&self.txn, &to, channels::RULE_NOTIFY)?;
        n += copy_table(&self.txn, &to, channels::NOTIFY_PREFS)?;
        n += copy_table(&self.txn, &to, channels::HELD_ALERTS)?;
        n += copy_table(&self.txn, &to, channels::ALERT_TARGETS)?;
        n += copy_table(&self.txn, &to, super::rule_targets::RULE_TARGETS)?;
        n += copy_table(&self.txn, &to, super::check_runners::CHECK_RUNNERS)?;
        to.commit().map_err(store("commit backup"))?;
        Ok(n)
    }
}

/// Reads every entry of a table, decoding each value with `decode`.
fn check_table<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<K, V>,
    out: &mut CatalogCheck,
    decode: impl Fn(&V::SelfType<'_>) -> Result<(), CatalogError>,
) {
    let name = def.name().to_string();
    let table = match txn.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return,
        Err(e) => {
            out.problems.push(format!("table {name}: {e}"));
            return;
        }
    };
    let iter = match table.iter() {
        Ok(i) => i,
        Err(e) => {
            out.problems.push(format!("table {name}: {e}"));
            return;
        }
    };
    for (i, item) in iter.enumerate() {
        match item {
            Ok((_, v)) => {
                out.records += 1;
                if let Err(e) = decode(&v.value()) {
                    out.problems.push(format!("table {name}, entry {i}: {e}"));
                }
            }
            Err(e) => {
                out.problems.push(format!(
                    "table {name}, after entry {i}: {e}; rest unreadable"
                ));
                return;
            }
        }
    }
}

fn record<T: serde::de::DeserializeOwned>(
    what: &'static str,
) -> impl Fn(&&[u8]) -> Result<(), CatalogError> {
    move |bytes| codec::decode::<T>(what, bytes).map(|_| ())
}

/// Checks the catalog file at `path` (not open elsewhere): redb's own
/// integrity check (page checksums and tree structure), then every table read
/// in full and every versioned record decoded.
pub fn check_file(path: &Path) -> Result<CatalogCheck, CatalogError> {
    let mut db = Database::open(path).map_err(|source| CatalogError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = CatalogCheck::default();
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => out
            .problems
            .push("redb integrity check found damage and repaired the allocator state".into()),
        Err(e) => out
            .problems
            .push(format!("redb integrity check failed: {e}")),
    }
    let txn = db.begin_read().map_err(store("begin read"))?;
    match txn.list_tables() {
        Ok(tables) => {
            for t in tables {
                if !TABLE_NAMES.contains(&t.name()) {
                    out.problems
                        .push(format!("table {}: unknown to this version", t.name()));
                }
            }
        }
        Err(e) => out.problems.push(format!("cannot list tables: {e}")),
    }
    let ok = |_: &_| Ok(());
    check_table(&txn, COUNTERS, &mut out, ok);
    check_table(&txn, USERS, &mut out, |bytes: &&[u8]| {
        super::users::decode_user("user", bytes).map(|_| ())
    });
    check_table(&txn, USERNAMES, &mut out, ok);
    check_table(&txn, SESSIONS, &mut out, record::<SessionRecord>("session"));
    check_table(&txn, SESSION_KEYS, &mut out, |_: &u128| Ok(()));
    check_table(
        &txn,
        REFRESH_TOKENS,
        &mut out,
        record::<RefreshRecord>("refresh token"),
    );
    check_table(&txn, AGENTS, &mut out, |bytes: &&[u8]| {
        super::agents::decode_agent("agent", bytes).map(|_| ())
    });
    check_table(&txn, AGENT_TOKENS, &mut out, ok);
    check_table(&txn, SETTINGS, &mut out, |bytes: &&[u8]| {
        match bytes.first() {
            Some(&codec::VERSION_1) => Ok(()),
            other => Err(CatalogError::Corrupt {
                what: "setting".into(),
                reason: format!("unknown record version {other:?}"),
            }),
        }
    });
    check_table(&txn, RULES, &mut out, record::<RuleRecord>("rule"));
    check_table(
        &txn,
        RULE_STATES,
        &mut out,
        record::<FiringRecord>("rule state"),
    );
    check_table(&txn, ALERTS, &mut out, record::<AlertRecord>("alert"));
    check_table(&txn, ALERT_COUNTS, &mut out, ok);
    check_table(
        &txn,
        RECIPIENTS,
        &mut out,
        record::<RecipientRecord>("recipient"),
    );
    check_table(
        &txn,
        INVITATIONS,
        &mut out,
        record::<super::accounts::InvitationRecord>("invitation"),
    );
    check_table(&txn, AGENT_SHARES, &mut out, |_: &u8| Ok(()));
    check_table(
        &txn,
        USER_TOTP,
        &mut out,
        record::<super::two_factor::TotpRecord>("two-factor"),
    );
    check_table(
        &txn,
        super::checks::CHECKS,
        &mut out,
        record::<super::checks::CheckRecord>("check"),
    );
    check_table(
        &txn,
        super::checks::CHECK_EVENTS,
        &mut out,
        record::<super::checks::CheckEventRecord>("check event"),
    );
    check_table(&txn, super::checks::RULE_CHECKS, &mut out, |_: &u64| Ok(()));
    check_table(
        &txn,
        super::check_runners::CHECK_RUNNERS,
        &mut out,
        |_: &u64| Ok(()),
    );
    check_table(
        &txn,
        super::status_pages::STATUS_PAGES,
        &mut out,
        record::<super::status_pages::StatusPageRecord>("status page"),
    );
    check_table(
        &txn,
        super::status_pages::STATUS_SLUGS,
        &mut out,
        |_: &u64| Ok(()),
    );
    check_table(
        &txn,
        channels::CHANNELS,
        &mut out,
        record::<ChannelRecord>("channel"),
    );
    check_table(
        &txn,
        channels::CHANNEL_HEALTH,
        &mut out,
        record::<ChannelHealthRecord>("channel health"),
    );
    check_table(
        &txn,
        channels::RULE_NOTIFY,
        &mut out,
        record::<RuleNotifyRecord>("rule channels"),
    );
    check_table(
        &txn,
        channels::NOTIFY_PREFS,
        &mut out,
        record::<NotifyPrefsRecord>("notify settings"),
    );
    check_table(
        &txn,
        channels::HELD_ALERTS,
        &mut out,
        record::<Vec<u64>>("held alert"),
    );
    check_table(
        &txn,
        channels::ALERT_TARGETS,
        &mut out,
        record::<DeliveryTargets>("delivery targets"),
    );
    check_table(
        &txn,
        super::rule_targets::RULE_TARGETS,
        &mut out,
        |_: &&str| Ok(()),
    );
    Ok(out)
}
