//! `POST /api/auth/sso`: log in as the user a trusted reverse proxy names
//! (see `crate::accounts::sso`). The dashboard calls it when it finds no
//! session and the server says such log-ins are on.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;

use crate::api::auth::{USER_AGENT_MAX, new_session_key, normalize_username, token_response};
use crate::auth::extract::check_same_origin;
use crate::auth::tokens::{REFRESH_TOKEN_PREFIX, hash_token, new_token, random_bytes};
use crate::auth::{ClientIp, REFRESH_TTL_MS};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sso))
}

#[utoipa::path(
    post,
    path = "/api/auth/sso",
    operation_id = "logInThroughProxy",
    tag = "auth",
    summary = "Log in as the user the trusted reverse proxy names in its header",
    responses((status = 200, body = storage::model::TokenResponse), (status = 401, description = "The proxy named nobody", body = storage::model::ErrorBody), (status = 403, description = "Not configured, not from a trusted proxy, no such account, or disabled", body = storage::model::ErrorBody), (status = 422, description = "The proxy's name is not a valid username", body = storage::model::ErrorBody))
)]
async fn sso(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(trusted) = state.config.trusted_auth.clone() else {
        return Err(ApiError::Forbidden(
            "log-in through a reverse proxy is not configured on this server \
             (--trusted-auth-header, --trusted-proxies)"
                .into(),
        ));
    };
    if !trusted.trusts(peer) {
        // The header proves nothing from here; it is not even read.
        tracing::warn!(%peer, "trusted-header log-in from an address that is not a trusted proxy");
        return Err(ApiError::Forbidden(
            "this request did not come through a trusted proxy, so its user header is ignored"
                .into(),
        ));
    }
    // A browser's call must come from our own pages (log-in CSRF).
    if headers.contains_key(header::ORIGIN) || headers.contains_key(header::REFERER) {
        check_same_origin(&headers, &state)?;
    }
    let Some(name) = trusted.name(&headers) else {
        return Err(ApiError::Unauthorized(format!(
            "the proxy named no user (header {})",
            trusted.header
        )));
    };
    let username = normalize_username(name)
        .map_err(|e| ApiError::Invalid(format!("{}: {e}", trusted.header)))?;
    let lookup = username.clone();
    let user = match state.catalog(move |c| c.user_by_name(&lookup)).await? {
        Some(u) => u,
        None if trusted.create_users => {
            // A password nobody knows: this account logs in through the proxy
            // (or after an admin's reset).
            let unknown = hex::encode(random_bytes::<32>());
            let hash = state.passwords.hash(unknown).await?;
            let now = state.clock.now_ms();
            let name = username.clone();
            let user = state
                .catalog(move |c| c.create_user_as_admin(&name, &hash, false, now))
                .await?;
            tracing::info!(
                user_id = user.id,
                "account created on first log-in through the proxy"
            );
            user
        }
        None => {
            return Err(ApiError::Forbidden(format!(
                "there is no account {username:?}: an admin must create it (or start the server \
                 with --trusted-auth-create-users)"
            )));
        }
    };
    if user.disabled {
        return Err(ApiError::Forbidden(
            "this account is disabled; ask the administrator".into(),
        ));
    }
    let refresh = new_token(REFRESH_TOKEN_PREFIX);
    let hash = hash_token(&refresh);
    let user_agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(USER_AGENT_MAX)
        .collect();
    let now = state.clock.now_ms();
    let user_id = user.id;
    let key = new_session_key();
    let session = state
        .catalog(move |c| {
            let s = c.create_session(user_id, &hash, key, &user_agent, now, REFRESH_TTL_MS)?;
            c.record_login(user_id, now)?;
            Ok(s)
        })
        .await?;
    tracing::info!(
        user_id,
        session_id = session.id,
        "logged in through the proxy"
    );
    token_response(&state, &headers, &user, session.id, key, refresh)
}
