//! The in-process pacer (SQLite: one process, so its clocks are all there is).
//!
//! Each sender, and the account, has the instant its next segment may go (a virtual
//! clock). A message is only ever booked *now*, when both clocks allow it: a message of
//! n segments then pushes the sender's clock n/rate ahead and the account's n/cap
//! ahead. Booking only at the present keeps both limits exact whatever order messages
//! come in, and a 1 segment/s long code never bursts (unlike a token bucket with a
//! burst allowance, governor's model). A caller told to wait sleeps and asks again.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::PacingConfig;

/// Clocks in this process's memory.
pub struct LocalPacer {
    config: PacingConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    senders: HashMap<String, Instant>,
    account: Option<Instant>,
}

impl LocalPacer {
    pub fn new(config: PacingConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    pub fn config(&self) -> &PacingConfig {
        &self.config
    }

    /// Books `segments` for `sender` at `now` if both the sender's and the account's
    /// clocks allow it; otherwise books nothing and says how long to wait.
    pub fn try_acquire(&self, sender: &str, segments: u32, now: Instant) -> Result<(), Duration> {
        let segments = f64::from(segments.max(1));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let sender_free = state.senders.get(sender).copied().unwrap_or(now);
        let account_free = state.account.unwrap_or(now);
        let ready = sender_free.max(account_free);
        if ready > now {
            return Err(ready - now);
        }
        // Forget senders whose clock is in the past: they behave as new (bounded map).
        if state.senders.len() > 10_000 {
            state.senders.retain(|_, t| *t > now);
        }
        let sender_step = Duration::from_secs_f64(segments / self.config.sender_rate(sender));
        let account_step = Duration::from_secs_f64(segments / self.config.account_sps);
        state
            .senders
            .insert(sender.to_owned(), advance(sender_free, now, sender_step));
        state.account = Some(advance(account_free, now, account_step));
        Ok(())
    }
}

/// A clock's next free instant after booking `step` at `now`. A caller a little late
/// for its slot (it slept, then asked again) books from the slot, not from now:
/// booking from now would lose that lateness at every send, and 100 long codes at
/// 1 MPS ran at 88 MPS. A clock idle for longer than a quarter step starts from now, so
/// any span of k sends at Twilio is at least k steps minus a quarter step (no burst).
fn advance(free: Instant, now: Instant, step: Duration) -> Instant {
    let late = now.saturating_duration_since(free);
    if late <= step / 4 {
        free + step
    } else {
        now + step
    }
}

impl LocalPacer {
    /// Books `sender`'s clock again at `now`, leaving the account's alone (see
    /// [`super::Pacer::rebook_sender`]); otherwise says how long to wait.
    pub fn rebook_sender(&self, sender: &str, segments: u32, now: Instant) -> Result<(), Duration> {
        let segments = f64::from(segments.max(1));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let free = state.senders.get(sender).copied().unwrap_or(now);
        if free > now {
            return Err(free - now);
        }
        let step = Duration::from_secs_f64(segments / self.config.sender_rate(sender));
        // From now, not from the slot: this send is late for its slot by definition.
        state.senders.insert(sender.to_owned(), now + step);
        Ok(())
    }

    /// Senders whose next slot is more than `beyond` away: claims skip their jobs
    /// (at most `max` of them, the furthest out first, to bound the query).
    pub fn paced_out(&self, now: Instant, beyond: Duration, max: usize) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(&String, &Instant)> = state
            .senders
            .iter()
            .filter(|(_, free)| **free > now + beyond)
            .collect();
        out.sort_by(|a, b| b.1.cmp(a.1));
        out.into_iter().take(max).map(|(s, _)| s.clone()).collect()
    }

    /// When the first paced-out sender becomes free again, if any is.
    pub fn next_free(&self, now: Instant) -> Option<Instant> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.senders.values().copied().filter(|t| *t > now).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(sender_sps: f64, account_sps: f64) -> LocalPacer {
        LocalPacer::new(PacingConfig {
            sender_sps,
            overrides: HashMap::from([("+1short".into(), 100.0)]),
            account_sps,
        })
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_rebooking_moves_the_senders_clock_from_now_and_leaves_the_account_alone() {
        // Account at 2/s: one booking holds it 0.5 s.
        let p = pacer(1.0, 2.0);
        let t0 = Instant::now();
        p.try_acquire("+1a", 1, t0).unwrap();
        // The mark took 0.6 s: the sender's clock (t0 + 1 s) is not free yet.
        assert_eq!(p.rebook_sender("+1a", 1, t0 + S * 6 / 10), Err(S * 4 / 10));
        // Free at t0 + 1 s: booked from then, for one more second.
        p.rebook_sender("+1a", 1, t0 + S).unwrap();
        assert_eq!(p.try_acquire("+1a", 1, t0 + S * 19 / 10), Err(S / 10));
        // The account was charged once (free at t0 + 0.5 s): another sender goes at once.
        p.try_acquire("+1b", 1, t0 + S).unwrap();
    }

    #[test]
    fn spaces_a_sender_by_segments() {
        let p = pacer(1.0, 1000.0);
        let t0 = Instant::now();
        assert_eq!(p.try_acquire("+1a", 3, t0), Ok(()));
        assert_eq!(
            p.try_acquire("+1a", 1, t0),
            Err(3 * S),
            "3 segments hold the sender 3 s"
        );
        assert_eq!(p.try_acquire("+1a", 1, t0 + 2 * S), Err(S));
        assert_eq!(p.try_acquire("+1a", 1, t0 + 3 * S), Ok(()));
        // The account (1000/s) spaces any two sends by 1 ms.
        assert_eq!(
            p.try_acquire("+1b", 1, t0 + 3 * S + Duration::from_millis(1)),
            Ok(()),
            "senders are independent"
        );
        assert_eq!(p.try_acquire("+1short", 1, t0 + 4 * S), Ok(()));
        assert_eq!(
            p.try_acquire("+1short", 1, t0 + 4 * S),
            Err(Duration::from_millis(10)),
            "override: 100/s"
        );
    }

    #[test]
    fn account_cap_applies_across_senders() {
        let p = pacer(100.0, 2.0);
        let t0 = Instant::now();
        assert_eq!(p.try_acquire("+1a", 1, t0), Ok(()));
        assert_eq!(p.try_acquire("+1b", 1, t0), Err(S / 2));
        assert_eq!(p.try_acquire("+1b", 1, t0 + S / 2), Ok(()));
        assert_eq!(p.try_acquire("+1c", 2, t0 + S), Ok(()));
        assert_eq!(
            p.try_acquire("+1a", 1, t0 + S),
            Err(S),
            "2 segments used the account for 1 s"
        );
    }

    #[test]
    fn one_backlogged_sender_does_not_block_others() {
        let p = pacer(1.0, 100.0);
        let t0 = Instant::now();
        p.try_acquire("+1a", 10, t0).unwrap();
        assert!(p.try_acquire("+1a", 1, t0 + S).is_err());
        assert_eq!(p.try_acquire("+1b", 1, t0 + S), Ok(()));
    }
}
