//! The time-series engine.
pub mod chunk;
