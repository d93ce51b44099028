//! Master-key rotation: rewrapping data keys under the active master key. Only the
//! wrapped keys change; messages are never re-encrypted (their data keys stay the
//! same, so cached keys stay valid too).
//!
//! Safe to interrupt and to run again: each key is rewrapped with a compare-and-set
//! on its current master key id, so a key is rewrapped once however many replicas
//! rotate at the same time, a key destroyed meanwhile stays destroyed, and a run that
//! stopped half-way simply finds fewer keys to do next time. Sends are never blocked:
//! they only read keys, or add new versions already under the active master key.

use std::collections::BTreeMap;

use super::{UserKeys, wrap};
use crate::{error::Error, store};

/// Keys rewrapped per transaction: short write locks on SQLite, short transactions
/// on PostgreSQL, and an interruption loses at most one page of work.
const PAGE: u64 = 200;

/// How many data keys each master key wraps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKeyUse {
    pub master_key_id: String,
    pub data_keys: u64,
    pub configured: bool,
    pub active: bool,
}

/// What [`UserKeys::key_status`] reports.
#[derive(Clone, Debug)]
pub struct KeyStatus {
    pub active: String,
    /// Every configured master key id and every id that still wraps a key.
    pub master_keys: Vec<MasterKeyUse>,
    pub destroyed: u64,
}

impl KeyStatus {
    /// Keys still wrapped under a master key other than the active one.
    pub fn remaining(&self) -> Vec<MasterKeyUse> {
        self.master_keys
            .iter()
            .filter(|m| !m.active && m.data_keys > 0)
            .cloned()
            .collect()
    }
}

/// What one rotation call did.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub rewrapped: u64,
    /// Wrapped under a master key this process does not have.
    pub skipped: u64,
    /// The state after the call.
    pub status: KeyStatus,
}

impl UserKeys {
    /// Rewraps up to `max_keys` (None: all) data keys that are not under the active
    /// master key.
    pub async fn rotate_master(&self, max_keys: Option<u64>) -> Result<Rotation, Error> {
        let active = self.masters().active();
        let mut after: Option<(String, i32)> = None;
        let (mut rewrapped, mut skipped) = (0u64, 0u64);
        loop {
            let budget = max_keys.map_or(PAGE, |m| PAGE.min(m - rewrapped));
            if budget == 0 {
                break;
            }
            let page = store::user_keys::wrapped_not_under_any(
                self.store().conn(),
                active.id(),
                after.as_ref().map(|(u, v)| (u.as_str(), *v)),
                budget,
            )
            .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.user_id.clone(), last.version));
            let txn = self.store().begin_write().await?;
            for row in &page {
                let Some(wrapped) = row.wrapped_dek.as_deref() else {
                    continue;
                };
                let Ok(old) = self.masters().get(&row.master_key_id) else {
                    // Another replica's key, or one removed too early: leave it for a
                    // replica that has it, and say so.
                    tracing::warn!(user_id = %row.user_id, version = row.version, master_key_id = %row.master_key_id,
                        "data key wrapped under a master key this replica does not have; not rewrapped");
                    skipped += 1;
                    continue;
                };
                let version = u32::try_from(row.version)
                    .map_err(|_| super::CryptoError::Malformed("negative key version"))?;
                let dek = wrap::unwrap_dek(old, &row.user_id, version, wrapped)?;
                let rewrapped_dek = wrap::wrap_dek(active, &row.user_id, version, &dek)?;
                if store::user_keys::rewrap(
                    &txn,
                    &row.user_id,
                    row.version,
                    old.id(),
                    active.id(),
                    rewrapped_dek,
                )
                .await?
                {
                    rewrapped += 1;
                }
            }
            txn.commit().await?;
        }
        Ok(Rotation {
            rewrapped,
            skipped,
            status: self.key_status().await?,
        })
    }

    /// Data keys per master key id, and destroyed key versions.
    pub async fn key_status(&self) -> Result<KeyStatus, Error> {
        let (counts, destroyed) =
            store::user_keys::count_by_master_any(self.store().conn()).await?;
        let active = self.masters().active().id().to_owned();
        let mut ids: BTreeMap<String, u64> =
            self.masters().ids().map(|id| (id.to_owned(), 0)).collect();
        for (id, n) in counts {
            ids.insert(id, n.max(0) as u64);
        }
        let mut master_keys: Vec<MasterKeyUse> = ids
            .into_iter()
            .map(|(id, data_keys)| MasterKeyUse {
                configured: self.masters().get(&id).is_ok(),
                active: id == active,
                master_key_id: id,
                data_keys,
            })
            .collect();
        // The active key first, then the others by id.
        master_keys.sort_by_key(|m| !m.active);
        Ok(KeyStatus {
            active,
            master_keys,
            destroyed: destroyed.max(0) as u64,
        })
    }
}
