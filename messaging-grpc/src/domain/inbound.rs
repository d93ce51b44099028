//! Storing an inbound SMS: the domain half of `MessagingIngest.RecordInbound` (the
//! gRPC service and the gateway wire it up).

use uuid::Uuid;

use super::{Body, Direction, MessageStatus, MessageView, Messaging, view::body_aad};
use crate::{
    error::Error,
    phone::{Masked, parse_e164},
    sms::count_segments,
    store::{self, entities::message},
};

/// An inbound message as Twilio reported it.
pub struct InboundSms {
    pub message_sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
}

/// What happened to an inbound message.
pub enum Inbound {
    /// Stored now, or already stored by an earlier delivery of the same webhook.
    Stored(Box<MessageView>),
    /// Nobody owns the `to` number.
    Unroutable,
}

impl Messaging {
    /// Stores an inbound message for the owner of `to`, in one transaction with its
    /// contact and conversation (+1 unread). Idempotent on `message_sid`.
    #[tracing::instrument(skip_all, fields(message_sid = %m.message_sid))]
    pub async fn record_inbound(&self, m: InboundSms) -> Result<Inbound, Error> {
        if m.message_sid.is_empty() || m.message_sid.len() > 64 {
            return Err(Error::invalid("message_sid", "must be 1-64 characters"));
        }
        let from = parse_e164("from", &m.from)?;
        let to = parse_e164("to", &m.to)?;
        let db = self.store.conn();
        let Some(owner) = store::numbers::owner_of(db, &to).await? else {
            tracing::warn!(to = %Masked(&to), "inbound message for a number nobody owns");
            return Ok(Inbound::Unroutable);
        };
        if let Some(done) = self.find_by_sid(&owner, &m.message_sid).await? {
            return Ok(Inbound::Stored(Box::new(done)));
        }

        let id = Uuid::now_v7().to_string();
        let (body_ct, key_version) = self
            .keys
            .seal(&owner, &body_aad(&owner, &id), m.body.as_bytes())
            .await?;
        let now = store::now();
        let txn = self.store.begin_write().await?;
        let contact = store::contacts::get_or_create(&txn, &owner, &from).await?;
        let row = message::Model {
            id: id.clone(),
            user_id: owner.clone(),
            contact_id: contact.id.clone(),
            direction: Direction::Inbound.as_str().to_owned(),
            owner_e164: to.clone(),
            contact_e164: from.clone(),
            body_ct,
            key_version: key_version as i32,
            status: MessageStatus::Received.as_str().to_owned(),
            provider_sid: Some(m.message_sid.clone()),
            idempotency_key: None,
            error_code: None,
            error_message: None,
            segments: count_segments(&m.body).segments as i32,
            num_media: 0,
            created_at: now,
            updated_at: now,
            sent_at: None,
            delivered_at: None,
            read_at: None,
        };
        if let Err(err) = store::messages::insert(&txn, super::send::active(row.clone())).await {
            txn.rollback().await.ok();
            // The same webhook delivered twice at once: the other delivery stored it.
            if store::is_unique_violation(&err)
                && let Some(done) = self.find_by_sid(&owner, &m.message_sid).await?
            {
                return Ok(Inbound::Stored(Box::new(done)));
            }
            return Err(err.into());
        }
        store::conversations::record_message(
            &txn,
            store::conversations::MessageWritten {
                user_id: &owner,
                contact_id: &contact.id,
                owner_e164: &to,
                message_id: &id,
                at: now,
                unread_delta: 1,
            },
        )
        .await?;
        txn.commit().await?;
        tracing::info!(message_id = %id, from = %Masked(&from), "inbound sms stored");
        Ok(Inbound::Stored(Box::new(MessageView {
            row,
            body: Body::Text(m.body),
        })))
    }

    async fn find_by_sid(&self, user_id: &str, sid: &str) -> Result<Option<MessageView>, Error> {
        match store::messages::find_by_provider_sid(self.store.conn(), user_id, sid).await? {
            Some(row) => Ok(Some(self.view(user_id, row).await?)),
            None => Ok(None),
        }
    }
}
