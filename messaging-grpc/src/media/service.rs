//! [`Media`]: uploads, reads, and the signed URLs Twilio fetches outbound media from.
//! Copying inbound media from Twilio is in `copier.rs`.

use std::{sync::Arc, time::SystemTime};

use tokio::sync::Notify;
use uuid::Uuid;

use super::{Fetcher, MAX_MEDIA_BYTES, MediaObjects, MediaSettings, sniff_allowed};
use crate::{
    crypto::{Cleartext, UserKeys},
    domain::{Direction, aad, require},
    error::Error,
    store::{self, Store, entities::media},
};

/// The media service; cheap to clone.
#[derive(Clone)]
pub struct Media {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub store: Store,
    pub keys: Arc<UserKeys>,
    pub objects: MediaObjects,
    pub settings: MediaSettings,
    pub fetcher: Fetcher,
    /// GATEWAY_PUBLIC_URL: where Twilio fetches `/media/{token}`.
    pub public_url: String,
    /// Wakes the inbound media copier.
    pub waker: Arc<Notify>,
}

pub(super) fn store_error(e: object_store::Error) -> Error {
    Error::MediaStore(e.to_string())
}

impl Media {
    pub fn new(
        store: Store,
        keys: Arc<UserKeys>,
        objects: MediaObjects,
        settings: MediaSettings,
        fetcher: Fetcher,
        public_url: String,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                objects,
                settings,
                fetcher,
                public_url,
                waker: Arc::new(Notify::new()),
            }),
        }
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Wakes the inbound media copier; ingest holds it to signal new inbound media.
    pub fn waker(&self) -> Arc<Notify> {
        self.inner.waker.clone()
    }

    /// Stores an uploaded image for `user_id`, encrypted. The type is sniffed from the
    /// bytes; only JPEG, PNG and GIF are accepted.
    pub async fn upload(
        &self,
        user_id: &str,
        declared: &str,
        bytes: Vec<u8>,
    ) -> Result<media::Model, Error> {
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
        let m = &self.inner;
        let id = Uuid::now_v7().to_string();
        let key = format!("media/{id}");
        let size = bytes.len() as i64;
        let (sealed, _) = m
            .keys
            .seal(user_id, &aad::media_bytes(user_id, &id), &bytes)
            .await?;
        m.objects.put(&key, sealed).await.map_err(store_error)?;
        let now = store::now();
        let row = media::Model {
            id,
            user_id: user_id.to_owned(),
            direction: Direction::Outbound.as_str().to_owned(),
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
        store::media::insert(m.store.conn(), row.clone()).await?;
        Ok(row)
    }

    /// The owner's media bytes, decrypted.
    pub async fn get(&self, user_id: &str, id: &str) -> Result<(media::Model, Vec<u8>), Error> {
        let id = require("media_id", id)?;
        let row = store::media::find(self.inner.store.conn(), user_id, id)
            .await?
            .ok_or(Error::NotFound("media_id"))?;
        self.read(row).await
    }

    /// Bytes of a media item for the gateway's signed URL: the token is verified here
    /// (the gateway's role alone reads nothing), and only outbound media attached to
    /// an outbound message are served. Any refusal is NOT_FOUND, whatever the reason.
    pub async fn serve(
        &self,
        token: &str,
        media_id: &str,
    ) -> Result<(media::Model, Vec<u8>), Error> {
        let token = require("token", token)?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let id = media_token::verify(&self.inner.settings.url_secret, token, now)
            .ok_or(Error::NotFound("media_id"))?;
        if !media_id.is_empty() && media_id != id {
            return Err(Error::NotFound("media_id"));
        }
        let outbound = Direction::Outbound.as_str();
        let row = store::media::find_attached_any(self.inner.store.conn(), &id, outbound)
            .await?
            .ok_or(Error::NotFound("media_id"))?;
        self.read(row).await
    }

    async fn read(&self, row: media::Model) -> Result<(media::Model, Vec<u8>), Error> {
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
        let m = &self.inner;
        let sealed = m.objects.get(key).await.map_err(store_error)?;
        let aad = aad::media_bytes(&row.user_id, &row.id);
        match m.keys.open(&row.user_id, &aad, &sealed).await? {
            Cleartext::Available(bytes) => Ok((row, bytes.to_vec())),
            Cleartext::Destroyed => Err(Error::FailedPrecondition(
                "media_id: content destroyed".into(),
            )),
        }
    }

    /// Deletes stored objects by storage key, after the commit that removed or
    /// destroyed their rows (an object store is not transactional); returns how many
    /// are gone. A failure is logged and leaves an encrypted object nothing points to
    /// (or sealed with a destroyed key), never a row pointing to nothing.
    pub async fn delete_objects(&self, keys: &[String]) -> u64 {
        let mut deleted = 0;
        for key in keys {
            match self.inner.objects.delete(key).await {
                Ok(()) => deleted += 1,
                Err(e) => tracing::warn!(storage_key = %key, error = %e,
                    "deleting a media object failed; it stays encrypted and unreferenced"),
            }
        }
        deleted
    }

    /// Refuses an MMS whose uploaded media are not the caller's, not ready, or more
    /// than 5 MB in all.
    pub async fn check_sendable(&self, user_id: &str, ids: &[String]) -> Result<(), Error> {
        let found = store::media::find_many(self.inner.store.conn(), user_id, ids.to_vec()).await?;
        let mut total = 0i64;
        for id in ids {
            let m = found
                .iter()
                .find(|m| &m.id == id)
                .ok_or(Error::NotFound("media_ids"))?;
            if m.status != store::media::READY {
                return Err(Error::FailedPrecondition(format!(
                    "media_ids: {id} is not ready ({})",
                    m.status
                )));
            }
            total += m.size_bytes;
        }
        if total > MAX_MEDIA_BYTES as i64 {
            return Err(Error::invalid(
                "media_ids",
                "media are limited to 5 MB per message in all",
            ));
        }
        Ok(())
    }

    /// Deletes the encrypted objects of media rows already deleted (after their commit:
    /// an object store is not transactional). A failure is logged and leaves an
    /// encrypted object nothing points to, never a row pointing to nothing.
    pub async fn remove_objects(&self, rows: &[media::Model]) {
        let keys: Vec<String> = rows.iter().filter_map(|r| r.storage_key.clone()).collect();
        self.delete_objects(&keys).await;
    }

    /// The URL Twilio fetches an outbound media item from: the gateway's
    /// `/media/{token}` with a signed, expiring token.
    pub fn url(&self, media_id: &str) -> String {
        let m = &self.inner;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let expires = (now + m.settings.url_ttl).as_secs();
        let token = media_token::mint(&m.settings.url_secret, media_id, expires);
        format!("{}/media/{token}", m.public_url.trim_end_matches('/'))
    }
}
