//! `CatalogError`: everything that can go wrong in the catalog, with enough
//! context (file, record, operation) for a person to act on it.

use std::path::PathBuf;

/// A failure of the catalog. Domain outcomes that a caller must handle
/// (a taken username, closed registration) are variants too, so the server
/// can map them to status codes without string matching.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The catalog file could not be opened or created.
    #[error("cannot open the catalog {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: redb::DatabaseError,
    },
    /// redb failed while doing `op` (I/O error, full disk, ...).
    #[error("catalog {op} failed: {source}")]
    Store {
        op: &'static str,
        #[source]
        source: redb::Error,
    },
    /// A record on disk cannot be decoded: unknown version byte, truncated or
    /// damaged bytes. Never a panic; the record is left as it is.
    #[error("catalog record {what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    /// A record could not be encoded (a bug: every record type is encodable).
    #[error("cannot encode catalog record {what}: {reason}")]
    Encode { what: String, reason: String },
    /// A user with this (lower-cased) name exists.
    #[error("the username {username} is taken")]
    UsernameTaken { username: String },
    /// Self-registration is closed: users exist and the operator has not
    /// opened it.
    #[error("registration is closed")]
    RegistrationClosed,
    /// The change would leave no enabled admin.
    #[error("this is the last admin")]
    LastAdmin,
    /// No invitation has this token (never issued, or already used).
    #[error("unknown or used invitation")]
    InvitationInvalid,
    /// The invitation's 24 hours are over.
    #[error("the invitation expired")]
    InvitationExpired,
    /// A blocking catalog task panicked or was cancelled.
    #[error("catalog task failed: {0}")]
    Task(String),
}

/// Maps any redb error type to [`CatalogError::Store`] naming the operation.
pub(crate) fn store<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> CatalogError {
    move |e| CatalogError::Store {
        op,
        source: e.into(),
    }
}
