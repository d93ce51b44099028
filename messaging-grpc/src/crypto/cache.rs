//! Bounded cache of unwrapped data keys. Evicted keys are zeroized when their last
//! `Arc` is dropped (see `DataKey`).
//!
//! Forgetting races reading: a request that read a key row just before a shredding
//! committed would put the key back after `forget_user` ran, and this replica would
//! keep decrypting a shredded user. So every fill carries a [`Ticket`] taken before
//! its database read, and a fill whose ticket is older than the user's last
//! forgetting (or the last `clear`) is not kept.

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
};

use lru::LruCache;

use super::DataKey;

/// Users whose last forgetting is remembered exactly; older forgettings are
/// summarised by one sequence number (see [`Inner::forgotten_floor`]).
const FORGOTTEN_USERS: usize = 4096;

/// LRU of `(user id, key version)` → unwrapped key, with the forgettings that fills
/// are checked against.
pub struct KeyCache {
    inner: Mutex<Inner>,
}

struct Inner {
    keys: LruCache<(String, u32), Arc<DataKey>>,
    /// Counts forgettings (of a user, or of everything); a ticket is its value.
    seq: u64,
    /// The sequence number of each recently forgotten user's last forgetting.
    forgotten: LruCache<String, u64>,
    /// No fill with a ticket below this is kept: raised by `clear`, and to the
    /// sequence number of any forgetting evicted from `forgotten` (bounded memory
    /// at the price of refusing a few harmless fills, never of keeping a stale one).
    forgotten_floor: u64,
}

/// Taken before the database read that a fill's key comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(u64);

impl KeyCache {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                keys: LruCache::new(capacity),
                seq: 0,
                forgotten: LruCache::new(NonZeroUsize::new(FORGOTTEN_USERS).expect("non-zero")),
                forgotten_floor: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update; the LRUs are
        // still structurally valid, so keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take before reading key rows from the database; pass to [`Self::insert`].
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().seq)
    }

    pub fn get(&self, user_id: &str, version: u32) -> Option<Arc<DataKey>> {
        let hit = self
            .lock()
            .keys
            .get(&(user_id.to_owned(), version))
            .cloned();
        crate::metrics::key_cache(hit.is_some());
        hit
    }

    /// Keeps `key` unless the user was forgotten (or the cache cleared) since
    /// `ticket` was taken: then the row it came from may predate a shredding.
    /// Returns whether it was kept.
    pub fn insert(&self, user_id: &str, version: u32, key: Arc<DataKey>, ticket: Ticket) -> bool {
        let mut inner = self.lock();
        let stale = ticket.0 < inner.forgotten_floor
            || inner
                .forgotten
                .peek(user_id)
                .is_some_and(|&seq| seq > ticket.0);
        if stale {
            return false;
        }
        inner.keys.put((user_id.to_owned(), version), key);
        true
    }

    /// Drops every cached version of a user's keys (rotation, shredding), and refuses
    /// fills whose reads started before now.
    pub fn forget_user(&self, user_id: &str) {
        let mut inner = self.lock();
        inner.seq += 1;
        let seq = inner.seq;
        // `push` hands back the entry it pushed out: the user's own older one (nothing
        // to keep), or the least recently forgotten other user, whose forgetting the
        // floor now stands for.
        if let Some((evicted_user, evicted_seq)) = inner.forgotten.push(user_id.to_owned(), seq)
            && evicted_user != user_id
        {
            inner.forgotten_floor = inner.forgotten_floor.max(evicted_seq);
        }
        let stale: Vec<_> = inner
            .keys
            .iter()
            .filter(|((u, _), _)| u == user_id)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            inner.keys.pop(&key);
        }
    }

    /// Drops every cached key, and refuses fills whose reads started before now.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.seq += 1;
        inner.forgotten_floor = inner.seq;
        inner.keys.clear();
    }

    pub fn len(&self) -> usize {
        self.lock().keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Arc<DataKey> {
        Arc::new(DataKey::generate().unwrap())
    }

    #[test]
    fn bounded_and_forgets_users() {
        let cache = KeyCache::new(NonZeroUsize::new(2).unwrap());
        for (user, v) in [("a", 1), ("a", 2), ("b", 1)] {
            let t = cache.ticket();
            cache.insert(user, v, key(), t);
        }
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get("a", 1).is_none(),
            "least recently used was evicted"
        );
        cache.forget_user("a");
        assert!(cache.get("a", 2).is_none());
        assert!(cache.get("b", 1).is_some());
    }

    #[test]
    fn a_fill_read_before_a_forgetting_is_not_kept() {
        let cache = KeyCache::new(NonZeroUsize::new(8).unwrap());
        let before = cache.ticket();
        cache.forget_user("a");
        assert!(!cache.insert("a", 1, key(), before), "stale fill refused");
        assert!(cache.get("a", 1).is_none());
        // Other users are not affected, and a read after the forgetting fills.
        assert!(cache.insert("b", 1, key(), before));
        let after = cache.ticket();
        assert!(cache.insert("a", 1, key(), after));
        // `clear` refuses every older fill.
        let before_clear = cache.ticket();
        cache.clear();
        assert!(!cache.insert("b", 2, key(), before_clear));
    }

    #[test]
    fn forgettings_stay_effective_past_the_remembered_users() {
        let cache = KeyCache::new(NonZeroUsize::new(8).unwrap());
        let before = cache.ticket();
        cache.forget_user("victim");
        // Enough other forgettings to push "victim" out of the exact record.
        for i in 0..FORGOTTEN_USERS + 10 {
            cache.forget_user(&format!("other-{i}"));
        }
        assert!(!cache.insert("victim", 1, key(), before));
    }
}
