//! `GET /api/ws/{agent_id}`: the live stream of one agent's reports.
//!
//! After the session and ownership checks the socket gets a snapshot of the
//! ring buffer (the last 15 minutes), then every report as it is ingested. A
//! client that falls behind gets a fresh snapshot instead of the reports it
//! missed, so a slow browser never slows ingest or other clients (the ring's
//! broadcast never waits for a receiver). The stream ends with a `closed`
//! message when the agent is deleted or the session is revoked.

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::IntoResponse;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use storage::model::Report;
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::SecurityEvent;
use crate::auth::extract::{AuthUser, AuthVia, OwnedAgent, check_same_origin};
use crate::error::ApiResult;
use crate::state::{AppState, RING_WINDOW_MS};

/// Read buffer of a live socket.
const READ_BUFFER_BYTES: usize = 4 << 10;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

#[derive(Debug, Deserialize)]
struct WsQuery {
    /// An access token, for API clients that cannot set headers on a WebSocket.
    token: Option<String>,
}

/// The wire shape of [`storage::model::LiveMessage`], borrowing the reports so
/// each subscriber serializes without cloning them.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Out<'a> {
    Snapshot {
        agent_id: u64,
        reports: Vec<&'a Report>,
    },
    Report {
        agent_id: u64,
        report: &'a Report,
    },
    Closed {
        reason: &'a str,
    },
}

#[utoipa::path(
    get,
    path = "/ws/{agent_id}",
    tag = "live",
    summary = "Live reports of one agent over a WebSocket: the ring buffer first, then each new report",
    params(("agent_id" = u64, Path, description = "Agent id"), ("token" = Option<String>, Query, description = "Access token, for clients that cannot set headers")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
)]
async fn upgrade(
    State(state): State<AppState>,
    Path(agent_id): Path<u64>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    // Checked after the session and the agent, so a stranger learns nothing
    // even from a request that is not a WebSocket handshake.
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let user = match query.token {
        Some(token) => AuthUser::from_access_token(&token, AuthVia::Bearer, &state)?,
        None => {
            let user = AuthUser::from_headers(&Method::GET, &headers, &state)?;
            // Browsers send cookies on cross-site WebSocket handshakes: a page
            // on another site must not be able to read someone's live data.
            if user.via == AuthVia::Cookie {
                check_same_origin(&headers, &state)?;
            }
            user
        }
    };
    OwnedAgent::load(&state, user, agent_id).await?;
    Ok(match ws {
        // Clients only ever send closes and pings: a small read buffer
        // instead of tungstenite's 128 KiB, allocated and zeroed per socket
        // (1,000 dashboards held 128 MiB of them).
        Ok(ws) => ws
            .read_buffer_size(READ_BUFFER_BYTES)
            .on_upgrade(move |socket| stream(socket, state, user, agent_id)),
        Err(rejection) => rejection.into_response(),
    })
}

fn text(out: &Out<'_>) -> Message {
    Message::Text(frame(out))
}

fn frame(out: &Out<'_>) -> Utf8Bytes {
    // Serializing plain data into a String cannot fail.
    Utf8Bytes::from(serde_json::to_string(out).unwrap_or_default())
}

fn snapshot(state: &AppState, agent_id: u64) -> Message {
    let reports: Vec<Arc<Report>> = state
        .ring
        .snapshot(agent_id, state.clock.now_ms() - RING_WINDOW_MS);
    text(&Out::Snapshot {
        agent_id,
        reports: reports.iter().map(|r| &**r).collect(),
    })
}

async fn close(mut socket: WebSocket, reason: &str) {
    let _ = socket.send(text(&Out::Closed { reason })).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: Utf8Bytes::from(reason.to_string()),
        })))
        .await;
}

async fn stream(mut socket: WebSocket, state: AppState, user: AuthUser, agent_id: u64) {
    // Subscribe before the snapshot so nothing falls between the two.
    let mut reports = state.ring.subscribe(agent_id);
    let mut events = state.subscribe_security();
    if socket.send(snapshot(&state, agent_id)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            report = reports.recv() => match report {
                Ok(live) => {
                    // Encoded once per report and shared by every subscriber.
                    let text = live.encoded(|report| frame(&Out::Report { agent_id, report }));
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    if socket.send(snapshot(&state, agent_id)).await.is_err() {
                        return;
                    }
                }
                // The ring drops an agent's channel only when the agent is deleted.
                Err(RecvError::Closed) => return close(socket, "the agent was deleted").await,
            },
            event = events.recv() => match event {
                Ok(SecurityEvent::AgentDeleted { agent_id: a, .. }) if a == agent_id => {
                    return close(socket, "the agent was deleted").await;
                }
                Ok(SecurityEvent::SessionRevoked { session_id, .. }) if session_id == user.session_id => {
                    return close(socket, "the session ended; log in again").await;
                }
                Err(RecvError::Lagged(_)) => {
                    // Missed events: re-check what they could have said.
                    if !state.catalog.is_session_active(user.session_id, user.user_id) {
                        return close(socket, "the session ended; log in again").await;
                    }
                }
                Err(RecvError::Closed) => return close(socket, "the server is stopping").await,
                Ok(_) => {}
            },
            incoming = socket.recv() => match incoming {
                // The client only ever closes or pings (axum answers pings).
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
