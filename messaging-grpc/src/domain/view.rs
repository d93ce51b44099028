//! A stored message with its body decrypted.

use crate::{
    crypto::{Aad, Cleartext},
    error::Error,
    store::entities::{media, message},
};

use super::Messaging;

/// The readable body, or the fact it was crypto-shredded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Text(String),
    Destroyed,
}

/// A message row plus its decrypted body.
#[derive(Clone, Debug)]
pub struct MessageView {
    pub row: message::Model,
    pub body: Body,
    /// Its media items, in order (our stored ones; external URLs are not listed).
    pub media: Vec<media::Model>,
}

/// AAD of a message body: bound to the message id and its user.
pub(super) fn body_aad(user_id: &str, message_id: &str) -> Aad {
    Aad::field("messages", "body", user_id, message_id)
}

impl Messaging {
    /// Decrypts one stored message of `user_id`, with its media.
    pub(super) async fn view(
        &self,
        user_id: &str,
        row: message::Model,
    ) -> Result<MessageView, Error> {
        let media = if row.num_media > 0 {
            self.media_of(user_id, vec![row.id.clone()])
                .await?
                .remove(&row.id)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let body = self.decrypt_body(user_id, &row).await?;
        Ok(MessageView { row, body, media })
    }

    async fn decrypt_body(&self, user_id: &str, row: &message::Model) -> Result<Body, Error> {
        let aad = body_aad(user_id, &row.id);
        Ok(match self.keys.open(user_id, &aad, &row.body_ct).await? {
            Cleartext::Available(bytes) => Body::Text(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| crate::crypto::CryptoError::Malformed("body is not UTF-8"))?,
            ),
            Cleartext::Destroyed => Body::Destroyed,
        })
    }

    /// Decrypts a page of messages; their media come in one batched lookup.
    pub(super) async fn views(
        &self,
        user_id: &str,
        rows: Vec<message::Model>,
    ) -> Result<Vec<MessageView>, Error> {
        let with_media: Vec<String> = rows
            .iter()
            .filter(|r| r.num_media > 0)
            .map(|r| r.id.clone())
            .collect();
        let mut media = if with_media.is_empty() {
            Default::default()
        } else {
            self.media_of(user_id, with_media).await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let body = self.decrypt_body(user_id, &row).await?;
            let m = media.remove(&row.id).unwrap_or_default();
            out.push(MessageView {
                row,
                body,
                media: m,
            });
        }
        Ok(out)
    }
}
