//! Messages shared by agent, server and UI: the ingest wire format (v1) and the
//! JSON bodies of the API. Plain serde types, no I/O, compiles for wasm.
//!
//! One file per API area so each has one owner.

pub mod accounts;
pub mod agent_checks;
pub mod agents;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod channels;
pub mod checks;
pub mod containers;
pub mod hidden;
pub mod history;
pub mod live;
pub mod metrics;
pub mod retry;
pub mod synthetic;
pub mod time;
pub mod wire;

pub use accounts::*;
pub use agent_checks::*;
pub use agents::*;
pub use alerts::*;
pub use api::*;
pub use auth::*;
pub use channels::*;
pub use checks::*;
pub use containers::*;
pub use history::*;
pub use live::*;
pub use metrics::{
    CONTAINER_METRICS, KeyRef, LabelRef, SeriesKey, report_samples, samples_to_report,
    visit_samples,
};
pub use wire::*;
