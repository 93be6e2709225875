//! Per-second rates from monotonically increasing counters.
//!
//! A rate needs two readings of the same device. The first reading of a device,
//! a counter that went backwards (reset, wrap, device replaced), or a
//! too-short interval yield `None` for that interval, never a spike or a
//! negative value. Devices not seen in a round are forgotten, so one that
//! comes back starts afresh.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Intervals shorter than this give noisy rates; they are skipped.
const MIN_ELAPSED: Duration = Duration::from_millis(200);

#[derive(Debug)]
struct Last<const N: usize> {
    counters: [u64; N],
    at: Instant,
    round: u64,
}

/// Previous counter readings per device (`N` counters each, e.g. read/write).
#[derive(Debug, Default)]
pub struct Rates<const N: usize> {
    last: HashMap<String, Last<N>>,
    round: u64,
}

impl<const N: usize> Rates<N> {
    pub fn new() -> Self {
        Self {
            last: HashMap::new(),
            round: 0,
        }
    }

    /// Records `counters` of `device` read at `now` and returns the per-second
    /// rates since the previous reading, rounded to whole units.
    pub fn update(&mut self, device: &str, counters: [u64; N], now: Instant) -> Option<[u64; N]> {
        let round = self.round;
        let prev = match self.last.get_mut(device) {
            Some(slot) => std::mem::replace(
                slot,
                Last {
                    counters,
                    at: now,
                    round,
                },
            ),
            None => {
                self.last.insert(
                    device.to_owned(),
                    Last {
                        counters,
                        at: now,
                        round,
                    },
                );
                return None;
            }
        };
        let elapsed = now.checked_duration_since(prev.at)?;
        if elapsed < MIN_ELAPSED {
            return None;
        }
        let secs = elapsed.as_secs_f64();
        let mut out = [0u64; N];
        for (o, (now_c, prev_c)) in out
            .iter_mut()
            .zip(counters.iter().zip(prev.counters.iter()))
        {
            let delta = now_c.checked_sub(*prev_c)?;
            *o = (delta as f64 / secs).round() as u64;
        }
        Some(out)
    }

    /// Ends a round: forgets devices that were not updated since the last call.
    pub fn end_round(&mut self) {
        self.end_round_keeping(0);
    }

    /// Ends a round: forgets devices not updated in this round nor in the
    /// `keep` rounds before it. A baseline kept across a missed reading
    /// still gives a true rate (over the real time between the two
    /// readings; a counter that went backwards meanwhile gives none).
    pub fn end_round_keeping(&mut self, keep: u64) {
        let round = self.round;
        self.last.retain(|_, l| round.wrapping_sub(l.round) <= keep);
        self.round = self.round.wrapping_add(1);
    }

    /// The devices with a baseline.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.last.keys().map(String::as_str)
    }

    /// How many devices have a baseline.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn rate_is_delta_over_real_elapsed_time() {
        let t0 = Instant::now();
        let mut r = Rates::<2>::new();
        assert_eq!(
            r.update("sda", [1000, 0], t0),
            None,
            "first reading has no rate"
        );
        r.end_round();
        // 4 s really elapsed although the interval is 5 s: divide by 4.
        assert_eq!(
            r.update("sda", [5000, 2000], at(t0, 4000)),
            Some([1000, 500])
        );
    }

    #[test]
    fn counter_reset_yields_no_sample_then_recovers() {
        let t0 = Instant::now();
        let mut r = Rates::<2>::new();
        r.update("eth0", [10_000, 10_000], t0);
        r.end_round();
        assert_eq!(
            r.update("eth0", [50, 20_000], at(t0, 5000)),
            None,
            "rx went backwards"
        );
        r.end_round();
        assert_eq!(
            r.update("eth0", [5050, 25_000], at(t0, 10_000)),
            Some([1000, 1000])
        );
    }

    #[test]
    fn vanished_device_is_forgotten_and_restarts_without_spike() {
        let t0 = Instant::now();
        let mut r = Rates::<1>::new();
        r.update("usb0", [1_000_000], t0);
        r.update("sda", [0], t0);
        r.end_round();
        r.update("sda", [100], at(t0, 5000));
        r.end_round(); // usb0 not seen: forgotten
        assert_eq!(r.len(), 1);
        // usb0 comes back with a bigger counter: still no rate on its first reading.
        assert_eq!(r.update("usb0", [9_000_000], at(t0, 10_000)), None);
    }

    #[test]
    fn a_kept_baseline_spans_missed_rounds_then_is_forgotten() {
        let t0 = Instant::now();
        let mut r = Rates::<1>::new();
        r.update("c1", [0], t0);
        r.end_round_keeping(2);
        r.end_round_keeping(2); // c1 missed one round: kept
        assert_eq!(r.update("c1", [10_000], at(t0, 10_000)), Some([1000]));
        r.end_round_keeping(2);
        for _ in 0..3 {
            r.end_round_keeping(2);
        }
        assert!(r.is_empty(), "three rounds unseen: forgotten");
    }

    #[test]
    fn too_short_interval_is_skipped() {
        let t0 = Instant::now();
        let mut r = Rates::<1>::new();
        r.update("lo", [0], t0);
        assert_eq!(r.update("lo", [1000], at(t0, 10)), None);
    }
}
