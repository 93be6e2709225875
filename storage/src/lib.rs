//! StatusMonitor's storage.
//!
//! - [`model`]: the wire format (agent → server reports) and the JSON bodies of
//!   the API. Always compiled, also for wasm, so agent, server and UI share one
//!   definition of every message.
//! - `tsdb` (feature `engine`): the time-series engine on fjall.
//! - `catalog` (feature `engine`): users, agents, rules and alert history on redb.

#[cfg(feature = "catalog")]
pub mod catalog;
pub mod clock;
#[cfg(feature = "engine")]
pub mod error;
pub mod model;
#[cfg(feature = "engine")]
pub mod tsdb;

#[cfg(feature = "engine")]
pub use error::Error;
