//! The agent's one integration-test binary. It drives the built
//! `statusmonitor-agent` against an in-test fake server; no real server needed.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

// A tiny HTTP/1.1 server on 127.0.0.1:0 that answers the status it is told to
// and records the batches it accepted.
mod fake_server;

// `once`, `setup` and `install-service --dry-run` from the command line.
mod cli;

// `run`: spooling while the server is away, replay oldest first, 401 stops.
mod delivery;

// The shipped systemd unit passes `systemd-analyze verify`.
mod systemd;

// A fake Docker engine on a Unix socket, answering the documented shapes.
#[cfg(unix)]
mod fake_engine;

// Containers from a Docker-API engine: figures, deadline, broken engines.
#[cfg(unix)]
mod containers;

// A real engine (Podman's Docker-compatible API) when this machine can run one.
#[cfg(unix)]
mod engine;

// `--ca-cert`: HTTPS to a server a private CA signed; refused without it.
mod tls;
