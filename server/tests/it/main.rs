//! The server's integration tests: one binary, one module per area.
//!
//! `common` builds a real app on a temporary data directory (real redb, real
//! fjall) with a manual clock; tests call it with `oneshot` or, where a real
//! socket matters (WebSocket, the binary itself), over loopback.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::zombie_processes, clippy::type_complexity)]

/// Account management by the admin: list, create, invite, disable, reset, delete.
mod accounts;
/// Checks run by an agent: assignment, the agent's list, results in reports, the real agent.
mod agent_checks;
/// Agents: CRUD, pending/active tokens on the injected clock, restart.
mod agents;
/// Alerting: rules, evaluation, offline, history, Telegram/webhook delivery.
mod alerts;
/// Accounts and sessions: registration, log-in, refresh, logout, limits, CSRF.
mod auth;
/// Notification channels: every kind against a fake of its service, email
/// through a real SMTP server, routing, quiet hours, guard, secrets.
mod channels;
/// Uptime checks: every kind against local servers, states, uptime, the guard, bad input.
mod checks;
/// The list of checks with their daily bars (`?days=`), bounded and refused by name.
mod checks_list;
mod cli;
mod common;
/// Slow, silent, idle and too many unauthenticated connections (the accept loop).
mod connections;
/// Containers, processes and services: stored by name, live, history, bounds.
mod containers;
mod crash;
mod data;
/// A full disk (a tmpfs the test mounts as root): 507, degraded, recovery.
mod disk;
/// `/metrics` with promtool, remote write into a real VictoriaMetrics, OpenAPI.
mod ecosystem;
/// Data format 5: a format-4 directory's aggregate blocks upgraded in place.
mod format5;
/// Data format 6: a format-5 directory's aggregate blocks upgraded in place.
mod format6;
/// Browser headers, the Host check, panics, 405s, malformed input on every
/// route, the OpenAPI document through a validator.
mod hardening;
/// History queries: bounded ranges, time budget, per-user limit.
mod history_bounds;
/// The agent downloads and `/install.sh`, run for real into a temporary prefix.
mod install;
/// Revoking a pending invitation.
mod invitations;
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
/// A server restart with a real agent: no false offline alarm.
mod restart;
/// A session that must change its password: refused everywhere, the live socket too.
mod restricted;
/// A graceful stop during ingest leaves nothing in the journal.
mod shutdown;
/// Single sign-on through a trusted reverse proxy's user header.
mod sso;
/// A private status page's secret key replaced: the old link refused.
mod status_keys;
/// Alert rules that target a tag: every tagged agent, now and later, per-agent state.
mod tag_rules;
/// Two-factor log-in: enrolment, codes at log-in, replay, recovery codes, limits.
mod two_factor;
/// `statusmonitor-agent update` and the restart after an `auto_update`,
/// the real agent binary against the real server.
mod update;
