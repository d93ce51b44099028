//! Data keys: master-key rotation, a user's new key version, and crypto-shredding.
//! Each action is recorded in the audit log.

use serde_json::json;

use super::{Admin, actions, numbers::parse_user_id};
use crate::{
    crypto::{KeyStatus, Rotation},
    error::Error,
    store::{self, audit::NewAuditEvent},
};

/// What [`Admin::shred_user`] did.
#[derive(Clone, Debug)]
pub struct Shredded {
    pub destroyed_key_versions: u64,
    pub messages: u64,
    pub media: u64,
    pub media_objects_deleted: u64,
    pub released_numbers: Vec<String>,
}

impl Admin {
    /// Rewraps data keys under the active master key (`max_keys` 0: all of them).
    pub async fn rotate_master_key(&self, actor: &str, max_keys: u32) -> Result<Rotation, Error> {
        let limit = (max_keys > 0).then_some(u64::from(max_keys));
        let rotation = self.keys().rotate_master(limit).await?;
        let remaining: serde_json::Map<String, serde_json::Value> = rotation
            .status
            .remaining()
            .into_iter()
            .map(|m| (m.master_key_id, m.data_keys.into()))
            .collect();
        store::audit::insert(
            self.store().conn(),
            NewAuditEvent {
                actor,
                action: actions::ROTATE_MASTER_KEY,
                target_user_id: None,
                target: Some(&rotation.status.active),
                details: json!({
                    "rewrapped": rotation.rewrapped,
                    "skipped": rotation.skipped,
                    "remaining": remaining,
                }),
            },
        )
        .await?;
        tracing::info!(actor, active = %rotation.status.active, rewrapped = rotation.rewrapped,
            skipped = rotation.skipped, "master key rotation");
        Ok(rotation)
    }

    pub async fn key_status(&self) -> Result<KeyStatus, Error> {
        self.keys().key_status().await
    }

    /// A new data-key version for the user's new messages.
    pub async fn rotate_user_key(&self, actor: &str, user_id: &str) -> Result<u32, Error> {
        let user_id = parse_user_id(user_id)?;
        let version = self.keys().rotate_user(user_id).await?;
        store::audit::insert(
            self.store().conn(),
            NewAuditEvent {
                actor,
                action: actions::ROTATE_USER_KEY,
                target_user_id: Some(user_id),
                target: None,
                details: json!({ "key_version": version }),
            },
        )
        .await?;
        tracing::info!(actor, user_id, version, "user key rotated");
        Ok(version)
    }

    /// Crypto-shredding: in one transaction the user's wrapped keys are destroyed,
    /// their media marked destroyed, their numbers taken back, the action audited and
    /// (PostgreSQL) every replica told to drop the keys from its cache at commit;
    /// after the commit the media objects are deleted. Irreversible.
    pub async fn shred_user(
        &self,
        actor: &str,
        user_id: &str,
        confirm: &str,
    ) -> Result<Shredded, Error> {
        let user_id = parse_user_id(user_id)?;
        if confirm != user_id {
            return Err(Error::invalid(
                "confirm_user_id",
                "must repeat user_id: shredding cannot be undone",
            ));
        }
        let txn = self.store().begin_write().await?;
        let destroyed = store::user_keys::destroy_all(&txn, user_id).await?;
        let released_numbers = store::numbers::release_all_of(&txn, user_id).await?;
        let (objects, media) = store::media::destroy_all_of(&txn, user_id).await?;
        let messages = store::messages::count_of(&txn, user_id).await?;
        store::audit::insert(
            &txn,
            NewAuditEvent {
                actor,
                action: actions::SHRED_USER,
                target_user_id: Some(user_id),
                target: None,
                details: json!({
                    "destroyed_key_versions": destroyed,
                    "messages": messages,
                    "media": media,
                    "released_numbers": released_numbers.len(),
                }),
            },
        )
        .await?;
        store::user_keys::notify_revoked(&txn, user_id).await?;
        txn.commit().await?;
        self.keys().forget_user(user_id);
        let media_objects_deleted = self.media.delete_objects(&objects).await;
        tracing::warn!(
            actor,
            user_id,
            destroyed,
            messages,
            media,
            media_objects_deleted,
            numbers = released_numbers.len(),
            "user shredded"
        );
        Ok(Shredded {
            destroyed_key_versions: destroyed,
            messages,
            media,
            media_objects_deleted,
            released_numbers,
        })
    }
}
