//! A stored message with its body decrypted.

use crate::{
    crypto::{Aad, Cleartext},
    error::Error,
    store::entities::message,
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
}

/// AAD of a message body: bound to the message id and its user.
pub(super) fn body_aad(user_id: &str, message_id: &str) -> Aad {
    Aad::field("messages", "body", user_id, message_id)
}

impl Messaging {
    /// Decrypts one stored message of `user_id`.
    pub(super) async fn view(
        &self,
        user_id: &str,
        row: message::Model,
    ) -> Result<MessageView, Error> {
        let aad = body_aad(user_id, &row.id);
        let body = match self.keys.open(user_id, &aad, &row.body_ct).await? {
            Cleartext::Available(bytes) => Body::Text(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| crate::crypto::CryptoError::Malformed("body is not UTF-8"))?,
            ),
            Cleartext::Destroyed => Body::Destroyed,
        };
        Ok(MessageView { row, body })
    }

    pub(super) async fn views(
        &self,
        user_id: &str,
        rows: Vec<message::Model>,
    ) -> Result<Vec<MessageView>, Error> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.view(user_id, row).await?);
        }
        Ok(out)
    }
}
