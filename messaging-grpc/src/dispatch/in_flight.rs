//! How many sends to keep in flight. A create at Twilio takes 100–300 ms, so a fixed
//! handful in flight caps a replica far below what pacing allows (8 at 150 ms is 53
//! messages a second). In flight = rate × latency (Little's law): the account's pacing
//! rate times the observed latency of a create, doubled for its spread, between a
//! floor and the operator's cap.
//!
//! Twilio also limits how many requests an account has open at once, and answers the
//! rest 429 (error 20429: "never processed and always safe to retry"). A fixed cap of
//! a thousand against a limit of a hundred would make nine creates in ten a refusal,
//! and a backlog would spin on them. The limit is learnt instead, as TCP learns a
//! window: a refusal lowers a ceiling on open creates to those still open when it came
//! (a refusal comes back at once, the creates Twilio took are still running: they are
//! what the limit lets through), a create waits for room under the ceiling before its
//! SENDING mark ([`InFlight::admit`]), and while the ceiling is what holds creates back,
//! each ceiling's worth of answered creates raises it by one — each answer does after
//! [`FORGET`] without a refusal. Refusals stop within one burst, and a ceiling nobody
//! reaches does not grow.

use std::{
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use tokio::sync::Notify;

/// Never fewer in flight than this (a fast provider still overlaps database waits).
const FLOOR: usize = 8;
/// Assumed latency of a create before one was measured: Twilio's typical.
const ASSUMED: Duration = Duration::from_millis(200);
/// Weight of a new measurement in the moving average (1/8: smooth, yet follows a
/// change of Twilio's latency within a few dozen sends).
const WEIGHT: u64 = 8;
/// A ceiling learnt from refusals grows fast again once none came for this long.
const FORGET: Duration = Duration::from_secs(10);
/// No ceiling learnt.
const NONE: usize = usize::MAX;

/// The moving average of the provider's create latency and the ceiling its refusals
/// taught, shared by the send tasks.
#[derive(Debug)]
pub(super) struct InFlight {
    average_micros: AtomicU64,
    /// Creates admitted (from the SENDING mark) and not yet answered.
    open: AtomicUsize,
    /// Wakes a create waiting for room under the ceiling.
    room: Notify,
    /// The most creates the provider took at once before refusing ([`NONE`]: no
    /// refusal seen).
    ceiling: AtomicUsize,
    /// Answered creates since the ceiling last grew.
    credit: AtomicUsize,
    /// When the last refusal came, in milliseconds after `started`.
    refused_at_ms: AtomicU64,
    started: Instant,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            average_micros: AtomicU64::new(ASSUMED.as_micros() as u64),
            open: AtomicUsize::new(0),
            room: Notify::new(),
            ceiling: AtomicUsize::new(NONE),
            credit: AtomicUsize::new(0),
            refused_at_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

/// A create on its way to the provider: counted open until dropped.
pub(super) struct Open<'a>(&'a InFlight);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.room.notify_one();
    }
}

