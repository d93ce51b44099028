//! Storing an inbound SMS (`MessagingIngest.RecordInbound`).

use uuid::Uuid;

use super::{
    Body, Direction, MessageStatus, MessageView, Messaging, events, media::source_url_aad,
    send::active, view::body_aad,
};
use crate::{
    error::Error,
    phone::{Masked, parse_e164, parse_sender},
    sms::{Keyword, count_segments, keyword},
    store::{
        self,
        entities::{media, message, message_media},
        events::NewEvent,
    },
};

/// Twilio allows 10 media per message.
const MAX_MEDIA: u32 = 10;

/// An inbound message as Twilio reported it.
pub struct InboundSms {
    pub message_sid: String,
    pub account_sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
    /// `(MediaUrlN, MediaContentTypeN)` as Twilio sent them.
    pub media: Vec<(String, String)>,
}

/// What happened to an inbound message.
pub enum Inbound {
    /// Stored now.
    Stored(Box<MessageView>),
    /// Already stored by an earlier delivery of the same webhook.
    Duplicate(Box<MessageView>),
    /// Nobody owns the `to` number: recorded for operators.
    Unroutable,
}

fn validate_sid(field: &'static str, sid: &str) -> Result<(), Error> {
    if sid.is_empty() || sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::invalid(field, "must be 1-64 letters and digits"));
    }
    Ok(())
}

impl Messaging {
    /// Stores an inbound message for the owner of `to`, in one transaction with its
    /// contact, conversation (+1 unread) and any STOP/START opt-out change. Idempotent
    /// on `message_sid`.
    #[tracing::instrument(skip_all, fields(message_sid = %m.message_sid))]
    pub async fn record_inbound(&self, m: InboundSms) -> Result<Inbound, Error> {
        validate_sid("message_sid", &m.message_sid)?;
        if !m.account_sid.is_empty() {
            validate_sid("account_sid", &m.account_sid)?;
        }
        let from = parse_sender("from", &m.from)?;
        let to = parse_e164("to", &m.to)?;
        if m.media.len() > MAX_MEDIA as usize {
            return Err(Error::invalid(
                "media",
                format!("at most {MAX_MEDIA} items"),
            ));
        }
        let db = self.store.conn();
        let Some(owner) = store::numbers::owner_of(db, &to).await? else {
            tracing::warn!(to = %Masked(&to), "inbound message for a number nobody owns; recorded as unroutable");
            store::ingest::record_unroutable(
                db,
                &m.message_sid,
                &m.account_sid,
                &from,
                &to,
                m.media.len() as i32,
            )
            .await?;
            return Ok(Inbound::Unroutable);
        };
        if let Some(done) = self.find_by_sid(&owner, &m.message_sid).await? {
            return Ok(Inbound::Duplicate(Box::new(done)));
        }

        let id = Uuid::now_v7().to_string();
        let (body_ct, key_version) = self
            .keys
            .seal(&owner, &body_aad(&owner, &id), m.body.as_bytes())
            .await?;
        let now = store::now();
        // Inbound media are copied from Twilio after the commit; until then, pending.
        let mut media_rows = Vec::with_capacity(m.media.len());
        let mut links = Vec::with_capacity(m.media.len());
        for (position, (url, content_type)) in m.media.iter().enumerate() {
            let media_id = Uuid::now_v7().to_string();
            let (url_ct, _) = self
                .keys
                .seal(&owner, &source_url_aad(&owner, &media_id), url.as_bytes())
                .await?;
            media_rows.push(media::Model {
                id: media_id.clone(),
                user_id: owner.clone(),
                direction: Direction::Inbound.as_str().to_owned(),
                status: store::media::PENDING.to_owned(),
                content_type: content_type.chars().take(100).collect(),
                size_bytes: 0,
                storage_key: None,
                source_url_ct: Some(url_ct),
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
                created_at: now,
            });
            links.push(message_media::Model {
                message_id: id.clone(),
                position: position as i32,
                media_id: Some(media_id),
                url_ct: None,
            });
        }
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
            num_media: m.media.len() as i32,
            created_at: now,
            updated_at: now,
            sent_at: None,
            delivered_at: None,
            read_at: None,
        };
        if let Err(err) = store::messages::insert(&txn, active(row.clone())).await {
            txn.rollback().await.ok();
            // The same webhook delivered twice at once: the other delivery stored it.
            if store::is_unique_violation(&err)
                && let Some(done) = self.find_by_sid(&owner, &m.message_sid).await?
            {
                return Ok(Inbound::Duplicate(Box::new(done)));
            }
            return Err(err.into());
        }
        for row in &media_rows {
            store::media::insert(&txn, row.clone()).await?;
        }
        store::media::link(&txn, links).await?;
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
        match keyword(&m.body) {
            Some(Keyword::OptOut) => {
                store::contacts::set_opted_out(&txn, &owner, &contact.id, true).await?
            }
            Some(Keyword::OptIn) => {
                store::contacts::set_opted_out(&txn, &owner, &contact.id, false).await?
            }
            None => {}
        }
        let unread_count = self.unread_in(&txn, &owner, &contact.id).await?;
        let event = NewEvent {
            kind: events::MESSAGE_RECEIVED,
            message_id: Some(&id),
            contact_id: Some(&contact.id),
            status: Some(MessageStatus::Received.as_str()),
            unread_count,
        };
        let cursor = self.record_event(&txn, &owner, event).await?;
        txn.commit().await?;
        self.announce(&owner, cursor);
        if !media_rows.is_empty()
            && let Some(signal) = self.media_signal()
        {
            signal.notify_one();
        }
        tracing::info!(message_id = %id, from = %Masked(&from), "inbound sms stored");
        Ok(Inbound::Stored(Box::new(MessageView {
            row,
            body: Body::Text(m.body),
            media: media_rows,
        })))
    }

    async fn find_by_sid(&self, user_id: &str, sid: &str) -> Result<Option<MessageView>, Error> {
        match store::messages::find_by_provider_sid(self.store.conn(), user_id, sid).await? {
            Some(row) => Ok(Some(self.view(user_id, row).await?)),
            None => Ok(None),
        }
    }
}
