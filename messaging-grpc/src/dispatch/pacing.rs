//! Pacing: segments per second per sender number, plus an account-wide cap, counted as
//! Twilio counts them (a message of n segments uses n slots).
//!
//! [`Pacer`] is the seam the dispatcher uses; behind it the clocks live in this
//! process ([`LocalPacer`], SQLite: one process) or in PostgreSQL ([`SharedPacer`]),
//! where every replica books from the same clocks, so the configured rates hold for
//! the whole deployment however many dispatchers run, and across restarts. Both book a
//! slot only at the present and only when both the sender's and the account's clocks
//! allow it, and answer how long to wait otherwise.

mod local;
mod shared;

use std::{collections::HashMap, time::Duration};

pub use local::LocalPacer;
pub use shared::SharedPacer;

use crate::{error::Error, store::Store};

/// Rates in segments per second.
#[derive(Clone, Debug)]
pub struct PacingConfig {
    /// Default per sender (a US long code: 1).
    pub sender_sps: f64,
    /// Per-number overrides (a short code: 100).
    pub overrides: HashMap<String, f64>,
    /// Account-wide cap across all senders.
    pub account_sps: f64,
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            sender_sps: 1.0,
            overrides: HashMap::new(),
            account_sps: 100.0,
        }
    }
}

impl PacingConfig {
    /// Segments per second of `sender`: its override, or the default.
    pub fn sender_rate(&self, sender: &str) -> f64 {
        self.overrides
            .get(sender)
            .copied()
            .unwrap_or(self.sender_sps)
    }

    /// How long a booked slot stays good for `segments` of `sender`: a quarter of the
    /// sender's hold, and never under 50 ms. A slot is booked before the SENDING mark
    /// commits (a long wait must be able to give the job back untouched); when the mark
    /// waited behind other writes for longer than this, the send would reach Twilio that
    /// much closer to the sender's next one, which was booked on time, so the
    /// dispatcher books again at the present (seen on CI: a mark held 3 s on a loaded
    /// PostgreSQL writer let four sends of one 0.5/s sender arrive within 3 s).
    pub fn slot_good_for(&self, sender: &str, segments: u32) -> Duration {
        let hold = f64::from(segments.max(1)) / self.sender_rate(sender);
        Duration::from_secs_f64(hold / 4.0).max(Duration::from_millis(50))
    }
}

/// What asking for a slot got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Booked now: the message may go.
    Booked,
    /// Nothing booked: ask again after this long.
    Wait(Duration),
}

/// The dispatcher's pacer: in-process clocks or the database's shared ones.
pub enum Pacer {
    Local(LocalPacer),
    Shared(SharedPacer),
}

impl Pacer {
    /// The pacer for `store`'s backend: shared clocks on PostgreSQL (several replicas
    /// may dispatch), in-process clocks on SQLite (one process).
    pub fn for_store(store: &Store, config: PacingConfig) -> Self {
        match store.backend() {
            sea_orm::DatabaseBackend::Postgres => {
                Self::Shared(SharedPacer::new(store.clone(), config))
            }
            _ => Self::Local(LocalPacer::new(config)),
        }
    }

    /// Books `segments` for `sender` now if the sender's and the account's clocks
    /// allow it; otherwise books nothing and says how long to wait.
    pub async fn try_acquire(&self, sender: &str, segments: u32) -> Result<Slot, Error> {
        match self {
            Self::Local(p) => Ok(
                match p.try_acquire(sender, segments, std::time::Instant::now()) {
                    Ok(()) => Slot::Booked,
                    Err(wait) => Slot::Wait(wait),
                },
            ),
            Self::Shared(p) => p.try_acquire(sender, segments).await,
        }
    }

    /// Books `sender`'s clock again now, for a send whose slot went stale while its
    /// SENDING mark committed ([`PacingConfig::slot_good_for`]), leaving the account's
    /// clock alone: the account's slot was taken at the first booking and a late send
    /// adds nothing to the account's rate, while charging it twice would halve the
    /// account's throughput whenever the writers lag.
    pub async fn rebook_sender(&self, sender: &str, segments: u32) -> Result<Slot, Error> {
        match self {
            Self::Local(p) => Ok(
                match p.rebook_sender(sender, segments, std::time::Instant::now()) {
                    Ok(()) => Slot::Booked,
                    Err(wait) => Slot::Wait(wait),
                },
            ),
            Self::Shared(p) => p.rebook_sender(sender, segments).await,
        }
    }

    /// The rates this pacer books with.
    pub fn config(&self) -> &PacingConfig {
        match self {
            Self::Local(p) => p.config(),
            Self::Shared(p) => p.config(),
        }
    }

    /// Senders whose next slot is more than `beyond` away (at most `max`, the furthest
    /// out first): claims skip their jobs.
    pub async fn paced_out(&self, beyond: Duration, max: usize) -> Result<Vec<String>, Error> {
        match self {
            Self::Local(p) => Ok(p.paced_out(std::time::Instant::now(), beyond, max)),
            Self::Shared(p) => p.paced_out(beyond, max).await,
        }
    }

    /// How long until the first busy sender is free again, if any is busy.
    pub async fn next_free(&self) -> Result<Option<Duration>, Error> {
        match self {
            Self::Local(p) => {
                let now = std::time::Instant::now();
                Ok(p.next_free(now).map(|t| t - now))
            }
            Self::Shared(p) => p.next_free().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_stays_good_for_a_quarter_of_the_senders_hold_and_at_least_50_ms() {
        let config = PacingConfig {
            overrides: HashMap::from([("12345".to_owned(), 100.0)]),
            ..PacingConfig::default()
        };
        let ms = |d: Duration| d.as_millis();
        // A long code at 1/s: 250 ms; a 3-segment message holds it 3 s, so 750 ms.
        assert_eq!(ms(config.slot_good_for("+15005550006", 1)), 250);
        assert_eq!(ms(config.slot_good_for("+15005550006", 3)), 750);
        // A short code at 100/s would get 2.5 ms: the floor keeps it at 50 ms.
        assert_eq!(ms(config.slot_good_for("12345", 1)), 50);
        // Zero segments count as one, as the booking does.
        assert_eq!(ms(config.slot_good_for("+15005550006", 0)), 250);
    }
}
