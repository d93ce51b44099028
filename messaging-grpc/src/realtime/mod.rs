//! Real-time fan-out of stored events: an in-process broadcast of wake-ups, fed by
//! our own commits and, on PostgreSQL, by LISTEN/NOTIFY so every replica's streams
//! hear about events stored by any replica. Wake-ups carry a user id and a cursor,
//! never content: streams always read the events table, which keeps them in order and
//! gap-free whatever happens to the wake-ups.

mod listener;
mod prune;
mod revocations;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

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

/// Wake-ups a user's channel keeps before its streams are told they lagged (and
/// catch up from the table); small, since one exists per watched user.
const PER_USER_CAPACITY: usize = 64;

/// The process-wide wake-up channels: one per watched user, so a stored event wakes
/// only the streams of its user (on every replica: the PostgreSQL listener publishes
/// here too), plus one for everything (kept for callers that watch every user).
#[derive(Clone, Debug)]
pub struct EventHub {
    tx: broadcast::Sender<Notice>,
    users: Arc<Mutex<HashMap<Arc<str>, broadcast::Sender<Notice>>>>,
    per_user_capacity: usize,
}

impl EventHub {
    /// `capacity` bounds how far a stream may fall behind before it is switched to
    /// catching up from the table.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(1)).0,
            users: Arc::default(),
            per_user_capacity: capacity.clamp(1, PER_USER_CAPACITY),
        }
    }

    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, broadcast::Sender<Notice>>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Called after a commit that appended `cursor` for `user_id`: wakes that user's
    /// streams only.
    pub fn publish(&self, user_id: &str, cursor: i64) {
        let notice = Notice {
            user_id: Some(user_id.into()),
            cursor,
        };
        {
            let mut users = self.users();
            if let Some(tx) = users.get(user_id)
                && tx.send(notice.clone()).is_err()
            {
                // Its last stream ended: forget the channel.
                users.remove(user_id);
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(notice);
    }

    /// Every stream re-reads the table (after a lost LISTEN connection).
    pub fn wake_all(&self) {
        let notice = Notice {
            user_id: None,
            cursor: 0,
        };
        self.users().retain(|_, tx| tx.send(notice.clone()).is_ok());
        let _ = self.tx.send(notice);
    }

    /// Wake-ups of every user.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }

    /// Wake-ups of `user_id` (and the wake-alls).
    pub fn subscribe_user(&self, user_id: &str) -> broadcast::Receiver<Notice> {
        let mut users = self.users();
        if let Some(tx) = users.get(user_id) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(self.per_user_capacity);
        users.insert(user_id.into(), tx);
        rx
    }

    /// Users with a channel (tests: channels are dropped with their last stream).
    pub fn watched_users(&self) -> usize {
        self.users().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_wakes_only_its_users_streams() {
        let hub = EventHub::new(1024);
        let mut alice = hub.subscribe_user("alice");
        let mut alice2 = hub.subscribe_user("alice");
        let mut bob = hub.subscribe_user("bob");
        hub.publish("alice", 7);
        for rx in [&mut alice, &mut alice2] {
            let n = rx.try_recv().ok();
            assert_eq!(
                n.map(|n| (n.user_id, n.cursor)),
                Some((Some("alice".into()), 7))
            );
        }
        assert!(bob.try_recv().is_err(), "bob's stream is not woken");
        hub.wake_all();
        assert!(bob.try_recv().is_ok_and(|n| n.user_id.is_none()));
        assert!(alice.try_recv().is_ok());
        // A user's channel goes when its last stream does.
        drop(bob);
        hub.publish("bob", 1);
        assert_eq!(hub.watched_users(), 1);
        drop((alice, alice2));
        hub.wake_all();
        assert_eq!(hub.watched_users(), 0);
    }
}
