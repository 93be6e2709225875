//! The catalog: users, session families and their refresh tokens, agents,
//! server settings, alert rules with their firing state, alert history and
//! notification channels and routing, in one redb file (`DATA_DIR/catalog.redb`).
//!
//! Every method is synchronous and may block on disk: async callers run them
//! in `tokio::task::spawn_blocking`. Records are versioned bincode
//! ([`codec`]); secrets (refresh tokens, agent tokens) are stored only as
//! SHA-256 hashes computed by the caller, so this crate needs no crypto.
//!
//! Two small in-memory mirrors make the hot paths free of disk reads: the set
//! of active session families (checked on every authenticated request) and
//! the last report of every agent (updated on every ingest batch, written to
//! disk by [`Catalog::flush_live`], which the server runs every
//! [`LAST_SEEN_PERSIST_MS`] and which runs on drop).

mod accounts;
mod agents;
mod alerts;
pub mod backup;
mod channels;
mod check_runners;
mod checks;
pub mod codec;
mod error;
mod recipients;
mod rule_targets;
mod rules;
mod sessions;
mod settings;
mod shares;
mod status_pages;
mod two_factor;
mod users;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

pub use accounts::{DeletedUser, InvitationRecord};
pub use agents::{
    AgentAuth, AgentAuthError, AgentRecord, AgentRecordV1, HostRecord, LAST_SEEN_PERSIST_MS,
    PENDING_TOKEN_TTL_MS, TokenStatus,
};
pub use alerts::{AlertRecord, DeliveryRecord};
pub use channels::{
    ChannelHealthRecord, ChannelRecord, DeliveryTargets, NotifyPrefsRecord, RuleNotifyRecord,
};
pub use check_runners::CheckSaved;
pub use checks::{CheckEventRecord, CheckRecord, MAX_EVENTS_PER_CHECK};
pub use error::CatalogError;
pub use recipients::RecipientRecord;
pub use rule_targets::TAG_RULE_AGENT;
pub use rules::{FiringRecord, RuleRecord, label_key};
pub use sessions::{RefreshOutcome, SessionRecord};
pub use settings::ServerSettingsRecord;
pub use shares::ShareRole;
pub use status_pages::StatusPageRecord;
pub use two_factor::{AccountPolicyRecord, Restriction, TotpRecord};
pub use users::{UserRecord, UserRecordV1};

use agents::LiveState;
use error::store;
use sessions::ActiveSession;

/// File name of the catalog inside the data directory.
pub const CATALOG_FILE: &str = "catalog.redb";

/// A SHA-256 digest: how refresh and agent tokens are stored.
pub type TokenHash = [u8; 32];

/// Next free id per kind ("user", "agent", "session"). Ids start at 1 and are
/// never reused.
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// user id → [`UserRecord`].
const USERS: TableDefinition<u64, &[u8]> = TableDefinition::new("users");
/// lower-case username → user id.
const USERNAMES: TableDefinition<&str, u64> = TableDefinition::new("usernames");
/// session (family) id → [`SessionRecord`]. Only live families are here.
const SESSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("sessions");
/// session (family) id → its secret key, 128 random bits from the caller's
/// CSPRNG, which every access token of the family must carry (`sk`): a
/// family's id is a small sequential number, so it alone must never be
/// enough. A separate table rather than a field of [`SESSIONS`]' records, so
/// the record layout (and an older binary reading this file) is unchanged;
/// families from before it have no key until their next refresh.
const SESSION_KEYS: TableDefinition<u64, u128> = TableDefinition::new("session_keys");
/// SHA-256 of every refresh token issued, current or rotated → its family.
/// Rotated hashes stay so reuse can be detected; purged once expired.
const REFRESH_TOKENS: TableDefinition<&TokenHash, &[u8]> = TableDefinition::new("refresh_tokens");
/// agent id → [`AgentRecord`].
const AGENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("agents");
/// SHA-256 of an agent's current token → agent id.
const AGENT_TOKENS: TableDefinition<&TokenHash, u64> = TableDefinition::new("agent_tokens");
/// Named server settings (JWT secret, registration policy).
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
/// rule id → [`RuleRecord`].
const RULES: TableDefinition<u64, &[u8]> = TableDefinition::new("rules");
/// (rule id, label or "") → [`FiringRecord`]. Only firing labels are here.
const RULE_STATES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("rule_states");
/// (owner id, event id) → [`AlertRecord`]: the alert history, oldest first per user.
const ALERTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("alerts");
/// owner id → number of events in [`ALERTS`].
const ALERT_COUNTS: TableDefinition<u64, u64> = TableDefinition::new("alert_counts");
/// owner id → [`RecipientRecord`].
const RECIPIENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("recipients");
/// SHA-256 of an invitation link's token → [`InvitationRecord`] (data format 4).
const INVITATIONS: TableDefinition<&TokenHash, &[u8]> = TableDefinition::new("invitations");
/// (agent id, user id) → [`ShareRole`] byte: agents shared with other users
/// (data format 4).
const AGENT_SHARES: TableDefinition<(u64, u64), u8> = TableDefinition::new("agent_shares");
/// user id → [`TotpRecord`]: two-factor log-in (data format 4).
const USER_TOTP: TableDefinition<u64, &[u8]> = TableDefinition::new("user_totp");

