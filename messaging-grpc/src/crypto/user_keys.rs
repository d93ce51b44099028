//! Per-user data keys: created on first use, wrapped under the active master key,
//! unwrapped on demand through the bounded cache.

use std::{num::NonZeroUsize, sync::Arc};

use zeroize::Zeroizing;

use super::{
    Aad, Algorithm, CryptoError, DataKey, Header, KeyCache, MasterKeyRing, NumberKey, SearchKey,
    cache::Ticket, envelope, wrap,
};
use crate::{
    error::Error,
    store::{self, Store, entities::user_key},
};

/// Algorithm recorded for how `wrapped_dek` is wrapped.
const WRAP_ALGORITHM: &str = "aes-256-gcm";

/// A decrypted field, or the fact that its key was destroyed (crypto-shredding).
pub enum Cleartext {
    Available(Zeroizing<Vec<u8>>),
    Destroyed,
}

/// One user's data keys as one request sees them, read with one query: the newest
/// version (what new data is sealed and indexed with) and every live version (what
/// lookups and searches must match). A request that seals and looks up several
/// things — a send seals the body and the contact number twice, indexes the body and
/// the number, looks the number up — reads the key rows once instead of once per item,
/// and all of its items agree on one version.
pub struct KeySet {
    cipher: Algorithm,
    /// The newest version and its key; `None` when it was destroyed (shredded).
    current: Option<(u32, Arc<DataKey>)>,
    /// Every key not destroyed, oldest first.
    live: Vec<Arc<DataKey>>,
}

impl KeySet {
    /// Seals `plaintext` with the newest key; the ciphertext and that key's version.
    pub fn seal(&self, aad: &Aad, plaintext: &[u8]) -> Result<(Vec<u8>, u32), Error> {
        let (version, key) = self.current.as_ref().ok_or_else(shredded)?;
        let ct = envelope::seal(self.cipher, key, *version, aad, plaintext)?;
        Ok((ct, *version))
    }

    /// The search key new messages are indexed under.
    pub fn search_key(&self) -> Result<SearchKey, Error> {
        let (_, key) = self.current.as_ref().ok_or_else(shredded)?;
        Ok(SearchKey::derive(key))
    }

    /// The number key new contacts are indexed under.
    pub fn number_key(&self) -> Result<NumberKey, Error> {
        let (_, key) = self.current.as_ref().ok_or_else(shredded)?;
        Ok(NumberKey::derive(key))
    }

    /// The search keys of every live version (empty once shredded).
    pub fn search_keys(&self) -> Vec<SearchKey> {
        self.live.iter().map(|k| SearchKey::derive(k)).collect()
    }

    /// The number keys of every live version (empty once shredded).
    pub fn number_keys(&self) -> Vec<NumberKey> {
        self.live.iter().map(|k| NumberKey::derive(k)).collect()
    }
}

