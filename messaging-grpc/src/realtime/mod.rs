//! Real-time fan-out of stored events: an in-process broadcast of wake-ups, fed by
//! our own commits and, on PostgreSQL, by LISTEN/NOTIFY so every replica's streams
//! hear about events stored by any replica. Wake-ups carry a user id and a cursor,
//! never content: streams always read the events table, which keeps them in order and
//! gap-free whatever happens to the wake-ups.

mod listener;
mod prune;
mod revocations;

use std::sync::Arc;

use tokio::sync::broadcast;

pub use listener::listen_postgres;
pub use prune::{prune as prune_events, run_pruner};
pub use revocations::listen_key_revocations;

/// "There is news for this user up to this cursor" (`user_id` None: for everyone).
#[derive(Clone, Debug)]
pub struct Notice {
    pub user_id: Option<Arc<str>>,
    pub cursor: i64,
}

/// The process-wide wake-up channel.
#[derive(Clone, Debug)]
pub struct EventHub {
    tx: broadcast::Sender<Notice>,
}

impl EventHub {
    /// `capacity` bounds how far a stream may fall behind before it is switched to
    /// catching up from the table.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Called after a commit that appended `cursor` for `user_id`.
    pub fn publish(&self, user_id: &str, cursor: i64) {
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(Notice {
            user_id: Some(user_id.into()),
            cursor,
        });
    }

    /// Every stream re-reads the table (after a lost LISTEN connection).
    pub fn wake_all(&self) {
        let _ = self.tx.send(Notice {
            user_id: None,
            cursor: 0,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }
}
