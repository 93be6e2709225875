//! Retrying an HTTP peer: which answers are worth another attempt, and the
//! one backoff policy (exponential with full jitter) that the agent's sender,
//! the server's remote write and its alert notifications all use.
//!
//! Full jitter: the n-th wait is drawn uniformly from `[0, ceiling(n)]`, where
//! the ceiling starts at `base` and doubles up to `cap`. Clients that failed
//! together (10,000 agents when their server restarts) come back spread over
//! the whole ceiling instead of in lockstep ("Exponential Backoff And
//! Jitter", AWS Architecture Blog, 2015). Pure and clock-free, so it is shared
//! with the wasm client and tested without waiting.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The agent retries at most this many collection intervals after a failed
/// send while it has reports waiting, so it is back within one or two
/// intervals of its server (and the server's offline check after a start
/// waits for this much more than a rule's limit).
pub const AGENT_RETRY_MAX_INTERVALS: u32 = 2;

/// An HTTP status the peer may answer differently later: 429 (too many
/// requests) and every 5xx. Other 4xx answers mean the request itself is
/// wrong, and repeating it cannot help. (Transport errors — no connection, a
/// timeout — are worth retrying too; they have no status.)
pub fn worth_retrying(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// Waits between attempts: exponential ceilings with full jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    /// Failed attempts since the last success.
    failures: u32,
    /// splitmix64 state.
    rng: u64,
}

impl Backoff {
    /// Ceilings from `base` doubling to `cap`, seeded from the process's
    /// random hash keys (so two processes, or two instances, draw
    /// differently).
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id().into());
        Backoff::seeded(base, cap, h.finish())
    }

    /// The same with a fixed seed (tests).
    pub fn seeded(base: Duration, cap: Duration, seed: u64) -> Backoff {
        Backoff {
            base,
            cap: cap.max(base),
            failures: 0,
            rng: seed,
        }
    }

    /// The longest the next wait can be.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.failures.min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait after one more failure: uniform in `[0, ceiling]`; the next
    /// ceiling doubles.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        self.jitter(ceiling)
    }

    /// A wait drawn uniformly from `[0, ceiling]` (for callers with a fixed
    /// schedule of ceilings, such as configured notification delays).
    pub fn jitter(&mut self, ceiling: Duration) -> Duration {
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.next_u64() % nanos.saturating_add(1))
    }

    /// A success: the next failure starts again from `base`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn statuses_worth_a_retry() {
        for s in [429, 500, 502, 503, 504, 599] {
            assert!(worth_retrying(s), "{s}");
        }
        for s in [200, 204, 301, 400, 401, 403, 404, 413, 422, 600] {
            assert!(!worth_retrying(s), "{s}");
        }
    }

    #[test]
    fn ceilings_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::seeded(S, 8 * S, 1);
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            ceilings.push(b.ceiling().as_secs());
            b.next_delay();
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 8, 8]);
        b.reset();
        assert_eq!(b.ceiling(), S);
        // Far past the doubling range: no overflow.
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), 8 * S);
    }

    #[test]
    fn waits_are_spread_over_the_whole_ceiling() {
        let mut b = Backoff::seeded(S, S, 7);
        let waits: Vec<Duration> = (0..2_000).map(|_| b.next_delay()).collect();
        assert!(waits.iter().all(|w| *w <= S));
        // Every tenth of the ceiling gets a share (full jitter, not a fixed
        // wait or jitter around one).
        let mut deciles = [0u32; 10];
        for w in &waits {
            deciles[((w.as_secs_f64() * 10.0) as usize).min(9)] += 1;
        }
        assert!(
            deciles.iter().all(|&n| (120..=280).contains(&n)),
            "{deciles:?}"
        );
    }

    #[test]
    fn two_clients_failing_together_do_not_retry_together() {
        let (mut a, mut b) = (Backoff::new(S, 2 * S), Backoff::new(S, 2 * S));
        let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
        let mut apart = 0;
        for _ in 0..10 {
            ta += a.next_delay();
            tb += b.next_delay();
            if ta.abs_diff(tb) > Duration::from_millis(10) {
                apart += 1;
            }
        }
        assert!(apart >= 8, "{apart} of 10 retries apart");
    }

    #[test]
    fn a_zero_ceiling_waits_nothing() {
        let mut b = Backoff::seeded(Duration::ZERO, Duration::ZERO, 3);
        assert_eq!(b.next_delay(), Duration::ZERO);
        assert!(b.jitter(Duration::from_nanos(1)) <= Duration::from_nanos(1));
    }
}
