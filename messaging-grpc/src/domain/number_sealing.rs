//! The start-up step that seals contact numbers stored in clear before numbers were
//! sealed (migration m20261127_000001 added the columns; sealing needs the users' keys,
//! which a migration does not have). It runs after migrations and before the service
//! serves, so no lookup ever meets an unsealed row. Batched (one transaction a batch),
//! idempotent (only rows still unsealed are touched, each update conditional on it)
//! and resumable (a restart carries on with what is left).

use std::collections::HashMap;

use super::{Records, aad};
use crate::{
    crypto::Aad,
    error::Error,
    store::{self, entities::contact},
};

/// Rows sealed per transaction.
pub const SEAL_BATCH: u64 = 500;

/// What one run of [`Records::seal_legacy_numbers`] sealed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LegacySealed {
    pub contacts: u64,
    pub messages: u64,
    /// Rows of users already shredded: their number was erased, not sealed.
    pub erased: u64,
}

impl Records {
    /// Seals every contact number still in clear, `batch` rows a transaction.
    pub async fn seal_legacy_numbers(&self, batch: u64) -> Result<LegacySealed, Error> {
        let mut done = LegacySealed::default();
        let mut shredded = HashMap::new();
        let mut after = String::new();
        // Sealing may create a user's first key (a write of its own), so each batch is
        // sealed before its transaction opens.
        loop {
            let rows =
                store::legacy_numbers::contacts_any(self.store.conn(), &after, batch).await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            let mut sealed = Vec::with_capacity(rows.len());
            for c in &rows {
                if self.shredded(&mut shredded, &c.user_id).await? {
                    done.erased += 1;
                    sealed.push((Vec::new(), None));
                } else {
                    let (ct, index) = self.seal_legacy_contact(c).await?;
                    sealed.push((ct, Some(index)));
                }
            }
            let txn = self.store.begin_write().await?;
            for (c, (ct, index)) in rows.iter().zip(sealed) {
                store::legacy_numbers::seal_contact(&txn, &c.user_id, &c.id, ct, index).await?;
            }
            txn.commit().await?;
            done.contacts += rows.len() as u64;
        }
        after.clear();
        loop {
            let rows =
                store::legacy_numbers::messages_any(self.store.conn(), &after, batch).await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            let mut sealed = Vec::with_capacity(rows.len());
            for m in &rows {
                if self.shredded(&mut shredded, &m.user_id).await? {
                    done.erased += 1;
                    sealed.push(Vec::new());
                } else {
                    let aad = aad::message_contact_number(&m.user_id, &m.id);
                    sealed.push(
                        self.seal_legacy(&m.user_id, &aad, &m.legacy_contact_e164)
                            .await?,
                    );
                }
            }
            let txn = self.store.begin_write().await?;
            for (m, ct) in rows.iter().zip(sealed) {
                store::legacy_numbers::seal_message(&txn, &m.user_id, &m.id, ct).await?;
            }
            txn.commit().await?;
            done.messages += rows.len() as u64;
        }
        if done != LegacySealed::default() {
            store::legacy_numbers::compact_any(self.store.conn()).await?;
            tracing::info!(
                contacts = done.contacts,
                messages = done.messages,
                erased = done.erased,
                "contact numbers stored in clear are now sealed"
            );
        }
        Ok(done)
    }

    /// A legacy contact's ciphertext and its index under the user's current key.
    async fn seal_legacy_contact(&self, c: &contact::Model) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let aad = aad::contact_number(&c.user_id, &c.id);
        // One read of the user's keys for both, so they agree on one version.
        let keys = self.keys.key_set(&c.user_id, true).await?;
        let (ct, _) = keys.seal(&aad, c.legacy_e164.as_bytes())?;
        let index = keys.number_key()?.index(&c.legacy_e164);
        Ok((ct, index))
    }

    async fn seal_legacy(&self, user_id: &str, aad: &Aad, e164: &str) -> Result<Vec<u8>, Error> {
        Ok(self.keys.seal(user_id, aad, e164.as_bytes()).await?.0)
    }

    /// Whether the user was shredded (asked once a user per run).
    async fn shredded(
        &self,
        seen: &mut HashMap<String, bool>,
        user_id: &str,
    ) -> Result<bool, Error> {
        if let Some(known) = seen.get(user_id) {
            return Ok(*known);
        }
        let shredded = self.keys.is_shredded(user_id).await?;
        seen.insert(user_id.to_owned(), shredded);
        Ok(shredded)
    }
}
