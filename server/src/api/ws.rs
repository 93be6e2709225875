//! `GET /api/ws/{agent_id}`: the live stream of one agent's reports.
//!
//! After the session and ownership checks the socket gets a snapshot of the
//! ring buffer (the last 15 minutes), then every report as it is ingested.
//! The writing is done by the agent's fan-out ([`fanout`]), which never waits
//! for a socket: a client that falls behind gets a fresh snapshot instead of
//! the reports it missed, so a slow browser never slows ingest or other
//! clients. The stream ends with a `closed` message when the agent is
//! deleted or the session is revoked.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Method};
use axum::response::IntoResponse;
use axum::response::Response;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use storage::model::Report;
use tokio::sync::oneshot;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{AuthUser, AuthVia, check_same_origin};
use crate::error::{ApiResult, Path, Query};
use crate::state::{AppState, RING_WINDOW_MS};

mod fanout;

pub use fanout::Fanout;
use fanout::{Handback, Subscriber};

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

/// The wire shape of [`storage::model::LiveMessage`], borrowing the reports
/// so a frame is serialized without cloning them.
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
    path = "/api/ws/{agent_id}",
    operation_id = "openLiveSocket",
    tag = "live",
    summary = "Live reports of one agent over a WebSocket: the ring buffer first, then each new report",
    params(("agent_id" = u64, Path, description = "Agent id"), ("token" = Option<String>, Query, description = "Access token, for clients that cannot set headers")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "The session must first change its password (`password_change_required`) or set up two-factor log-in (`two_factor_setup_required`), or a cross-site handshake", body = storage::model::ErrorBody), (status = 404, description = "No such resource (or not yours)", body = storage::model::ErrorBody))
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
    // The path only decides whether a restricted session may pass: it may
    // not, here (the live data is no route that lifts a restriction).
    let path = format!("/api/ws/{agent_id}");
    let user = match query.token {
        Some(token) => AuthUser::from_access_token(&token, AuthVia::Bearer, &path, &state)?,
        None => {
            let user = AuthUser::from_headers(&Method::GET, &path, &headers, &state)?;
            // Browsers send cookies on cross-site WebSocket handshakes: a page
            // on another site must not be able to read someone's live data.
            if user.via == AuthVia::Cookie {
                check_same_origin(&headers, &state)?;
            }
            user
        }
    };
    // Owner or shared with the caller (live data is read-only).
    crate::sharing::access(&state, user.user_id, agent_id).await?;
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

fn frame(out: &Out<'_>) -> Utf8Bytes {
    // Serializing plain data into a String cannot fail.
    Utf8Bytes::from(serde_json::to_string(out).unwrap_or_default())
}

/// The ring's last 15 minutes of `agent_id` as a frame, and the newest
/// report's time in it (`i64::MIN` for none).
fn snapshot(state: &AppState, agent_id: u64) -> (Utf8Bytes, i64) {
    let reports: Vec<Arc<Report>> = state
        .ring
        .snapshot(agent_id, state.clock.now_ms() - RING_WINDOW_MS);
    let newest = reports.last().map_or(i64::MIN, |r| r.ts_ms);
    let text = frame(&Out::Snapshot {
        agent_id,
        reports: reports.iter().map(|r| &**r).collect(),
    });
    (text, newest)
}

async fn close(mut socket: WebSocket, reason: &str) {
    let _ = socket
        .send(Message::Text(frame(&Out::Closed { reason })))
        .await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: Utf8Bytes::from(reason.to_string()),
        })))
        .await;
}

async fn stream(socket: WebSocket, state: AppState, user: AuthUser, agent_id: u64) {
    let (sender, mut receiver) = socket.split();
    let (done, handback) = oneshot::channel();
    let ticket = state.fanout.join(
        &state,
        agent_id,
        Subscriber {
            user_id: user.user_id,
            session_id: user.session_id,
            sender,
            done,
        },
    );
    // The client only ever closes or pings (tungstenite answers pings while
    // reading); everything it is sent comes from the fan-out.
    let closed_by_client = async {
        while let Some(Ok(message)) = receiver.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    tokio::select! {
        handback = handback => {
            // Without a handback the fan-out dropped a socket that failed.
            if let Ok(Handback { sender, reason }) = handback
                && let Ok(socket) = sender.reunite(receiver)
            {
                close(socket, reason).await;
            }
        }
        () = closed_by_client => ticket.leave(),
    }
}
