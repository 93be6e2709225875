//! Turning an ingest request body into a validated batch: decompression with
//! a bound on the decoded size (decompression bombs), strict JSON with errors
//! that name the field, and value checks. Nothing here touches storage: a batch
//! is either accepted whole or refused whole, before anything is written.

mod decode;
mod running;
mod validate;

pub use decode::{decode_body, parse_batch};
pub use validate::{MAX_FUTURE_MS, MAX_REPORTS_PER_BATCH, validate_batch};
