//! Per-account limits: how many agents and alert rules one account may have
//! (`max_agents_per_user`, `max_rules_per_user`; the admin is exempt), and
//! how often "Send test" may knock on a user's webhook (5 at once, then one
//! per 30 s, per account; 429 with `Retry-After` beyond).

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota as Rate, RateLimiter};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// "Send test" requests one account may make at once.
pub const SEND_TEST_BURST: u32 = 5;
/// Then one per this period.
pub const SEND_TEST_PERIOD: Duration = Duration::from_secs(30);

pub struct Quota {
    /// Held from counting an account's agents or rules to creating one, so
    /// parallel requests cannot pass a limit together. Creations are rare
    /// and quick: one lock for everyone is enough.
    creating: Mutex<()>,
    send_test: DefaultKeyedRateLimiter<u64>,
}

impl Default for Quota {
    fn default() -> Self {
        let rate = Rate::with_period(SEND_TEST_PERIOD)
            .unwrap_or_else(|| Rate::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(SEND_TEST_BURST).unwrap_or(NonZeroU32::MIN));
        Quota {
            creating: Mutex::new(()),
            send_test: RateLimiter::keyed(rate),
        }
    }
}

impl Quota {
    /// Hold the returned guard while counting and creating.
    pub async fn creating(&self) -> MutexGuard<'_, ()> {
        self.creating.lock().await
    }

    /// One "Send test" of `user_id`, or 429.
    pub fn check_send_test(&self, user_id: u64) -> ApiResult<()> {
        if self.send_test.len() > 10_000 {
            self.send_test.retain_recent();
        }
        self.send_test.check_key(&user_id).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.send_test.clock().now());
            let retry_after_s = wait.as_secs_f64().ceil().max(1.0) as u64;
            ApiError::TooManyRequests {
                message: format!("too many test messages; try again in {retry_after_s} s"),
                retry_after_s,
            }
        })
    }
}

/// Whether `user_id` is the admin (a deleted account is not).
pub async fn is_admin(state: &AppState, user_id: u64) -> ApiResult<bool> {
    Ok(state
        .catalog(move |c| c.user(user_id))
        .await?
        .is_some_and(|u| u.is_admin))
}

/// 422 naming `setting` when an account that has `count` items of `what`
/// may not create another.
pub fn check_room(setting: &str, what: &str, count: usize, max: u64) -> ApiResult<()> {
    if u64::try_from(count).unwrap_or(u64::MAX) >= max {
        return Err(ApiError::Invalid(format!(
            "{setting}: an account may have at most {max} {what}; delete one or ask the admin to raise the limit"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_reached_at_max() {
        assert!(check_room("max_rules_per_user", "rules", 1, 2).is_ok());
        let err = check_room("max_rules_per_user", "rules", 2, 2).unwrap_err();
        assert!(err.to_string().starts_with("max_rules_per_user:"), "{err}");
    }

    #[test]
    fn send_test_allows_a_burst_then_says_when() {
        let q = Quota::default();
        for _ in 0..SEND_TEST_BURST {
            q.check_send_test(7).unwrap();
        }
        match q.check_send_test(7) {
            Err(ApiError::TooManyRequests { retry_after_s, .. }) => {
                assert!((1..=30).contains(&retry_after_s), "{retry_after_s}");
            }
            other => panic!("{other:?}"),
        }
        q.check_send_test(8)
            .expect("another account has its own budget");
    }
}