/// Seals and opens user data with the user's data keys.
pub struct UserKeys {
    store: Store,
    masters: Arc<MasterKeyRing>,
    cipher: Algorithm,
    cache: KeyCache,
    /// Runs between a key row's read and its cache fill: where a test lets a
    /// shredding commit inside the race window.
    #[cfg(test)]
    fill_hook: std::sync::Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl UserKeys {
    pub fn new(
        store: Store,
        masters: Arc<MasterKeyRing>,
        cipher: Algorithm,
        cache_capacity: NonZeroUsize,
    ) -> Self {
        Self {
            store,
            masters,
            cipher,
            cache: KeyCache::new(cache_capacity),
            #[cfg(test)]
            fill_hook: std::sync::Mutex::new(None),
        }
    }

    /// Seals `plaintext` with the user's current key; returns the ciphertext and the
    /// key version it used.
    pub async fn seal(
        &self,
        user_id: &str,
        aad: &Aad,
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, u32), Error> {
        let (version, key) = self.current(user_id).await?;
        let ct = envelope::seal(self.cipher, &key, version, aad, plaintext)?;
        Ok((ct, version))
    }

    /// Opens a field sealed by [`Self::seal`] for the same user and AAD.
    pub async fn open(
        &self,
        user_id: &str,
        aad: &Aad,
        ciphertext: &[u8],
    ) -> Result<Cleartext, Error> {
        let header = Header::parse(ciphertext)?;
        match self.key(user_id, header.key_version).await? {
            Some(key) => Ok(Cleartext::Available(envelope::open(&key, aad, ciphertext)?)),
            None => Ok(Cleartext::Destroyed),
        }
    }

    /// The user's keys for one request, read once ([`KeySet`]). With `create`, a user
    /// without any key gets version 1 first (what [`Self::seal`] does on first use);
    /// without, such a user's set is empty (lookups match nothing, sealing is refused).
    pub async fn key_set(&self, user_id: &str, create: bool) -> Result<KeySet, Error> {
        loop {
            let ticket = self.cache.ticket();
            let rows = store::user_keys::all_of(self.store.conn(), user_id).await?;
            if rows.is_empty() && create {
                self.create(user_id, 1).await?;
                // Whether we or a concurrent request created it, read what is stored.
                continue;
            }
            let mut live = Vec::with_capacity(rows.len());
            let mut current = None;
            for row in &rows {
                current = match row.wrapped_dek {
                    Some(_) => {
                        let key = self.unwrap_row(row, ticket)?;
                        live.push(key.clone());
                        Some((version_of(row)?, key))
                    }
                    None => None,
                };
            }
            return Ok(KeySet {
                cipher: self.cipher,
                current,
                live,
            });
        }
    }

    /// Whether the user's newest data key was destroyed (ShredUser) and no new one
    /// made since: nothing can be sealed for them.
    pub async fn is_shredded(&self, user_id: &str) -> Result<bool, Error> {
        let latest = store::user_keys::latest(self.store.conn(), user_id).await?;
        Ok(latest.is_some_and(|row| row.wrapped_dek.is_none()))
    }

    /// The version new data is sealed with, creating version 1 on first use. A user
    /// whose newest key was destroyed (ShredUser) gets no key by itself: sealing is
    /// refused until an operator creates one with [`Self::rotate_user`], so nothing
    /// new is stored for a shredded user by accident.
    async fn current(&self, user_id: &str) -> Result<(u32, Arc<DataKey>), Error> {
        loop {
            let ticket = self.cache.ticket();
            let latest = store::user_keys::latest(self.store.conn(), user_id).await?;
            match &latest {
                Some(row) if row.wrapped_dek.is_some() => {
                    let version = version_of(row)?;
                    return Ok((version, self.unwrap_row(row, ticket)?));
                }
                Some(_) => return Err(shredded()),
                None => {}
            }
            self.create(user_id, 1).await?;
            // Loop: whether we or a concurrent request created it, read what is stored.
        }
    }

    /// Creates the user's next key version (wrapped under the active master key) and
    /// returns it: new data is sealed with it from now on, on every replica (each
    /// seal reads the newest version), while older versions keep opening. After a
    /// shredding this is how the user gets a key again.
    pub async fn rotate_user(&self, user_id: &str) -> Result<u32, Error> {
        loop {
            let latest = store::user_keys::latest(self.store.conn(), user_id).await?;
            let next = match &latest {
                Some(row) => version_of(row)? + 1,
                None => 1,
            };
            if self.create(user_id, next).await? {
                return Ok(next);
            }
            // A concurrent creator took this version: go one further.
        }
    }

    /// Drops the user's unwrapped keys from this process's cache (their wrapped keys
    /// were destroyed, here or on another replica).
    pub fn forget_user(&self, user_id: &str) {
        self.cache.forget_user(user_id);
    }

    /// Drops every cached key (revocations may have been missed).
    pub fn forget_all(&self) {
        self.cache.clear();
    }

    pub(super) fn masters(&self) -> &MasterKeyRing {
        &self.masters
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// The key of a given version; `None` if it was destroyed.
    async fn key(&self, user_id: &str, version: u32) -> Result<Option<Arc<DataKey>>, Error> {
        if let Some(hit) = self.cache.get(user_id, version) {
            return Ok(Some(hit));
        }
        let ticket = self.cache.ticket();
        let row = store::user_keys::find(self.store.conn(), user_id, version)
            .await?
            .ok_or(CryptoError::Malformed(
                "ciphertext names a key version that does not exist",
            ))?;
        if row.wrapped_dek.is_none() {
            return Ok(None);
        }
        // The cache was just asked: unwrap without asking (and counting a miss) twice.
        self.unwrap_into_cache(&row, ticket).map(Some)
    }

    /// `ticket`: taken before `row` was read (see [`KeyCache::insert`]).
    fn unwrap_row(&self, row: &user_key::Model, ticket: Ticket) -> Result<Arc<DataKey>, Error> {
        let version = version_of(row)?;
        if let Some(hit) = self.cache.get(&row.user_id, version) {
            return Ok(hit);
        }
        self.unwrap_into_cache(row, ticket)
    }

    /// Unwraps `row`'s key and caches it, unless the user was forgotten since
    /// `ticket`: the key still serves this request (its read came first), but a
    /// shredding that committed meanwhile must not be outlived by the cache.
    fn unwrap_into_cache(
        &self,
        row: &user_key::Model,
        ticket: Ticket,
    ) -> Result<Arc<DataKey>, Error> {
        let version = version_of(row)?;
        let wrapped = row
            .wrapped_dek
            .as_deref()
            .ok_or(CryptoError::Malformed("key destroyed"))?;
        let master = self.masters.get(&row.master_key_id)?;
        let key = Arc::new(wrap::unwrap_dek(master, &row.user_id, version, wrapped)?);
        #[cfg(test)]
        if let Some(hook) = &*self.fill_hook.lock().unwrap_or_else(|e| e.into_inner()) {
            hook();
        }
        self.cache
            .insert(&row.user_id, version, key.clone(), ticket);
        Ok(key)
    }

    /// Stores a new key version; false when it exists already (a concurrent creator).
    async fn create(&self, user_id: &str, version: u32) -> Result<bool, Error> {
        let dek = DataKey::generate()?;
        let master = self.masters.active();
        let wrapped = wrap::wrap_dek(master, user_id, version, &dek)?;
        let (user, master_id) = (user_id.to_owned(), master.id().to_owned());
        // Through the write pipeline, as every write (SQLite has one writer).
        let inserted = self
            .store
            .write_for(user_id, move |txn| {
                Box::pin(async move {
                    store::user_keys::insert_if_absent(
                        txn,
                        store::user_keys::NewKey {
                            user_id: &user,
                            version,
                            wrapped_dek: wrapped,
                            master_key_id: &master_id,
                            algorithm: WRAP_ALGORITHM,
                        },
                    )
                    .await
                    .map_err(Error::from)
                })
            })
            .await?;
        Ok(inserted)
    }
}

/// What sealing for a shredded user answers.
fn shredded() -> Error {
    Error::FailedPrecondition(
        "the user's data keys were destroyed (ShredUser); an operator must create a new key \
         with RotateUserKey before anything is stored for them again"
            .into(),
    )
}

fn version_of(row: &user_key::Model) -> Result<u32, Error> {
    u32::try_from(row.version).map_err(|_| CryptoError::Malformed("negative key version").into())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Weak};

    use super::*;
    use crate::crypto::MasterKey;

    async fn keys(dir: &std::path::Path) -> Arc<UserKeys> {
        let url = format!("sqlite://{}?mode=rwc", dir.join("keys.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let masters =
            MasterKeyRing::from_keys(vec![MasterKey::new("k1", DataKey::generate().unwrap())])
                .unwrap();
        Arc::new(UserKeys::new(
            store,
            Arc::new(masters),
            Algorithm::Aes256Gcm,
            NonZeroUsize::new(16).unwrap(),
        ))
    }

    /// A read fetches the key row, a shredding commits and drops the user's keys from
    /// the cache, then the read fills the cache: the next read must not decrypt from
    /// that stale fill. The hook puts the shredding exactly in that window.
    #[tokio::test]
    async fn a_fill_racing_a_shredding_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys(dir.path()).await;
        let aad = Aad::field("m1", "body", "u", "x");
        let (sealed, _) = keys.seal("u", &aad, b"secret").await.unwrap();
        keys.forget_all();

        // In the window: the shredding's forget_user (its commit comes right after,
        // below, before anything else reads).
        let weak: Weak<UserKeys> = Arc::downgrade(&keys);
        *keys.fill_hook.lock().unwrap() = Some(Box::new(move || {
            if let Some(k) = weak.upgrade() {
                k.forget_user("u");
            }
        }));
        let first = keys.open("u", &aad, &sealed).await.unwrap();
        assert!(
            matches!(first, Cleartext::Available(_)),
            "the read that started before the shredding still opens"
        );
        *keys.fill_hook.lock().unwrap() = None;
        store::user_keys::destroy_all(keys.store().conn(), "u")
            .await
            .unwrap();

        let after = keys.open("u", &aad, &sealed).await.unwrap();
        assert!(
            matches!(after, Cleartext::Destroyed),
            "a shredded user's key was served from the cache"
        );
    }
}
