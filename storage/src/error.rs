//! The storage engine's error type: what went wrong, with the path, agent or
//! block it concerns, written for the operator who reads the log.

use std::path::PathBuf;

/// Errors of the time-series engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error outside fjall (the format file, the directory).
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// fjall reported an error (I/O, or poisoned after a failed journal write).
    #[error("fjall error ({context}): {source}")]
    Fjall {
        context: &'static str,
        #[source]
        source: fjall::Error,
    },
    /// The directory holds a format this build does not know. Nothing was
    /// changed on disk.
    #[error(
        "{path} holds tsdb format version {found}, this build reads only version {supported}; \
         refusing to open (use a matching StatusMonitor build)"
    )]
    UnsupportedFormat {
        path: PathBuf,
        found: String,
        supported: u32,
    },
    /// On-disk bytes that do not decode: a damaged block, key or record.
    #[error("corrupt data in {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// A write for an agent whose data was deleted.
    #[error("agent {agent} was deleted; its writes are refused")]
    AgentDeleted { agent: u64 },
    /// A request the engine cannot answer as asked.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A query ran past its time budget and was stopped.
    #[error("the query ran longer than its time budget of {budget_ms} ms and was stopped")]
    QueryTimedOut { budget_ms: u64 },
    /// A query was stopped because nobody waits for it any more (the client
    /// went away, or the server is shutting down).
    #[error("the query was cancelled")]
    QueryCancelled,
}

impl Error {
    pub(crate) fn fjall(context: &'static str) -> impl FnOnce(fjall::Error) -> Error {
        move |source| Error::Fjall { context, source }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
