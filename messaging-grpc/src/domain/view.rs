//! Stored messages read back: bodies decrypted, media listed.

use std::collections::HashMap;

use super::{Records, aad};
use crate::{
    crypto::{Cleartext, CryptoError},
    error::Error,
    store::{
        self,
        entities::{media, message},
    },
};

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
    /// The contact's name, when the caller asked for names ([`Records::name_views`]).
    pub contact_name: Option<String>,
    /// The contact's number, decrypted; `None` once the user's keys were destroyed.
    pub contact_number: Option<String>,
}

impl Records {
    /// Decrypts one stored message of `user_id`, with its media.
    pub async fn view(&self, user_id: &str, row: message::Model) -> Result<MessageView, Error> {
        let media = if row.num_media > 0 {
            self.media_of(user_id, vec![row.id.clone()])
                .await?
                .remove(&row.id)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let body = self.decrypt_body(user_id, &row).await?;
        let contact_number = self.message_contact_number(&row).await?;
        Ok(MessageView {
            row,
            body,
            media,
            contact_name: None,
            contact_number,
        })
    }

    /// Decrypts a page of messages; their media come in one batched lookup.
    pub async fn views(
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
            HashMap::new()
        } else {
            self.media_of(user_id, with_media).await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let body = self.decrypt_body(user_id, &row).await?;
            let contact_number = self.message_contact_number(&row).await?;
            let media = media.remove(&row.id).unwrap_or_default();
            out.push(MessageView {
                row,
                body,
                media,
                contact_name: None,
                contact_number,
            });
        }
        Ok(out)
    }

    async fn decrypt_body(&self, user_id: &str, row: &message::Model) -> Result<Body, Error> {
        let aad = aad::body(user_id, &row.id);
        Ok(match self.keys.open(user_id, &aad, &row.body_ct).await? {
            Cleartext::Available(bytes) => Body::Text(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| CryptoError::Malformed("body is not UTF-8"))?,
            ),
            Cleartext::Destroyed => Body::Destroyed,
        })
    }

    /// The media of some of the user's messages, in order, keyed by message id.
    pub async fn media_of(
        &self,
        user_id: &str,
        message_ids: Vec<String>,
    ) -> Result<HashMap<String, Vec<media::Model>>, Error> {
        let db = self.store.conn();
        let links = store::media::links_any(db, message_ids).await?;
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
}
