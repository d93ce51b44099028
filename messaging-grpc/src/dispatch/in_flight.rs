//! How many sends to keep in flight. A create at Twilio takes 100–300 ms, so a fixed
//! handful in flight caps a replica far below what pacing allows (8 at 150 ms is 53
//! messages a second). In flight = rate × latency (Little's law): the account's pacing
//! rate times the observed latency of a create, doubled for its spread, between a
//! floor and the operator's cap.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// Never fewer in flight than this (a fast provider still overlaps database waits).
const FLOOR: usize = 8;
/// Assumed latency of a create before one was measured: Twilio's typical.
const ASSUMED: Duration = Duration::from_millis(200);
/// Weight of a new measurement in the moving average (1/8: smooth, yet follows a
/// change of Twilio's latency within a few dozen sends).
const WEIGHT: u64 = 8;

/// The moving average of the provider's create latency, shared by the send tasks.
#[derive(Debug)]
pub(super) struct InFlight {
    average_micros: AtomicU64,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            average_micros: AtomicU64::new(ASSUMED.as_micros() as u64),
        }
    }
}

impl InFlight {
    /// One create took `took` (answer or error).
    pub(super) fn observe(&self, took: Duration) {
        let sample = took.as_micros().min(u128::from(u32::MAX)) as u64;
        // Races between tasks lose a sample at worst: an estimate, not a count.
        let old = self.average_micros.load(Ordering::Relaxed);
        let new = old - old / WEIGHT + sample / WEIGHT;
        self.average_micros.store(new, Ordering::Relaxed);
    }

    pub(super) fn latency(&self) -> Duration {
        Duration::from_micros(self.average_micros.load(Ordering::Relaxed))
    }

    /// Sends to keep in flight at `rate` messages a second, at most `cap`.
    pub(super) fn target(&self, rate: f64, cap: usize) -> usize {
        sized(rate, self.latency(), cap)
    }
}

fn sized(rate: f64, latency: Duration, cap: usize) -> usize {
    let wanted = (rate * latency.as_secs_f64() * 2.0).ceil();
    let wanted = if wanted.is_finite() {
        wanted as usize
    } else {
        cap
    };
    wanted.clamp(FLOOR.min(cap), cap.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_is_rate_times_latency_within_floor_and_cap() {
        let ms = Duration::from_millis;
        // 100 MPS at 150 ms: 15 in flight on average, 30 with room for the spread.
        assert_eq!(sized(100.0, ms(150), 800), 30);
        assert_eq!(sized(2_000.0, ms(300), 800), 800);
        assert_eq!(sized(2_000.0, ms(150), 800), 600);
        assert_eq!(sized(100.0, ms(1), 800), FLOOR);
        assert_eq!(sized(100.0, ms(1), 4), 4);
        assert_eq!(sized(f64::INFINITY, ms(100), 50), 50);
    }

    #[test]
    fn the_average_follows_the_provider() {
        let f = InFlight::default();
        assert_eq!(f.latency(), ASSUMED);
        for _ in 0..100 {
            f.observe(Duration::from_millis(150));
        }
        let l = f.latency().as_millis();
        assert!((145..=155).contains(&l), "{l}");
        assert!((30..=31).contains(&f.target(100.0, 800)));
    }
}
