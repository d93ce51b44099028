//! Bounded cache of unwrapped data keys. Evicted keys are zeroized when their last
//! `Arc` is dropped (see `DataKey`).

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
};

use lru::LruCache;

use super::DataKey;

/// LRU of `(user id, key version)` → unwrapped key.
pub struct KeyCache {
    inner: Mutex<LruCache<(String, u32), Arc<DataKey>>>,
}

impl KeyCache {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            inner: Mutex::new(LruCache::new(capacity)),
        }
    }

    pub fn get(&self, user_id: &str, version: u32) -> Option<Arc<DataKey>> {
        // A poisoned lock only means another thread panicked mid-`get`; the LRU is
        // still structurally valid, so keep serving.
        let mut cache = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let hit = cache.get(&(user_id.to_owned(), version)).cloned();
        crate::metrics::key_cache(hit.is_some());
        hit
    }

    pub fn insert(&self, user_id: &str, version: u32, key: Arc<DataKey>) {
        let mut cache = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        cache.put((user_id.to_owned(), version), key);
    }

    /// Drops every cached version of a user's keys (rotation, shredding).
    pub fn forget_user(&self, user_id: &str) {
        let mut cache = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let stale: Vec<_> = cache
            .iter()
            .filter(|((u, _), _)| u == user_id)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            cache.pop(&key);
        }
    }

    /// Drops every cached key.
    pub fn clear(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_forgets_users() {
        let cache = KeyCache::new(NonZeroUsize::new(2).unwrap());
        for (user, v) in [("a", 1), ("a", 2), ("b", 1)] {
            cache.insert(user, v, Arc::new(DataKey::generate().unwrap()));
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
}
