//! Tiers, their windows and their time partitions.
//!
//! Every tier stores one block per agent per *block window* and groups block
//! windows into *partitions* (one fjall keyspace each) that are dropped whole
//! when they pass retention. All windows are aligned to multiples of their
//! length since the Unix epoch.

use std::fmt;
use std::str::FromStr;

pub const SECOND: i64 = 1000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// A resolution of stored data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Raw samples as reported (nominally every 5 s).
    Raw5s,
    /// One-minute aggregates.
    Min1,
    /// One-hour aggregates.
    Hour1,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Raw5s, Tier::Min1, Tier::Hour1];

    /// The tier's point spacing (raw: the nominal agent interval).
    pub fn interval_ms(self) -> i64 {
        match self {
            Tier::Raw5s => 5 * SECOND,
            Tier::Min1 => MINUTE,
            Tier::Hour1 => HOUR,
        }
    }

    /// The span of one block (one key per agent per block window).
    pub fn block_window_ms(self) -> i64 {
        match self {
            Tier::Raw5s => HOUR,
            Tier::Min1 => 6 * HOUR,
            Tier::Hour1 => 7 * DAY,
        }
    }

    /// The default span of one partition (one fjall keyspace); see
    /// [`EngineConfig::partition_ms`](super::EngineConfig::partition_ms).
    pub fn default_partition_ms(self) -> i64 {
        match self {
            Tier::Raw5s => 6 * HOUR,
            Tier::Min1 => DAY,
            Tier::Hour1 => 28 * DAY,
        }
    }

    /// Keyspace name prefix of this tier's partitions.
    pub fn prefix(self) -> &'static str {
        match self {
            Tier::Raw5s => "raw.",
            Tier::Min1 => "m1.",
            Tier::Hour1 => "h1.",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<Tier> {
        Tier::ALL.get(c as usize).copied()
    }

    /// The next finer tier (its source).
    pub fn finer(self) -> Option<Tier> {
        match self {
            Tier::Raw5s => None,
            Tier::Min1 => Some(Tier::Raw5s),
            Tier::Hour1 => Some(Tier::Min1),
        }
    }

    /// The next coarser tier.
    pub fn coarser(self) -> Option<Tier> {
        match self {
            Tier::Raw5s => Some(Tier::Min1),
            Tier::Min1 => Some(Tier::Hour1),
            Tier::Hour1 => None,
        }
    }

    /// Keyspace name of the partition covering `[start_ms, end_ms)`.
    pub fn partition_name(self, start_ms: i64, end_ms: i64) -> String {
        format!("{}{}.{}", self.prefix(), start_ms, end_ms)
    }

    /// Parse a partition keyspace name into (tier, start, end).
    pub fn parse_partition(name: &str) -> Option<(Tier, i64, i64)> {
        Tier::ALL.into_iter().find_map(|t| {
            let (a, b) = name.strip_prefix(t.prefix())?.split_once('.')?;
            let (a, b) = (a.parse::<i64>().ok()?, b.parse::<i64>().ok()?);
            (a < b).then_some((t, a, b))
        })
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Raw5s => "5s",
            Tier::Min1 => "1m",
            Tier::Hour1 => "1h",
        })
    }
}

/// Error of [`Tier::from_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTier(pub String);

impl fmt::Display for UnknownTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown tier {:?} (expected 5s, 1m or 1h)", self.0)
    }
}

impl std::error::Error for UnknownTier {}

impl FromStr for Tier {
    type Err = UnknownTier;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "5s" | "raw" => Ok(Tier::Raw5s),
            "1m" => Ok(Tier::Min1),
            "1h" => Ok(Tier::Hour1),
            _ => Err(UnknownTier(s.to_owned())),
        }
    }
}

/// `ts` rounded down to a multiple of `step` (also for negative `ts`).
pub fn floor_to(ts: i64, step: i64) -> i64 {
    ts.div_euclid(step) * step
}

/// `ts` rounded up to a multiple of `step`.
pub fn ceil_to(ts: i64, step: i64) -> i64 {
    let f = floor_to(ts, step);
    if f == ts { ts } else { f.saturating_add(step) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_names_round_trip() {
        for t in Tier::ALL {
            assert_eq!(t.to_string().parse::<Tier>(), Ok(t));
            let name = t.partition_name(-3600000, 7200000);
            assert_eq!(Tier::parse_partition(&name), Some((t, -3600000, 7200000)));
        }
        assert!("2m".parse::<Tier>().is_err());
    }

    #[test]
    fn windows_nest() {
        for t in Tier::ALL {
            assert_eq!(t.default_partition_ms() % t.block_window_ms(), 0);
            assert_eq!(t.block_window_ms() % HOUR, 0);
            assert_eq!(HOUR % t.interval_ms(), 0);
        }
        assert_eq!(floor_to(-1, 10), -10);
        assert_eq!(ceil_to(11, 10), 20);
        assert_eq!(ceil_to(10, 10), 10);
    }
}
