//! Copying inbound media from Twilio into our store, encrypted, in the background:
//! woken by each inbound MMS, and every few seconds for retries.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{FetchError, Media, service::store_error};
use crate::{
    crypto::Cleartext,
    domain::aad,
    error::Error,
    retry::{RetryPolicy, random_jitter},
    store::{self, media::ClaimedMedia},
};

/// Items claimed per pass.
const BATCH: u64 = 8;

impl Media {
    /// Runs the copier until `shutdown`.
    pub async fn run_copier(self, shutdown: CancellationToken) {
        let waker = self.waker();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = waker.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            // Passes until nothing is due; a pass is bounded (BATCH fetches), and
            // shutdown is checked between passes.
            while !shutdown.is_cancelled() {
                match self.copy_pending(BATCH).await {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "media copy pass failed");
                        break;
                    }
                }
            }
        }
    }

    /// Copies due inbound media from Twilio, the claimed items side by side (so a
    /// pass never outlasts its lease); returns how many were handled.
    pub async fn copy_pending(&self, limit: u64) -> Result<usize, Error> {
        let m = self.inner();
        let now = store::now();
        let lease = now
            + chrono::Duration::from_std(m.settings.fetch_timeout * 2)
                .unwrap_or(chrono::Duration::minutes(1));
        let claimed = store::media::claim_pending_any(m.store.conn(), now, lease, limit).await?;
        let n = claimed.len();
        let mut copies = tokio::task::JoinSet::new();
        for claim in claimed {
            let media = self.clone();
            copies.spawn(async move {
                if let Err(e) = media.copy_one(&claim).await {
                    tracing::warn!(media_id = %claim.id, error = %e, "copying inbound media failed");
                }
            });
        }
        while let Some(ended) = copies.join_next().await {
            if let Err(e) = ended
                && e.is_panic()
            {
                tracing::error!(error = %e, "a media copy panicked");
            }
        }
        Ok(n)
    }

    async fn copy_one(&self, claim: &ClaimedMedia) -> Result<(), Error> {
        let m = self.inner();
        let db = m.store.conn();
        let (user_id, id) = (claim.user_id.as_str(), claim.id.as_str());
        let Some(row) = store::media::find(db, user_id, id).await? else {
            return Ok(());
        };
        let Some(url_ct) = row.source_url_ct.as_deref() else {
            return Ok(());
        };
        let source_aad = aad::media_source_url(user_id, id);
        let Cleartext::Available(url) = m.keys.open(user_id, &source_aad, url_ct).await? else {
            return Ok(());
        };
        let url = String::from_utf8_lossy(&url).into_owned();
        let outcome = match m.fetcher.fetch(&url).await {
            Ok(bytes) => {
                let content_type = infer::get(&bytes)
                    .map_or(row.content_type.clone(), |k| k.mime_type().to_owned());
                let key = format!("media/{id}");
                let (sealed, _) = m
                    .keys
                    .seal(user_id, &aad::media_bytes(user_id, id), &bytes)
                    .await?;
                m.objects.put(&key, sealed).await.map_err(store_error)?;
                let size = bytes.len() as i64;
                let ours = store::media::mark_ready(db, claim, &content_type, size, &key).await?;
                if ours {
                    tracing::info!(media_id = %id, size, "inbound media copied");
                    crate::metrics::media_copy("copied");
                    if m.settings.delete_after_copy
                        && let Err(e) = m.fetcher.delete(&url).await
                    {
                        tracing::warn!(media_id = %id, error = %e, "could not delete the provider's copy");
                    }
                }
                ours
            }
            Err(FetchError::Refused(why)) => {
                tracing::warn!(media_id = %id, %why, "inbound media refused");
                crate::metrics::media_copy("refused");
                store::media::mark_attempt_failed(db, claim, store::now(), true, &why).await?
            }
            Err(FetchError::Retryable(why)) => {
                let give_up = claim.attempt as u32 >= m.settings.fetch_max_attempts;
                // `why` carries no URL (the fetcher cut it): safe at WARN.
                tracing::warn!(media_id = %id, %why, give_up, "inbound media download failed");
                crate::metrics::media_copy(if give_up { "failed" } else { "retry" });
                let delay =
                    RetryPolicy::default().delay(claim.attempt as u32, None, random_jitter());
                let next = store::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                store::media::mark_attempt_failed(db, claim, next, give_up, &why).await?
            }
        };
        if !outcome {
            // Our lease ran out and another copier claimed it: its outcome stands.
            tracing::warn!(media_id = %id, "media copy claim lost; outcome left to its new holder");
        }
        Ok(())
    }
}
