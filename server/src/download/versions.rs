//! Which version of the agent program each agent runs, from the
//! `User-Agent` of its reports (`statusmonitor-agent/0.1.0`): live state
//! only, kept in memory (a restarted server knows again after each agent's
//! next report), outside the agent's catalog record. The agents list shows
//! it and marks agents older than this server.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::HeaderValue;
use storage::model::AgentInfo;

/// This server's version; agents older than it are marked `outdated`.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Agent id → version of its last report.
#[derive(Debug, Default)]
pub struct AgentVersions {
    versions: RwLock<HashMap<u64, Arc<str>>>,
}

impl AgentVersions {
    /// Notes the version in `user_agent`, if it is the agent's. Takes the
    /// write lock only when it changed (once per agent and upgrade).
    pub fn record(&self, agent_id: u64, user_agent: Option<&HeaderValue>) {
        let Some(version) = user_agent
            .and_then(|v| v.to_str().ok())
            .and_then(agent_version)
        else {
            return;
        };
        let known = self
            .versions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&agent_id)
            .is_some_and(|v| **v == *version);
        if !known {
            self.versions
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(agent_id, Arc::from(version));
        }
    }

    /// Fills `agent_version` and `outdated` of `info`.
    pub fn annotate(&self, mut info: AgentInfo) -> AgentInfo {
        let version = self
            .versions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&info.id)
            .map(|v| v.to_string());
        info.outdated = version.as_deref().is_some_and(|v| older(v, SERVER_VERSION));
        info.agent_version = version;
        info
    }
}

/// `0.1.0` from `statusmonitor-agent/0.1.0 …`; `None` for any other client
/// or a version that is not plain text.
fn agent_version(user_agent: &str) -> Option<&str> {
    let version = user_agent
        .split_whitespace()
        .next()?
        .strip_prefix("statusmonitor-agent/")?;
    (!version.is_empty()
        && version.len() <= 32
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+')))
    .then_some(version)
}

/// `a` is an older release than `b` (major.minor.patch; a pre-release or
/// build suffix is ignored; anything unreadable is not older).
pub fn older(a: &str, b: &str) -> bool {
    fn triple(v: &str) -> Option<(u64, u64, u64)> {
        let core = v.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let t = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(t)
    }
    matches!((triple(a), triple(b)), (Some(a), Some(b)) if a < b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number_not_by_text() {
        assert!(older("0.9.0", "0.10.0"));
        assert!(older("0.1.0", "0.1.1"));
        assert!(older("1.2.3-rc1", "1.2.4"));
        assert!(!older("0.10.0", "0.9.0"));
        assert!(!older("0.1.0", "0.1.0"));
        assert!(!older("garbage", "0.1.0"));
        assert!(!older("0.1", "0.1.0"));
    }

    #[test]
    fn only_the_agent_s_user_agent_counts() {
        assert_eq!(agent_version("statusmonitor-agent/0.1.0"), Some("0.1.0"));
        assert_eq!(
            agent_version("statusmonitor-agent/0.1.0 (linux)"),
            Some("0.1.0")
        );
        assert_eq!(agent_version("curl/8.0"), None);
        assert_eq!(agent_version("statusmonitor-agent/"), None);
        assert_eq!(agent_version("statusmonitor-agent/<script>"), None);
    }
}
