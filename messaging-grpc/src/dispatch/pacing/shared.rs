//! The pacer of PostgreSQL deployments: the clocks are rows of `pacing_clocks`, booked
//! atomically by the database with its own clock (`store::pacing`), so every
//! dispatcher replica paces against the same clocks and a restart forgets nothing.

use std::time::Duration;

use super::{PacingConfig, Slot};
use crate::{
    error::Error,
    store::{self, Store},
};

/// Clocks shared through the database.
pub struct SharedPacer {
    store: Store,
    config: PacingConfig,
}

impl SharedPacer {
    pub fn new(store: Store, config: PacingConfig) -> Self {
        Self { store, config }
    }

    pub fn config(&self) -> &PacingConfig {
        &self.config
    }

    /// Books `segments` for `sender` now, or says how long to wait (see [`super::Pacer`]).
    pub async fn try_acquire(&self, sender: &str, segments: u32) -> Result<Slot, Error> {
        let segments = f64::from(segments.max(1));
        let sender_hold = Duration::from_secs_f64(segments / self.config.sender_rate(sender));
        let account_hold = Duration::from_secs_f64(segments / self.config.account_sps);
        let slot = store::pacing::take_slot_any(
            self.store.pacing_conn(),
            sender,
            sender_hold,
            account_hold,
        )
        .await?;
        Ok(match slot {
            store::pacing::Slot::Booked(_) => Slot::Booked,
            store::pacing::Slot::Wait(wait) => Slot::Wait(wait),
        })
    }

    /// [`super::Pacer::rebook_sender`] on the shared clocks.
    pub async fn rebook_sender(&self, sender: &str, segments: u32) -> Result<Slot, Error> {
        let segments = f64::from(segments.max(1));
        let hold = Duration::from_secs_f64(segments / self.config.sender_rate(sender));
        Ok(
            match store::pacing::rebook_sender_any(self.store.pacing_conn(), sender, hold).await? {
                store::pacing::Slot::Booked(_) => Slot::Booked,
                store::pacing::Slot::Wait(wait) => Slot::Wait(wait),
            },
        )
    }

    pub async fn paced_out(&self, beyond: Duration, max: usize) -> Result<Vec<String>, Error> {
        let max = u64::try_from(max).unwrap_or(u64::MAX);
        Ok(store::pacing::paced_out_any(self.store.pacing_conn(), beyond, max).await?)
    }

    pub async fn next_free(&self) -> Result<Option<Duration>, Error> {
        Ok(store::pacing::next_free_any(self.store.pacing_conn()).await?)
    }
}
