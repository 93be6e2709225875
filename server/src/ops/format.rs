//! The data directory's format version: `DATA_DIR/FORMAT`, one line
//! `statusmonitor-data <N>`.
//!
//! | N | what                                                            |
//! |---|-----------------------------------------------------------------|
//! | 1 | the first release: no `FORMAT` file; `catalog.redb` (records of  |
//! |   | version 1) and `tsdb/` (its own `tsdb/FORMAT` 1)                 |
//! | 2 | this layout plus the top-level `FORMAT` file                     |
//! | 3 | format 2 plus the catalog table `session_keys` (a random 128-bit |
//! |   | key per session family, which access tokens must carry)         |
//! | 4 | format 3 plus user and agent records of version 2 (a user's      |
//! |   | disabled / must-change-password / last-login, an agent's tags),  |
//! |   | the tables `invitations`, `agent_shares` and `user_totp`, and    |
//! |   | the tables `checks`, `check_events` and `rule_checks` (uptime    |
//! |   | checks, their up/down changes, the check of each check alert     |
//! |   | rule), `status_pages` and `status_slugs` (public status pages);  |
//! |   | check results are series of pseudo-agents `2^62 + check id` in   |
//! |   | `tsdb/`                                                          |
//! |   | and the notification tables `channels`, `channel_health`,        |
//! |   | `rule_notify`, `notify_prefs`, `held_alerts`, `alert_targets`;   |
//! |   | `recipients` emptied into `channels`; `rule_targets` (the tag   |
//! |   | an alert rule watches instead of one agent); aggregate blocks   |
//! |   | of version 2 in `tsdb/` (storage-format.md)                     |
//! | 5 | format 4 plus the catalog table `check_runners` (the agent that  |
//! |   | runs an uptime check instead of the server), and aggregate      |
//! |   | blocks of version 3 in `tsdb/` (a residuals layout and          |
//! |   | entropy-coded integer columns; storage-format.md); versions 1   |
//! |   | and 2 still read                                                |
//! | 6 | format 5 plus aggregate blocks of version 4 in `tsdb/` (integer  |
//! |   | columns prefix-coded instead of rANS-coded; storage-format.md); |
//! |   | versions 1 to 3 still read; head rows with values as scaled     |
//! |   | integers (rows of the f64 layout still read)                    |
//!
//! Opening a directory of an older format upgrades it in place, one step
//! at a time, each step finished (synced) before the version is raised, so
//! an interrupted upgrade is redone on the next start. A directory of a
//! newer format is refused before anything in it is touched. The stores
//! keep their own versions too (`tsdb/FORMAT`, the catalog's record version
//! byte), so even a binary that predates this file refuses a directory whose
//! stores it cannot read.

use std::path::Path;

use anyhow::{Context, bail};

/// The format this build reads and writes.
pub const DATA_FORMAT_VERSION: u32 = 6;
/// Name of the version file in the data directory.
pub const FORMAT_FILE: &str = "FORMAT";
const MAGIC: &str = "statusmonitor-data";

