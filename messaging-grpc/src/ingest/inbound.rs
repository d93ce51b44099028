//! Storing an inbound SMS/MMS (`MessagingIngest.RecordInbound`): idempotent on the
//! message SID; STOP and START change the contact's opt-out in the same transaction.
//! A message from a number the owner blocked is kept (encrypted, for the record) but
//! flagged out of conversations, unread counts, events and the search index.

use uuid::Uuid;

use super::Ingest;
use crate::{
    crypto::KeySet,
    domain::{Body, Direction, MessageView, MessageWrite, Written, aad, events, new_row},
    error::Error,
    phone::{Masked, parse_own_number, parse_sender},
    sms::{Keyword, count_segments, keyword},
    store::{
        self,
        entities::{media, message, message_media},
    },
};

/// Twilio allows 10 media per message.
const MAX_MEDIA: usize = 10;

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
    /// Already stored by an earlier delivery of the same webhook (possibly for the
    /// number's previous owner): the stored row.
    Duplicate(Box<message::Model>),
    /// Nobody owns the `to` number: recorded for operators.
    Unroutable,
}

fn validate_sid(field: &'static str, sid: &str) -> Result<(), Error> {
    if sid.is_empty() || sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::invalid(field, "must be 1-64 letters and digits"));
    }
    Ok(())
}

/// An inbound message checked field by field.
struct Valid {
    sms: InboundSms,
    from: String,
    to: String,
}

impl InboundSms {
    fn validate(self) -> Result<Valid, Error> {
        validate_sid("message_sid", &self.message_sid)?;
        if !self.account_sid.is_empty() {
            validate_sid("account_sid", &self.account_sid)?;
        }
        let from = parse_sender("from", &self.from)?;
        let to = parse_own_number("to", &self.to)?;
        if self.media.len() > MAX_MEDIA {
            return Err(Error::invalid(
                "media",
                format!("at most {MAX_MEDIA} items"),
            ));
        }
        Ok(Valid {
            sms: self,
            from,
            to,
        })
    }
}

impl Ingest {
    /// Stores an inbound message for the owner of `to`, in one transaction with its
    /// contact, conversation (+1 unread) and any STOP/START opt-out change. Idempotent
    /// on `message_sid`.
    #[tracing::instrument(skip_all, fields(message_sid = %m.message_sid))]
    pub async fn record_inbound(&self, m: InboundSms) -> Result<Inbound, Error> {
        let v = m.validate()?;
        let db = self.records.store().conn();
        let Some(owner) = store::numbers::owner_of_any(db, &v.to).await? else {
            tracing::warn!(to = %Masked(&v.to), "inbound message for a number nobody owns; recorded as unroutable");
            let s = &v.sms;
            let n = s.media.len() as i32;
            // No user, so no user key to seal the sender with: kept masked (the last 4
            // digits tell an operator enough; Twilio holds the full number under the
            // SID). `to` is one of our own numbers, kept in clear for routing.
            let from = Masked(&v.from).to_string();
            let (sid, account, to) = (s.message_sid.clone(), s.account_sid.clone(), v.to.clone());
            // Through the write pipeline, as every write (SQLite has one writer).
            self.records
                .store()
                .write(move |txn| {
                    Box::pin(async move {
                        store::ingest::record_unroutable_any(txn, &sid, &account, &from, &to, n)
                            .await
                            .map_err(Error::from)
                    })
                })
                .await?;
            return Ok(Inbound::Unroutable);
        };
        // The owner's keys, read once for every seal and index below. Whether the
        // contact is blocked, and whether this SID is stored already, the writer finds
        // in the batch that writes it (a duplicate is a conflict there).
        let keys = self.records.keys().key_set(&owner, true).await?;
        let write = self.prepare(&keys, &owner, &v)?;
        let new_media = write.new_media.clone();
        let row = match self.records.write_message(write).await? {
            Written::Committed(row, _) => *row,
            Written::Refused(why) => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "an inbound message was refused as a send ({why:?})"
                )));
            }
            // The same webhook delivered again (or twice at once): stored already.
            // SIDs are Twilio's, unique across users: a delivery that arrives after the
            // number was given to another user is the same message, stored under the
            // previous owner (answering "retry" would make Twilio retry for ever).
            Written::Conflict => {
                let db = self.records.store().conn();
                let done =
                    store::messages::find_by_provider_sid_any(db, &v.sms.message_sid).await?;
                return done
                    .map(|row| Inbound::Duplicate(Box::new(row)))
                    .ok_or_else(|| Written::lost_race("inbound insert"));
            }
        };
        if !new_media.is_empty() {
            self.media_waker.notify_one();
        }
        if row.blocked {
            tracing::info!(message_id = %row.id, from = %Masked(&v.from), "inbound sms from a blocked number stored, not shown");
        } else {
            tracing::info!(message_id = %row.id, from = %Masked(&v.from), "inbound sms stored");
        }
        Ok(Inbound::Stored(Box::new(MessageView {
            row,
            body: Body::Text(v.sms.body),
            media: new_media,
            contact_name: None,
            contact_number: Some(v.from),
        })))
    }

    /// Encrypts the body and media URLs and builds the rows to write. Inbound media
    /// are copied from Twilio after the commit; until then, pending.
    fn prepare(&self, keys: &KeySet, owner: &str, v: &Valid) -> Result<MessageWrite, Error> {
        let id = Uuid::now_v7().to_string();
        let body = &v.sms.body;
        let (body_ct, key_version) = keys.seal(&aad::body(owner, &id), body.as_bytes())?;
        let now = store::now();
        let mut new_media = Vec::with_capacity(v.sms.media.len());
        let mut links = Vec::with_capacity(v.sms.media.len());
        for (position, (url, content_type)) in v.sms.media.iter().enumerate() {
            let media_id = Uuid::now_v7().to_string();
            let url_aad = aad::media_source_url(owner, &media_id);
            let (url_ct, _) = keys.seal(&url_aad, url.as_bytes())?;
            new_media.push(media::Model {
                id: media_id.clone(),
                user_id: owner.to_owned(),
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
        let contact = self.records.seal_contact(keys, owner, &id, &v.from)?;
        let row = message::Model {
            body_ct,
            key_version: key_version as i32,
            provider_sid: Some(v.sms.message_sid.clone()),
            segments: count_segments(body).segments as i32,
            num_media: v.sms.media.len() as i32,
            created_at: now,
            updated_at: now,
            ..new_row(id, owner, Direction::Inbound, &v.to, contact.message_ct)
        };
        // The writer drops them if the contact turns out blocked (not shown anywhere,
        // so not searchable either).
        let search_terms = self.records.index_terms(keys, body)?;
        Ok(MessageWrite {
            row,
            new_media,
            links,
            unread_delta: 1,
            enqueue: false,
            // STOP (and its synonyms) opts the contact out of this user's messages;
            // START opts back in. Twilio enforces the same on its side.
            opt_out: keyword(body).map(|k| k == Keyword::OptOut),
            event_kind: events::MESSAGE_RECEIVED,
            search_terms,
            // A new message from the contact brings the conversation back to the inbox.
            unarchive: true,
            contact: contact.contact,
            check_sender: false,
            inherit_block: true,
        })
    }
}
