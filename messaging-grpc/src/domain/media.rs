//! Media: upload, read, the signed URLs Twilio fetches, and copying inbound media.

use std::{collections::HashMap, sync::Arc, time::SystemTime};

use tokio::sync::Notify;
use uuid::Uuid;

use super::Messaging;
use crate::{
    crypto::{Aad, Cleartext},
    error::Error,
    media::{FetchError, Fetcher, MAX_MEDIA_BYTES, MediaObjects, MediaSettings, sniff_allowed},
    store::{self, entities::media},
};

/// Everything media operations need besides the store and keys.
pub struct MediaCtx {
    pub objects: MediaObjects,
    pub settings: MediaSettings,
    pub fetcher: Fetcher,
    /// GATEWAY_PUBLIC_URL: where Twilio fetches `/media/{token}`.
    pub public_url: String,
    /// Wakes the inbound media downloader.
    pub signal: Arc<Notify>,
}

fn bytes_aad(user_id: &str, media_id: &str) -> Aad {
    Aad::field("media", "bytes", user_id, media_id)
}

pub(super) fn source_url_aad(user_id: &str, media_id: &str) -> Aad {
    Aad::field("media", "source_url", user_id, media_id)
}

pub(super) fn link_url_aad(user_id: &str, message_id: &str, position: i32) -> Aad {
    Aad::field(
        "message_media",
        "url",
        user_id,
        &format!("{message_id}/{position}"),
    )
}

fn store_error(e: object_store::Error) -> Error {
    Error::MediaStore(e.to_string())
}

impl Messaging {
    pub(super) fn media(&self) -> Result<&MediaCtx, Error> {
        self.media
            .as_deref()
            .ok_or_else(|| Error::FailedPrecondition("media are not configured".into()))
    }

    /// Stores an uploaded image for `user_id`, encrypted. The type is sniffed from the
    /// bytes; only JPEG, PNG and GIF are accepted.
    pub async fn upload_media(
        &self,
        user_id: &str,
        declared: &str,
        bytes: Vec<u8>,
    ) -> Result<media::Model, Error> {
        let ctx = self.media()?;
        if bytes.is_empty() {
            return Err(Error::invalid("chunk", "the upload is empty"));
        }
        if bytes.len() > MAX_MEDIA_BYTES {
            return Err(Error::invalid("chunk", "media are limited to 5 MB"));
        }
        let content_type = sniff_allowed(&bytes).ok_or_else(|| {
            Error::invalid(
                "chunk",
                format!("content is not a JPEG, PNG or GIF image (declared `{declared}`)"),
            )
        })?;
        let id = Uuid::now_v7().to_string();
        let key = format!("media/{id}");
        let size = bytes.len() as i64;
        let (sealed, _) = self
            .keys
            .seal(user_id, &bytes_aad(user_id, &id), &bytes)
            .await?;
        ctx.objects.put(&key, sealed).await.map_err(store_error)?;
        let now = store::now();
        let row = media::Model {
            id,
            user_id: user_id.to_owned(),
            direction: super::Direction::Outbound.as_str().to_owned(),
            status: store::media::READY.to_owned(),
            content_type: content_type.to_owned(),
            size_bytes: size,
            storage_key: Some(key),
            source_url_ct: None,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
        };
        store::media::insert(self.store.conn(), row.clone()).await?;
        Ok(row)
    }

