//! Rate limits on password guessing, with `governor` (GCRA, in memory; they
//! reset on restart). Every log-in attempt spends a cell of its client
//! address and of the account name, successful or not, because the limit must
//! bite before the password is checked.
//!
//! | what | burst | then |
//! | --- | --- | --- |
//! | log-in / password change, per account | 10 | 1 per 30 s |
//! | log-in, per client address | 30 | 1 per 10 s |
//! | registration, per client address | 5 | 1 per 60 s |
//! | registration, per requested name | 5 | 1 per 60 s |
//! | two-factor code, per account | 5 | 1 per 30 s |
//! | two-factor code, per client address | 20 | 1 per 10 s |

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Names longer than this share a key (they cannot exist anyway).
const MAX_KEY_CHARS: usize = 64;
/// Forget idle keys every this many checks, so memory stays bounded.
const RETAIN_EVERY: u64 = 1024;

pub struct Limits {
    login_by_account: DefaultKeyedRateLimiter<String>,
    login_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    register_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    register_by_name: DefaultKeyedRateLimiter<String>,
    code_by_account: DefaultKeyedRateLimiter<u64>,
    code_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            login_by_account: RateLimiter::keyed(quota(10, Duration::from_secs(30))),
            login_by_ip: RateLimiter::keyed(quota(30, Duration::from_secs(10))),
            register_by_ip: RateLimiter::keyed(quota(5, Duration::from_secs(60))),
            register_by_name: RateLimiter::keyed(quota(5, Duration::from_secs(60))),
            code_by_account: RateLimiter::keyed(quota(5, Duration::from_secs(30))),
            code_by_ip: RateLimiter::keyed(quota(20, Duration::from_secs(10))),
            checks: AtomicU64::new(0),
        }
    }
}

impl Limits {
    /// One log-in attempt for `username` from `ip`.
    pub fn check_login(&self, username: &str, ip: IpAddr) -> Result<(), ApiError> {
        self.housekeeping();
        check(
            &self.login_by_ip,
            &ip,
            "too many log-in attempts from your address",
        )?;
        self.check_account(username)
    }

    /// One attempt at the password of `username` (log-in, password change).
    pub fn check_account(&self, username: &str) -> Result<(), ApiError> {
        let key: String = username.chars().take(MAX_KEY_CHARS).collect();
        check(
            &self.login_by_account,
            &key,
            "too many log-in attempts for this account",
        )
    }

    /// One registration of `username` from `ip`.
    pub fn check_register(&self, username: &str, ip: IpAddr) -> Result<(), ApiError> {
        self.housekeeping();
        check(
            &self.register_by_ip,
            &ip,
            "too many registrations from your address",
        )?;
        let key: String = username.chars().take(MAX_KEY_CHARS).collect();
        check(
            &self.register_by_name,
            &key,
            "too many registration attempts for this name",
        )
    }

    /// One attempt at a two-factor code of account `user_id` from `ip`: a
    /// six-digit code has a million values, so guessing is held to a few a
    /// minute per account whatever the address.
    pub fn check_code(&self, user_id: u64, ip: IpAddr) -> Result<(), ApiError> {
        self.housekeeping();
        check(
            &self.code_by_ip,
            &ip,
            "too many two-factor codes from your address",
        )?;
        check(
            &self.code_by_account,
            &user_id,
            "too many two-factor codes for this account",
        )
    }

    fn housekeeping(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.login_by_account.retain_recent();
            self.login_by_ip.retain_recent();
            self.register_by_ip.retain_recent();
            self.register_by_name.retain_recent();
            self.code_by_account.retain_recent();
            self.code_by_ip.retain_recent();
        }
    }
}

fn check<K: Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    what: &str,
) -> Result<(), ApiError> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(limiter.clock().now());
        let retry_after_s = wait.as_secs_f64().ceil().max(1.0) as u64;
        ApiError::TooManyRequests {
            message: format!("{what}; try again in {retry_after_s} s"),
            retry_after_s,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleventh_attempt_on_one_account_is_refused() {
        let limits = Limits::default();
        let ip = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..10 {
            limits.check_login("alice", ip).unwrap();
        }
        match limits.check_login("alice", ip) {
            Err(ApiError::TooManyRequests { retry_after_s, .. }) => {
                assert!((1..=30).contains(&retry_after_s))
            }
            other => panic!("{other:?}"),
        }
        limits
            .check_login("bob", ip)
            .expect("other accounts unaffected");
    }

    #[test]
    fn two_factor_codes_are_limited_per_account_and_per_address() {
        let limits = Limits::default();
        let ip = IpAddr::from([10, 0, 0, 3]);
        for _ in 0..5 {
            limits.check_code(1, ip).unwrap();
        }
        assert!(matches!(
            limits.check_code(1, IpAddr::from([10, 0, 0, 4])),
            Err(ApiError::TooManyRequests { .. })
        ));
        // Twenty from one address, over many accounts, then no more.
        for user in 2..17 {
            limits.check_code(user, ip).unwrap();
        }
        match limits.check_code(99, ip) {
            Err(ApiError::TooManyRequests { message, .. }) => {
                assert!(message.contains("address"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sixth_registration_from_one_address_is_refused() {
        let limits = Limits::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        for i in 0..5 {
            limits.check_register(&format!("user{i}"), ip).unwrap();
        }
        assert!(matches!(
            limits.check_register("user9", ip),
            Err(ApiError::TooManyRequests { .. })
        ));
        limits
            .check_register("user9", IpAddr::from([10, 0, 0, 2]))
            .expect("other addresses unaffected");
    }
}
