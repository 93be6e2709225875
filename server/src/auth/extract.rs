//! The extractors that decide who is calling:
//!
//! - [`AuthUser`]: a valid access token (Bearer header, else the `sm_access`
//!   cookie) whose session family is still active. Cookie-authenticated
//!   state-changing requests must also come from our own origin (CSRF).
//! - [`AdminUser`]: an [`AuthUser`] who is the admin.
//! - [`OwnedAgent`]: the agent named by the `{id}` (or `{agent_id}`) path
//!   segment, if it belongs to the caller. Every route that takes an agent id
//!   uses it; someone else's agent answers exactly like a missing one.
//! - [`ClientIp`]: the peer address, for rate limits.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use storage::catalog::AgentRecord;

use crate::auth::cookies::{ACCESS_COOKIE, get as get_cookie};
use crate::error::ApiError;
use crate::state::AppState;

/// How the caller presented its access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVia {
    /// `Authorization: Bearer` (API clients): no CSRF exposure.
    Bearer,
    /// The `sm_access` cookie (browsers).
    Cookie,
}

/// A logged-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: u64,
    /// The session family the access token belongs to.
    pub session_id: u64,
    pub via: AuthVia,
}

fn unauthorized(msg: &str) -> ApiError {
    ApiError::Unauthorized(msg.to_string())
}

impl AuthUser {
    /// Checks the request's credentials; see the module docs.
    pub fn from_headers(
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        state: &AppState,
    ) -> Result<AuthUser, ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_string());
        let (token, via) = match bearer {
            Some(t) => (t, AuthVia::Bearer),
            None => match get_cookie(headers, ACCESS_COOKIE) {
                Some(t) => (t, AuthVia::Cookie),
                None => return Err(unauthorized("not logged in")),
            },
        };
        let user = AuthUser::from_access_token(&token, via, path, state)?;
        if via == AuthVia::Cookie && is_state_changing(method) {
            check_same_origin(headers, state)?;
        }
        Ok(user)
    }

    /// Checks one access token (signature, expiry, live session family) that
    /// came by `via` for a request to `path`. For callers that get the token
    /// elsewhere, such as the WebSocket's `?token=` (which should also call
    /// [`check_same_origin`] when it authenticates by cookie).
    ///
    /// A user who must first change their password (or set up two-factor
    /// log-in) is refused here for every `path` but the few that lift the
    /// restriction (`crate::accounts::allowed_while`): every way of
    /// authenticating a request goes through this one check.
    pub fn from_access_token(
        token: &str,
        via: AuthVia,
        path: &str,
        state: &AppState,
    ) -> Result<AuthUser, ApiError> {
        let claims = state
            .jwt
            .verify(token, state.clock.now_ms())
            .ok_or_else(|| unauthorized("the session token is invalid or expired; log in again"))?;
        // The family must be live and the token must carry its secret key:
        // family ids are sequential, so a token forged with the signing
        // secret and a guessed id is refused here.
        let live = claims.session_key().is_some_and(|key| {
            state
                .catalog
                .is_session_key_valid(claims.sid, claims.sub, key)
        });
        if !live {
            return Err(unauthorized("this session has ended; log in again"));
        }
        if let Some(r) = state.catalog.restriction(claims.sub)
            && !crate::accounts::allowed_while(r, path)
        {
            return Err(crate::accounts::restricted(r));
        }
        Ok(AuthUser {
            user_id: claims.sub,
            session_id: claims.sid,
            via,
        })
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_headers(&parts.method, parts.uri.path(), &parts.headers, state);
        // A restricted session is still a real one: its connection no
        // longer counts as anonymous.
        if matches!(
            user,
            Ok(_) | Err(ApiError::PasswordChangeRequired(_) | ApiError::TwoFactorSetupRequired(_))
        ) {
            crate::serve::ConnectionSlot::mark(&parts.extensions);
        }
        user
    }
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The `host[:port]` part of an absolute URL, lower-case.
fn authority(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    (!authority.is_empty()).then(|| authority.to_ascii_lowercase())
}

/// CSRF defence for cookie-authenticated writes: the `Origin` (else the
/// `Referer`) must name this server: the `Host` (or `X-Forwarded-Host`) the
/// request came to, or the configured public URL.
pub fn check_same_origin(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let source = header_str(header::ORIGIN.as_str())
        .filter(|o| *o != "null")
        .or_else(|| header_str(header::REFERER.as_str()))
        .and_then(authority);
    let Some(source) = source else {
        return Err(ApiError::Forbidden(
            "cross-site request refused: no Origin or Referer header".into(),
        ));
    };
    let mut ours: Vec<String> = [
        header_str(header::HOST.as_str()),
        header_str("x-forwarded-host"),
    ]
    .into_iter()
    .flatten()
    .map(|h| h.trim().to_ascii_lowercase())
    .collect();
    if let Some(public) = state.config.public_url.as_deref().and_then(authority) {
        ours.push(public);
    }
    if ours.contains(&source) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "cross-site request refused: Origin does not match this server".into(),
        ))
    }
}

/// A logged-in admin.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let id = user.user_id;
        let record = state.catalog(move |c| c.user(id)).await?;
        match record {
            Some(r) if r.is_admin => Ok(AdminUser(user)),
            Some(_) => Err(ApiError::Forbidden("only the admin may do this".into())),
            None => Err(unauthorized("this account no longer exists")),
        }
    }
}

/// The agent named in the path, owned by the caller. The one authorization
/// check for agent routes: missing and not-yours give the same 404.
#[derive(Debug, Clone)]
pub struct OwnedAgent {
    pub user: AuthUser,
    pub agent: AgentRecord,
}

/// The answer for a missing agent and for someone else's.
pub fn agent_not_found() -> ApiError {
    ApiError::NotFound("no such agent".into())
}

impl FromRequestParts<AppState> for OwnedAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| agent_not_found())?;
        let id = params
            .iter()
            .find(|(k, _)| *k == "id" || *k == "agent_id")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .ok_or_else(agent_not_found)?;
        OwnedAgent::load(state, user, id).await
    }
}

impl OwnedAgent {
    /// The ownership check itself: agent `id` if it belongs to `user`; 403
    /// when it is only shared with them (see `crate::sharing`); else the
    /// same 404 as a missing agent.
    pub async fn load(state: &AppState, user: AuthUser, id: u64) -> Result<OwnedAgent, ApiError> {
        let (agent, access) = crate::sharing::access(state, user.user_id, id).await?;
        match access {
            crate::sharing::Access::Owner => Ok(OwnedAgent { user, agent }),
            // Shared with the caller: they know it exists, but may not change it.
            crate::sharing::Access::Shared(_) => Err(crate::sharing::read_only()),
        }
    }
}

/// The client's address (the TCP peer). Without connection info (tests
/// through `oneshot`) it is 127.0.0.1. Behind a reverse proxy every client
/// shares the proxy's address; `X-Forwarded-For` is not trusted, since any
/// client could set it to dodge the limits.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_of_urls() {
        assert_eq!(
            authority("https://Mon.example:8420/x?y").as_deref(),
            Some("mon.example:8420")
        );
        assert_eq!(authority("http://localhost").as_deref(), Some("localhost"));
        assert_eq!(authority("garbage"), None);
    }
}
