//! `statusmonitor-agent` as a library: the binary in `main.rs` is a thin CLI
//! over these modules, and the integration tests drive the same code.
//!
//! Data flow: [`run`] starts a collector thread that takes a [`storage::model::wire::Report`]
//! on a steady grid ([`collect`]) and appends it to the on-disk [`spool`]; a
//! sender thread ([`send`]) drains the spool oldest first in batches. Every
//! report goes through the spool, so a crash loses at most the report being
//! taken.
//!
//! A third thread ([`checks`]) runs the uptime checks the server assigned to
//! this agent; their results ride in the sender's next request.

pub mod checks;
pub mod collect;
pub mod config;
pub mod error;
pub mod run;
pub mod send;
pub mod service;
pub mod setup;
pub mod simulate;
pub mod spool;
pub mod update;