/// The open catalog. Share it behind an `Arc`; all methods take `&self`.
pub struct Catalog {
    db: Database,
    path: PathBuf,
    /// Active session family → its user and key (`None`: a family from
    /// before keys, whose access tokens are refused until it is refreshed).
    /// Mirrors [`SESSIONS`] and [`SESSION_KEYS`]; updated after each commit
    /// that adds, rekeys or removes a family.
    active_sessions: RwLock<HashMap<u64, ActiveSession>>,
    /// Latest report per agent, newer than what is on disk.
    live: Mutex<HashMap<u64, LiveState>>,
    /// Active agent tokens already checked once: hash → agent. Lets ingest
    /// authenticate without a transaction. See [`Catalog::cached_agent_auth`].
    active_tokens: RwLock<HashMap<TokenHash, AgentAuth>>,
    /// Bumped after every token revocation commits, so a check that read the
    /// tables before it cannot cache the revoked token afterwards.
    token_epoch: AtomicU64,
    /// Users who must change their password first. Mirrors the users'
    /// `must_change_password`; see [`Catalog::must_change_password`].
    restricted_users: RwLock<std::collections::HashSet<u64>>,
    /// Users with two-factor log-in on; mirrors `user_totp`.
    totp_users: RwLock<std::collections::HashSet<u64>>,
    /// The account policy's `require_two_factor`; mirrors the setting.
    require_two_factor: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("path", &self.path).finish()
    }
}

impl Catalog {
    /// Opens (or creates) the catalog file at `path` and creates missing tables.
    pub fn open(path: &Path) -> Result<Catalog, CatalogError> {
        let db = Database::create(path).map_err(|source| CatalogError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let catalog = Catalog {
            db,
            path: path.to_path_buf(),
            active_sessions: RwLock::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            active_tokens: RwLock::new(HashMap::new()),
            token_epoch: AtomicU64::new(0),
            restricted_users: RwLock::new(std::collections::HashSet::new()),
            totp_users: RwLock::new(std::collections::HashSet::new()),
            require_two_factor: std::sync::atomic::AtomicBool::new(false),
        };
        let txn = catalog.write()?;
        {
            txn.open_table(COUNTERS).map_err(store("create tables"))?;
            txn.open_table(USERS).map_err(store("create tables"))?;
            txn.open_table(USERNAMES).map_err(store("create tables"))?;
            txn.open_table(SESSIONS).map_err(store("create tables"))?;
            txn.open_table(SESSION_KEYS)
                .map_err(store("create tables"))?;
            txn.open_table(REFRESH_TOKENS)
                .map_err(store("create tables"))?;
            txn.open_table(AGENTS).map_err(store("create tables"))?;
            txn.open_table(AGENT_TOKENS)
                .map_err(store("create tables"))?;
            txn.open_table(SETTINGS).map_err(store("create tables"))?;
            txn.open_table(RULES).map_err(store("create tables"))?;
            txn.open_table(RULE_STATES)
                .map_err(store("create tables"))?;
            txn.open_table(ALERTS).map_err(store("create tables"))?;
            txn.open_table(ALERT_COUNTS)
                .map_err(store("create tables"))?;
            txn.open_table(RECIPIENTS).map_err(store("create tables"))?;
            txn.open_table(INVITATIONS)
                .map_err(store("create tables"))?;
            txn.open_table(AGENT_SHARES)
                .map_err(store("create tables"))?;
            txn.open_table(USER_TOTP).map_err(store("create tables"))?;
            txn.open_table(rule_targets::RULE_TARGETS)
                .map_err(store("create tables"))?;
            checks::create_tables(&txn)?;
            check_runners::create_tables(&txn)?;
            status_pages::create_tables(&txn)?;
            for table in [
                channels::CHANNELS,
                channels::CHANNEL_HEALTH,
                channels::RULE_NOTIFY,
                channels::NOTIFY_PREFS,
            ] {
                txn.open_table(table).map_err(store("create tables"))?;
            }
            for table in [channels::HELD_ALERTS, channels::ALERT_TARGETS] {
                txn.open_table(table).map_err(store("create tables"))?;
            }
        }
        txn.commit().map_err(store("create tables"))?;
        catalog.load_active_sessions()?;
        catalog.load_restricted_users()?;
        catalog.load_two_factor()?;
        Ok(catalog)
    }

    /// Opens `DATA_DIR/catalog.redb`.
    pub fn open_in(data_dir: &Path) -> Result<Catalog, CatalogError> {
        Catalog::open(&data_dir.join(CATALOG_FILE))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self) -> Result<WriteTransaction, CatalogError> {
        self.db.begin_write().map_err(store("begin write"))
    }

    fn read(&self) -> Result<redb::ReadTransaction, CatalogError> {
        self.db.begin_read().map_err(store("begin read"))
    }

    fn active_sessions_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, ActiveSession>> {
        // A panic while holding the guard cannot leave the map half-updated
        // (each update is one insert/remove), so poisoning is harmless.
        self.active_sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn live_mut(&self) -> std::sync::MutexGuard<'_, HashMap<u64, LiveState>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Takes the next id of `kind` inside `txn`.
fn next_id(txn: &WriteTransaction, kind: &str) -> Result<u64, CatalogError> {
    let mut counters = txn.open_table(COUNTERS).map_err(store("open counters"))?;
    let next = counters
        .get(kind)
        .map_err(store("read counter"))?
        .map_or(1, |v| v.value());
    counters
        .insert(kind, next + 1)
        .map_err(store("write counter"))?;
    Ok(next)
}

#[cfg(test)]
mod tests;