/// The format of the directory at `dir`: `None` when it holds no data yet.
pub fn read_version(dir: &Path) -> anyhow::Result<Option<u32>> {
    let path = dir.join(FORMAT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let v = text
                .trim()
                .strip_prefix(MAGIC)
                .map(str::trim)
                .and_then(|v| v.parse::<u32>().ok())
                .with_context(|| {
                    format!(
                        "{} is not a StatusMonitor format file (found {:?})",
                        path.display(),
                        text.chars().take(64).collect::<String>()
                    )
                })?;
            Ok(Some(v))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let has_data =
                dir.join(storage::catalog::CATALOG_FILE).exists() || dir.join("tsdb").exists();
            Ok(has_data.then_some(1))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the format file (atomically: temp file, sync, rename, sync dir).
pub fn write_version(dir: &Path, version: u32) -> anyhow::Result<()> {
    let path = dir.join(FORMAT_FILE);
    let tmp = dir.join("FORMAT.tmp");
    std::fs::write(&tmp, format!("{MAGIC} {version}\n"))
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("cannot write {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Brings the (locked) directory at `dir` to [`DATA_FORMAT_VERSION`], or
/// explains why it cannot. A new directory just gets the format file.
pub fn upgrade_or_refuse(dir: &Path) -> anyhow::Result<()> {
    let found = read_version(dir)?;
    match found {
        Some(v) if v > DATA_FORMAT_VERSION => bail!(
            "data directory {} has format {v}, written by a newer StatusMonitor; this binary \
             ({}) reads formats 1 to {DATA_FORMAT_VERSION}. Run the newer version (or restore a \
             backup made by this one); nothing was changed",
            dir.display(),
            crate::config::VERSION
        ),
        Some(DATA_FORMAT_VERSION) => Ok(()),
        None => write_version(dir, DATA_FORMAT_VERSION),
        Some(mut v) => {
            while v < DATA_FORMAT_VERSION {
                upgrade_step(dir, v)?;
                v += 1;
                write_version(dir, v)?;
                tracing::info!(dir = %dir.display(), format = v, "data directory upgraded");
            }
            Ok(())
        }
    }
}

/// Turns format `from` into `from + 1`.
fn upgrade_step(dir: &Path, from: u32) -> anyhow::Result<()> {
    match from {
        // 1 → 2 only adds the top-level FORMAT file: the stores are unchanged.
        1 => Ok(()),
        // 2 → 3 adds the catalog's `session_keys` table, which the catalog
        // creates when it opens. Families from format 2 have no key: their
        // access tokens are refused (401), and the client's refresh, which
        // keeps working, gives the family a key. A format-2 binary refuses
        // the directory instead of backing it up without the keys.
        2 => Ok(()),
        // 3 → 4: the catalog creates `invitations`, `agent_shares`,
        // `user_totp`, `checks`, `check_events`, `rule_checks`,
        // `status_pages`, `status_slugs` and `rule_targets` when it opens
        // (empty), and reads
        // version-1 user and agent records as version 2 (enabled, no forced
        // password change, never logged in; no tags), rewriting each as
        // version 2 when it next changes. A format-3 binary would read
        // version-2 records as corrupt and ignore the checks, hence the bump.
        // Notification channels: each user's recipient settings (a
        // Telegram chat id, a webhook URL and its secret) become default
        // channels "Telegram" and "Webhook" and the recipient record goes,
        // in one catalog transaction: an interrupted upgrade redoes it and
        // finds nothing left to move.
        3 => {
            let catalog = storage::catalog::Catalog::open_in(dir)
                .context("cannot open the catalog to move notification settings")?;
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            let made = catalog
                .migrate_recipients_to_channels(now_ms)
                .context("cannot move notification settings into channels")?;
            tracing::info!(channels = made, "notification settings moved into channels");
            Ok(())
        }
        // 4 → 5: nothing to convert. The catalog creates `check_runners`
        // when it opens (empty: every check runs on the server, as before),
        // and tsdb aggregate blocks of versions 1 and 2 are read as they are
        // and written as version 3 when the roll-up next rewrites them. The
        // bump makes a format-4 binary refuse the directory instead of
        // running agent-run checks from the server or failing on the first
        // version-3 block it reads.
        4 => Ok(()),
        // 5 → 6 (aggregate blocks of version 4): nothing to convert. Blocks
        // of versions 1 to 3 are read as they are and written as version 4
        // when the roll-up next rewrites them; the bump makes a format-5
        // binary refuse the directory instead of failing on the first
        // version-4 block it reads.
        5 => Ok(()),
        _ => bail!(
            "data directory {} has format {from}, which this binary cannot upgrade",
            dir.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_gets_the_current_format() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_version(dir.path()).unwrap(), None);
        upgrade_or_refuse(dir.path()).unwrap();
        assert_eq!(read_version(dir.path()).unwrap(), Some(DATA_FORMAT_VERSION));
    }

    #[test]
    fn a_newer_format_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FORMAT_FILE), "statusmonitor-data 99\n").unwrap();
        let err = upgrade_or_refuse(dir.path()).unwrap_err().to_string();
        assert!(err.contains("format 99") && err.contains("newer"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FORMAT_FILE)).unwrap(),
            "statusmonitor-data 99\n"
        );
    }

    #[test]
    fn a_foreign_format_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FORMAT_FILE), "hello").unwrap();
        let err = upgrade_or_refuse(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a StatusMonitor format file"), "{err}");
    }
}
