//! Authentication and authorization: password hashing, access tokens (JWT),
//! session cookies, random tokens, rate limits, and the extractors every
//! handler uses ([`AuthUser`], [`AdminUser`], [`OwnedAgent`], [`ClientIp`]).
//!
//! The rules (token formats, lifetimes, cookie attributes, limits) are
//! written down in `docs/security.md`; keep the two in step.

pub mod cookies;
pub mod extract;
pub mod jwt;
pub mod limits;
pub mod password;
pub mod tokens;

pub use extract::{AdminUser, AuthUser, AuthVia, ClientIp, OwnedAgent};
use storage::catalog::{AgentAuthError, CatalogError};

use crate::error::ApiError;

/// Lifetime of an access token (JWT), in seconds.
pub const ACCESS_TTL_S: u64 = 15 * 60;

/// A session family ends this long after its last refresh (sliding).
pub const REFRESH_TTL_MS: i64 = 30 * 86_400_000;

/// Something that ends a session or an agent's access, broadcast on
/// [`crate::state::AppState::events`] so open WebSockets (and later the
/// engine) can react at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEvent {
    /// A session family was revoked (logout, password change, refresh reuse).
    SessionRevoked { user_id: u64, session_id: u64 },
    /// An agent's token was replaced; the old one no longer works.
    AgentTokenRevoked { agent_id: u64 },
    /// An agent was deleted with its data.
    AgentDeleted { owner_id: u64, agent_id: u64 },
    /// An agent is no longer shared with a user: their sockets on it close.
    AgentUnshared { agent_id: u64, user_id: u64 },
}

/// Maps catalog failures to API errors: the domain outcomes to 4xx, the rest
/// (I/O, corruption) to a logged 500.
pub fn catalog_error(e: CatalogError) -> ApiError {
    match e {
        CatalogError::UsernameTaken { .. } => {
            ApiError::Conflict("this username is taken; choose another".into())
        }
        CatalogError::RegistrationClosed => ApiError::Forbidden(
            "registration is closed; ask the administrator to create your account or open registration"
                .into(),
        ),
        CatalogError::LastAdmin => ApiError::Conflict(
            "this is the last enabled admin: make another user admin first".into(),
        ),
        CatalogError::InvitationInvalid => ApiError::NotFound(
            "this invitation link is not valid: it was used already or never existed".into(),
        ),
        CatalogError::InvitationExpired => ApiError::Gone(
            "this invitation link expired (links are valid for 24 hours); ask for a new one"
                .into(),
        ),
        other => ApiError::internal(other),
    }
}

impl From<AgentAuthError> for ApiError {
    fn from(e: AgentAuthError) -> ApiError {
        match e {
            AgentAuthError::Expired => ApiError::Unauthorized(
                "this agent token expired: a new token must be used within 5 minutes. \
                 Regenerate the token in the dashboard (Agents → the agent → Regenerate token) \
                 and configure the agent with it"
                    .into(),
            ),
            AgentAuthError::Catalog(e) => catalog_error(e),
            _ => ApiError::Unauthorized(
                "unknown agent token: it was regenerated, the agent was deleted, or it was \
                 mistyped; copy a new token from the dashboard"
                    .into(),
            ),
        }
    }
}
