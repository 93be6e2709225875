//! placeholder
pub const MAX_BATCH: usize = 500;
