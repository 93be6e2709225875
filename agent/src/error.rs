//! The agent's error type: spool damage, I/O with context, and the server's
//! verdicts that change what the agent does next.

use std::path::PathBuf;

/// Exit code for "the configuration is wrong" (EX_CONFIG): a rejected token.
/// The systemd unit lists it in `RestartPreventExitStatus`, so a revoked token
/// does not restart the agent in a loop.
pub const EXIT_CONFIG: i32 = 78;

/// Exit code after `auto_update` replaced the binary, or found another
/// build for the service to install (EX_TEMPFAIL): the unit's
/// `Restart=on-failure` starts it again, its pre-start installing the build.
pub const EXIT_UPGRADED: i32 = 75;

/// Message printed when the server refuses the token (401/403).
pub const TOKEN_REJECTED: &str = "the server rejected the agent token: token wrong, expired or revoked: regenerate it in the dashboard";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The server answered 401 or 403: nothing will work until the token changes.
    #[error("{TOKEN_REJECTED} (HTTP {status})")]
    TokenRejected { status: u16 },

    #[error("spool {path}: {source}")]
    SpoolIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A record in a spool segment failed its length or checksum check.
    #[error("spool segment {path} is corrupt at byte {offset}")]
    Corrupt { path: PathBuf, offset: u64 },

    #[error("invalid configuration: {0}")]
    Config(String),

    /// A report larger than a spool record may be (never happens with real data).
    #[error("a report of {bytes} bytes is too large to spool")]
    TooLarge { bytes: usize },

    /// The collector thread could not start or died; the agent must restart.
    #[error("the collector thread {0}")]
    Collector(String),

    /// `auto_update` put the server's build at `path`: start it.
    #[error("upgraded {}: restarting into the new build", path.display())]
    Upgraded { path: PathBuf },

    /// `auto_update` under systemd: the server has another build, which
    /// the service installs before it starts again.
    #[error("the server has another build: stopping so that the service installs it")]
    UpdateOffered,
}

impl AgentError {
    pub(crate) fn spool_io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::SpoolIo {
            path: path.into(),
            source,
        }
    }
}
