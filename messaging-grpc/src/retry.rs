//! Retry schedule: exponential backoff with jitter, Retry-After honoured but clamped.

use std::time::Duration;

/// How failed hand-overs are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Delay before the second attempt; doubles for each further one.
    pub base: Duration,
    /// Upper bound of any delay, Retry-After included.
    pub max_delay: Duration,
    /// Attempts in all, the first included; then the message fails.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// Delay after the `attempt`-th failed attempt (1-based). `jitter` in [0, 1) picks a
    /// point in the upper half of the exponential step ("equal jitter"), so a burst of
    /// failures does not retry in lockstep yet never retries sooner than half the step.
    /// A provider's Retry-After is a floor, still capped by `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let step = self.base.saturating_mul(1u32 << exp).min(self.max_delay);
        let jitter = jitter.clamp(0.0, 1.0);
        let jittered = step / 2 + step.mul_f64(jitter / 2.0);
        jittered
            .max(retry_after.unwrap_or_default())
            .min(self.max_delay)
    }

    /// Whether another attempt is allowed after `attempts` attempts.
    pub fn may_retry(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }
}

/// A uniform random number in [0, 1) from the OS generator (jitter needs no more).
pub fn random_jitter() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            max_attempts: 5,
        }
    }

    #[test]
    fn doubles_then_caps() {
        let p = policy();
        let top = |n| p.delay(n, None, 0.999_999);
        let low = |n| p.delay(n, None, 0.0);
        assert_eq!(low(1), Duration::from_secs(1));
        assert!(top(1) < Duration::from_secs(2) + Duration::from_millis(1));
        assert_eq!(low(2), Duration::from_secs(2));
        assert_eq!(low(3), Duration::from_secs(4));
        assert_eq!(low(10), Duration::from_secs(30), "capped step, half of max");
        assert!(
            top(40) <= Duration::from_secs(60),
            "no overflow for huge attempt numbers"
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_is_clamped() {
        let p = policy();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(10)), 0.0),
            Duration::from_secs(10)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(86_400)), 0.0),
            Duration::from_secs(60)
        );
        assert_eq!(
            p.delay(4, Some(Duration::from_secs(1)), 0.0),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn attempts_are_bounded() {
        let p = policy();
        assert!(p.may_retry(4));
        assert!(!p.may_retry(5));
    }

    proptest! {
        #[test]
        fn always_within_bounds(attempt in 0u32..100, jitter in 0.0f64..1.0, ra in proptest::option::of(0u64..100_000)) {
            let p = policy();
            let d = p.delay(attempt, ra.map(Duration::from_secs), jitter);
            prop_assert!(d <= p.max_delay);
            prop_assert!(d >= p.base / 2 || d >= p.max_delay / 2);
        }
    }

    #[test]
    fn jitter_is_in_unit_interval() {
        for _ in 0..1000 {
            let j = random_jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
