//! PostgreSQL LISTEN for destroyed data keys: when any replica shreds a user, every
//! replica drops that user's unwrapped keys from its cache, so none keeps decrypting
//! from memory what the database can no longer decrypt.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::listener::listen;
use crate::{crypto::UserKeys, store::user_keys::REVOKE_CHANNEL};

/// Listens until `shutdown`, reconnecting after failures. Notifications sent while the
/// connection was down are lost, so every (re)connection first drops the whole cache:
/// keys are unwrapped again from the database, where destroyed ones are gone.
pub async fn listen_key_revocations(url: String, keys: Arc<UserKeys>, shutdown: CancellationToken) {
    let forget = |user_id: &str| {
        keys.forget_user(user_id);
        tracing::info!(user_id = %user_id, "data keys dropped from the cache (destroyed)");
    };
    let what = "key revocation ";
    listen(
        &url,
        REVOKE_CHANNEL,
        what,
        &shutdown,
        || keys.forget_all(),
        forget,
    )
    .await;
}