    /// The owner's media bytes, decrypted.
    pub async fn get_media(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<(media::Model, Vec<u8>), Error> {
        let id = super::require("media_id", id)?;
        let row = store::media::find(self.store.conn(), user_id, id)
            .await?
            .ok_or(Error::NotFound("media_id"))?;
        self.read_media(row).await
    }

    /// Bytes of a media item for the gateway's signed URL (the token named it).
    pub async fn serve_media(&self, id: &str) -> Result<(media::Model, Vec<u8>), Error> {
        let id = super::require("media_id", id)?;
        let row = store::media::find_any(self.store.conn(), id)
            .await?
            .ok_or(Error::NotFound("media_id"))?;
        self.read_media(row).await
    }

    async fn read_media(&self, row: media::Model) -> Result<(media::Model, Vec<u8>), Error> {
        let ctx = self.media()?;
        match row.status.as_str() {
            store::media::READY => {}
            store::media::PENDING => {
                return Err(Error::FailedPrecondition(
                    "media_id: still being copied from Twilio".into(),
                ));
            }
            _ => {
                return Err(Error::FailedPrecondition(
                    "media_id: could not be copied from Twilio".into(),
                ));
            }
        }
        let key = row
            .storage_key
            .as_deref()
            .ok_or(Error::NotFound("media_id"))?;
        let sealed = ctx.objects.get(key).await.map_err(store_error)?;
        match self
            .keys
            .open(&row.user_id, &bytes_aad(&row.user_id, &row.id), &sealed)
            .await?
        {
            Cleartext::Available(bytes) => Ok((row, bytes.to_vec())),
            Cleartext::Destroyed => Err(Error::FailedPrecondition(
                "media_id: content destroyed".into(),
            )),
        }
    }

    /// The URL Twilio fetches an outbound media item from: the gateway's
    /// `/media/{token}` with a signed, expiring token.
    pub fn media_url(&self, media_id: &str) -> Result<String, Error> {
        let ctx = self.media()?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let expires = (now + ctx.settings.url_ttl).as_secs();
        let token = webhook_gateway::media_token::mint(&ctx.settings.url_secret, media_id, expires);
        Ok(format!(
            "{}/media/{token}",
            ctx.public_url.trim_end_matches('/')
        ))
    }

    /// The media of some of the user's messages, in order, keyed by message id.
    pub(super) async fn media_of(
        &self,
        user_id: &str,
        message_ids: Vec<String>,
    ) -> Result<HashMap<String, Vec<media::Model>>, Error> {
        let db = self.store.conn();
        let links = store::media::links(db, message_ids).await?;
        let ids: Vec<String> = links.iter().filter_map(|l| l.media_id.clone()).collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: HashMap<String, media::Model> = store::media::find_many(db, user_id, ids)
            .await?
            .into_iter()
            .map(|m| (m.id.clone(), m))
            .collect();
        let mut out: HashMap<String, Vec<media::Model>> = HashMap::new();
        for link in links {
            if let Some(m) = link.media_id.and_then(|id| rows.get(&id)) {
                out.entry(link.message_id).or_default().push(m.clone());
            }
        }
        Ok(out)
    }

    /// Copies due inbound media from Twilio; returns how many were handled.
    pub async fn copy_pending_media(&self, limit: u64) -> Result<usize, Error> {
        let ctx = self.media()?;
        let now = store::now();
        let lease = now
            + chrono::Duration::from_std(ctx.settings.fetch_timeout * 2)
                .unwrap_or(chrono::Duration::minutes(1));
        let claimed = store::media::claim_pending(self.store.conn(), now, lease, limit).await?;
        let n = claimed.len();
        for (id, user_id) in claimed {
            if let Err(e) = self.copy_one(&user_id, &id).await {
                tracing::warn!(media_id = %id, error = %e, "copying inbound media failed");
            }
        }
        Ok(n)
    }

    async fn copy_one(&self, user_id: &str, id: &str) -> Result<(), Error> {
        let ctx = self.media()?;
        let db = self.store.conn();
        let Some(row) = store::media::find(db, user_id, id).await? else {
            return Ok(());
        };
        let Some(url_ct) = row.source_url_ct.as_deref() else {
            return Ok(());
        };
        let Cleartext::Available(url) = self
            .keys
            .open(user_id, &source_url_aad(user_id, id), url_ct)
            .await?
        else {
            return Ok(());
        };
        let url = String::from_utf8_lossy(&url).into_owned();
        let attempts = row.attempts + 1;
        match ctx.fetcher.fetch(&url).await {
            Ok(bytes) => {
                let content_type = infer::get(&bytes)
                    .map_or(row.content_type.clone(), |k| k.mime_type().to_owned());
                let key = format!("media/{id}");
                let (sealed, _) = self
                    .keys
                    .seal(user_id, &bytes_aad(user_id, id), &bytes)
                    .await?;
                ctx.objects.put(&key, sealed).await.map_err(store_error)?;
                store::media::mark_ready(db, user_id, id, &content_type, bytes.len() as i64, &key)
                    .await?;
                tracing::info!(media_id = %id, size = bytes.len(), "inbound media copied");
                if ctx.settings.delete_after_copy
                    && let Err(e) = ctx.fetcher.delete(&url).await
                {
                    tracing::warn!(media_id = %id, error = %e, "could not delete the provider's copy");
                }
            }
            Err(FetchError::Refused(why)) => {
                tracing::warn!(media_id = %id, %why, "inbound media refused");
                store::media::mark_attempt_failed(
                    db,
                    user_id,
                    id,
                    attempts,
                    store::now(),
                    true,
                    &why,
                )
                .await?;
            }
            Err(FetchError::Retryable(why)) => {
                let give_up = attempts as u32 >= ctx.settings.fetch_max_attempts;
                let delay = crate::dispatch::RetryPolicy::default().delay(
                    attempts as u32,
                    None,
                    crate::dispatch::random_jitter(),
                );
                let next = store::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                store::media::mark_attempt_failed(db, user_id, id, attempts, next, give_up, &why)
                    .await?;
            }
        }
        Ok(())
    }
}