impl InFlight {
    /// Waits for room under the ceiling (none without one), then counts a create open
    /// until the guard is dropped.
    pub(super) async fn admit(&self) -> Open<'_> {
        loop {
            // Registered before the check: a create that ends in between still wakes
            // us (`notify_one` keeps a permit for the next waiter).
            let room = self.room.notified();
            let open = self.open.load(Ordering::Acquire);
            let ceiling = self.ceiling.load(Ordering::Acquire);
            if open < ceiling
                && self
                    .open
                    .compare_exchange(open, open + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                if ceiling != NONE && open + 1 < ceiling {
                    // Room left: pass the wake-up on (two creates that ended together
                    // left one permit for two waiters).
                    self.room.notify_one();
                }
                return Open(self);
            }
            if open < self.ceiling.load(Ordering::Acquire) {
                continue; // lost a race for the room: look again
            }
            room.await;
        }
    }

    /// The provider refused a create for too many open requests: the ceiling drops to
    /// the others still open (those it took), never below one.
    pub(super) fn refused(&self) {
        let others = self.open.load(Ordering::Relaxed).saturating_sub(1).max(1);
        self.ceiling.fetch_min(others, Ordering::Relaxed);
        self.credit.store(0, Ordering::Relaxed);
        let ms = self.started.elapsed().as_millis() as u64;
        self.refused_at_ms.store(ms, Ordering::Relaxed);
    }

    /// The provider answered a create (it was not refused for load; its own create is
    /// still counted open). While the ceiling is reached, a ceiling's worth of these
    /// raises it by one; long after the last refusal, each does. A ceiling nobody
    /// reaches stays: it is what the provider last allowed.
    pub(super) fn answered(&self) {
        let ceiling = self.ceiling.load(Ordering::Relaxed);
        if ceiling == NONE || self.open.load(Ordering::Relaxed) < ceiling {
            return;
        }
        let since_ms = (self.started.elapsed().as_millis() as u64)
            .saturating_sub(self.refused_at_ms.load(Ordering::Relaxed));
        let grow = since_ms >= FORGET.as_millis() as u64
            || self.credit.fetch_add(1, Ordering::Relaxed) + 1 >= ceiling;
        if grow {
            self.credit.store(0, Ordering::Relaxed);
            // Races may lose a step: an estimate, like the average.
            if self
                .ceiling
                .compare_exchange(
                    ceiling,
                    ceiling.saturating_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                self.room.notify_one();
            }
        }
    }

    /// One create took `took` (an answer; timeouts and refusals say nothing of it).
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

    /// Jobs to hold at `rate` messages a second, at most `cap` and, once the
    /// provider refused, at most twice its ceiling (half of them in their calls, half
    /// loading and marking the next ones).
    pub(super) fn target(&self, rate: f64, cap: usize) -> usize {
        let ceiling = self.ceiling.load(Ordering::Relaxed);
        sized(rate, self.latency(), cap).min(ceiling.saturating_mul(2))
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

    #[tokio::test]
    async fn a_refusal_lowers_the_ceiling_to_what_was_taken_and_answers_raise_it() {
        let f = InFlight::default();
        assert_eq!(f.target(2_000.0, 1000), 800);
        // 300 admitted (no ceiling yet); the provider takes 20 and refuses the rest.
        let mut open = Vec::new();
        for _ in 0..300 {
            open.push(f.admit().await);
        }
        for _ in 0..280 {
            // Each refusal is counted while its own create is still open.
            f.refused();
            open.pop();
        }
        // The last refusals saw only the creates it took still open: 20, and twice
        // that held.
        assert_eq!(f.target(2_000.0, 1000), 40);
        // While the ceiling is reached, a ceiling's worth of answers raises it by one.
        for _ in 0..20 {
            f.answered();
        }
        assert_eq!(f.target(2_000.0, 1000), 42);
        // Answers below the ceiling do not raise it.
        open.truncate(5);
        for _ in 0..100 {
            f.answered();
        }
        assert_eq!(f.target(2_000.0, 1000), 42);
        // It never falls to nothing: one refused create alone keeps one.
        drop(open);
        let one = f.admit().await;
        f.refused();
        drop(one);
        assert_eq!(f.target(2_000.0, 1000), 2);
    }

    #[tokio::test]
    async fn a_create_waits_for_room_under_the_ceiling() {
        let f = std::sync::Arc::new(InFlight::default());
        let first = f.admit().await;
        let second = f.admit().await;
        f.refused(); // the provider took one: ceiling 1
        drop(second);
        let waiting = tokio::spawn({
            let f = f.clone();
            async move {
                let _open = f.admit().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no room while the one create runs");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("room once it ended")
            .unwrap();
    }

    #[test]
    fn without_refusals_a_reached_ceiling_grows_back_fast() {
        let f = InFlight {
            started: Instant::now()
                .checked_sub(FORGET * 2)
                .expect("the monotonic clock has run for 20 s"),
            ..Default::default()
        };
        f.open.store(1, Ordering::Relaxed);
        f.refused(); // a refusal at the start of the clock, long ago: ceiling 1
        f.refused_at_ms.store(0, Ordering::Relaxed);
        for _ in 0..10 {
            // Each answer finds the ceiling reached (its create open), and raises it.
            f.open
                .store(f.ceiling.load(Ordering::Relaxed), Ordering::Relaxed);
            f.answered();
        }
        assert_eq!(f.ceiling.load(Ordering::Relaxed), 11);
    }
}
