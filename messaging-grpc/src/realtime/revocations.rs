//! PostgreSQL LISTEN for destroyed data keys: when any replica shreds a user, every
//! replica drops that user's unwrapped keys from its cache, so none keeps decrypting
//! from memory what the database can no longer decrypt.

use std::{sync::Arc, time::Duration};

use sea_orm::sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::{crypto::UserKeys, store::user_keys::REVOKE_CHANNEL};

/// Listens until `shutdown`, reconnecting after failures. Notifications sent while the
/// connection was down are lost, so every (re)connection first drops the whole cache:
/// keys are unwrapped again from the database, where destroyed ones are gone.
pub async fn listen_key_revocations(url: String, keys: Arc<UserKeys>, shutdown: CancellationToken) {
    loop {
        let mut listener = match connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "key revocation LISTEN connection failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                }
            }
        };
        keys.forget_all();
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                n = listener.try_recv() => n,
            };
            match next {
                Ok(Some(n)) => {
                    keys.forget_user(n.payload());
                    tracing::info!(user_id = %n.payload(), "data keys dropped from the cache (destroyed)");
                }
                // The connection dropped; try_recv reconnects on the next call.
                Ok(None) => keys.forget_all(),
                Err(e) => {
                    tracing::warn!(error = %e, "key revocation LISTEN connection lost");
                    break;
                }
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(REVOKE_CHANNEL).await?;
    Ok(listener)
}
