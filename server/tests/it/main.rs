//! The server's integration tests: one binary, one module per area.
//!
//! `common` builds a real app on a temporary data directory (real redb, real
//! fjall) with a manual clock; tests call it with `oneshot` or, where a real
//! socket matters (WebSocket, the binary itself), over loopback.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::zombie_processes, clippy::type_complexity)]

/// Agents: CRUD, pending/active tokens on the injected clock, restart.
mod agents;
/// Alerting: rules, evaluation, offline, history, Telegram/webhook delivery.
mod alerts;
/// Accounts and sessions: registration, log-in, refresh, logout, limits, CSRF.
mod auth;
mod cli;
mod common;
mod crash;
mod data;
/// `/metrics` with promtool, remote write into a real VictoriaMetrics, OpenAPI.
mod ecosystem;
/// Per-user isolation of every route that takes an agent id (table-driven).
mod isolation;
/// Per-account limits, the minimum cooldown, names without bidi/zero-width characters.
mod limits;
/// The live WebSocket: snapshot and reports, closing, slow readers, joins.
mod live;
/// Backup, restore, check, format upgrades, service files.
mod ops;
/// The outbound guard: webhook targets at save and send time, error phrases.
mod outbound;
