//! The engine's clock is the crate's shared one (`storage::clock`).

pub use crate::clock::{Clock, ManualClock, SystemClock};
