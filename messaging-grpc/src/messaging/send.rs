//! SendSms and SendMms: validate, check ownership, encrypt, and write message +
//! media links + search terms + outbox + conversation + event in one transaction.
//! With `send_at` the message is stored SCHEDULED and its outbox job waits until then.

use chrono::{DateTime, SubsecRound as _, Utc};
use uuid::Uuid;

use super::Messaging;
use crate::{
    crypto::{Cleartext, KeySet},
    domain::{
        Body, Direction, MessageStatus, MessageView, MessageWrite, Written, aad, events, new_row,
    },
    error::Error,
    media::MAX_MEDIA_PER_MESSAGE,
    phone::{Masked, parse_e164, parse_own_number},
    sms::{MAX_BODY_CHARS, count_segments},
    store::{
        self,
        entities::{message, message_media},
        message_batch::Refusal,
    },
};

const MAX_IDEMPOTENCY_KEY: usize = 128;

/// A send request as the caller gave it.
pub struct SendSms {
    pub from: String,
    pub to: String,
    pub body: String,
    pub idempotency_key: String,
    /// Send at this time instead of now (scheduled send).
    pub send_at: Option<DateTime<Utc>>,
}

/// An MMS request as the caller gave it: a send request (whose body may be empty)
/// with its media.
pub struct SendMms {
    pub message: SendSms,
    pub media_ids: Vec<String>,
    pub media_urls: Vec<String>,
}

/// One media item of an outbound message.
enum MediaItem {
    Ours(String),
    Url(String),
}

struct Valid {
    from: String,
    to: String,
    body: String,
    idempotency_key: Option<String>,
    media: Vec<MediaItem>,
    send_at: Option<DateTime<Utc>>,
}

impl SendMms {
    fn validate(self) -> Result<Valid, Error> {
        let count = self.media_ids.len() + self.media_urls.len();
        if count == 0 {
            return Err(Error::invalid(
                "media_ids",
                "an MMS needs at least one media_ids or media_urls item",
            ));
        }
        if count > MAX_MEDIA_PER_MESSAGE {
            return Err(Error::invalid(
                "media_ids",
                format!("at most {MAX_MEDIA_PER_MESSAGE} media per message, got {count}"),
            ));
        }
        let mut media = Vec::with_capacity(count);
        for id in self.media_ids {
            if id.is_empty() || id.len() > 64 {
                return Err(Error::invalid(
                    "media_ids",
                    "contains an empty or malformed id",
                ));
            }
            media.push(MediaItem::Ours(id));
        }
        for u in self.media_urls {
            let ok = u.len() <= 2048
                && url::Url::parse(&u).is_ok_and(|p| {
                    p.scheme() == "https" && p.host_str().is_some_and(|h| !h.is_empty())
                });
            if !ok {
                return Err(Error::invalid(
                    "media_urls",
                    "each must be an https:// URL of at most 2048 characters",
                ));
            }
            media.push(MediaItem::Url(u));
        }
        let mut valid = self.message.validate_with(false)?;
        valid.media = media;
        Ok(valid)
    }
}

impl SendSms {
    fn validate(self) -> Result<Valid, Error> {
        self.validate_with(true)
    }

    fn validate_with(self, body_required: bool) -> Result<Valid, Error> {
        let from = parse_own_number("from", &self.from)?;
        let to = parse_e164("to", &self.to)?;
        if from == to {
            return Err(Error::invalid("to", "must differ from `from`"));
        }
        if body_required && self.body.is_empty() {
            return Err(Error::invalid("body", "must not be empty"));
        }
        let chars = self.body.chars().count();
        if chars > MAX_BODY_CHARS {
            return Err(Error::invalid(
                "body",
                format!("is {chars} characters; at most {MAX_BODY_CHARS} are allowed"),
            ));
        }
        if self.body.contains('\0') {
            return Err(Error::invalid("body", "must not contain NUL characters"));
        }
        let key = self.idempotency_key;
        if key.chars().count() > MAX_IDEMPOTENCY_KEY || key.chars().any(char::is_control) {
            return Err(Error::invalid(
                "idempotency_key",
                format!("must be at most {MAX_IDEMPOTENCY_KEY} printable characters"),
            ));
        }
        Ok(Valid {
            from,
            to,
            body: self.body,
            idempotency_key: (!key.is_empty()).then_some(key),
            media: Vec::new(),
            // The precision PostgreSQL keeps: a retry compares equal to what was stored.
            send_at: self.send_at.map(|t| t.trunc_subsecs(6)),
        })
    }
}

impl Messaging {
    /// Queues an SMS for `user_id`. Committed before returning. A retry with the same
    /// idempotency key returns the first message.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn send_sms(&self, user_id: &str, req: SendSms) -> Result<MessageView, Error> {
        self.send(user_id, req.validate()?).await
    }

    /// Queues an MMS for `user_id`: uploaded media must be the caller's and ready,
    /// 5 MB in all; https URLs are handed to Twilio as given.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn send_mms(&self, user_id: &str, req: SendMms) -> Result<MessageView, Error> {
        let req = req.validate()?;
        let ids: Vec<String> = req
            .media
            .iter()
            .filter_map(|m| match m {
                MediaItem::Ours(id) => Some(id.clone()),
                MediaItem::Url(_) => None,
            })
            .collect();
        if !ids.is_empty() {
            self.media.check_sendable(user_id, &ids).await?;
        }
        self.send(user_id, req).await
    }

    async fn send(&self, user_id: &str, req: Valid) -> Result<MessageView, Error> {
        if let Some(key) = &req.idempotency_key
            && let Some(first) = self.replay(user_id, key, &req).await?
        {
            return Ok(first);
        }
        // After the replay: a retry of an accepted scheduled send must not be refused
        // because its time has come closer meanwhile.
        if let Some(at) = req.send_at {
            self.schedule.check(at, Utc::now())?;
        }
        // The caller's keys, read once for every seal, index and lookup below.
        let keys = self.records.keys().key_set(user_id, true).await?;
        // Ownership of `from`, opt-out and block are checked by the writer, in the
        // batch that writes the message (no reads before it).
        let write = match self.prepare(&keys, user_id, &req) {
            Ok(write) => write,
            // Nothing can be sealed (a shredded user): a number that is no longer the
            // caller's is the answer that says what to fix, as it was before.
            Err(e) => {
                let db = self.records.store().conn();
                if !store::numbers::is_owned_by(db, &req.from, user_id).await? {
                    return Err(refusal(Refusal::NotOwner, &req));
                }
                return Err(e);
            }
        };
        let (row, name_ct) = match self.records.write_message(write).await? {
            Written::Committed(row, name_ct) => (*row, name_ct),
            Written::Refused(why) => return Err(refusal(why, &req)),
            // A concurrent request with the same key committed first: return its message.
            Written::Conflict => {
                return match &req.idempotency_key {
                    Some(key) => self
                        .replay(user_id, key, &req)
                        .await?
                        .ok_or_else(|| Written::lost_race("idempotent send")),
                    None => Err(Written::lost_race("send")),
                };
            }
        };
        self.outbox_waker.notify_one();
        match row.send_at {
            Some(at) => {
                tracing::info!(message_id = %row.id, to = %Masked(&req.to), segments = row.segments, send_at = %at, "sms scheduled")
            }
            None => {
                tracing::info!(message_id = %row.id, to = %Masked(&req.to), segments = row.segments, "sms queued")
            }
        }
        let media = if req.media.is_empty() {
            Vec::new()
        } else {
            self.records
                .media_of(user_id, vec![row.id.clone()])
                .await?
                .remove(&row.id)
                .unwrap_or_default()
        };
        let contact_name = match name_ct {
            Some(ct) => {
                self.records
                    .open_name(user_id, &row.contact_id, &ct)
                    .await?
            }
            None => None,
        };
        Ok(MessageView {
            contact_name,
            row,
            body: Body::Text(req.body),
            contact_number: Some(req.to),
            media,
        })
    }

    /// Encrypts the body and external media URLs and builds the rows to write.
    fn prepare(&self, keys: &KeySet, user_id: &str, req: &Valid) -> Result<MessageWrite, Error> {
        let id = Uuid::now_v7().to_string();
        let (body_ct, key_version) = keys.seal(&aad::body(user_id, &id), req.body.as_bytes())?;
        let mut links = Vec::with_capacity(req.media.len());
        for (position, item) in req.media.iter().enumerate() {
            let position = position as i32;
            let (media_id, url_ct) = match item {
                MediaItem::Ours(m) => (Some(m.clone()), None),
                MediaItem::Url(u) => {
                    let aad = aad::link_url(user_id, &id, position);
                    (None, Some(keys.seal(&aad, u.as_bytes())?.0))
                }
            };
            links.push(message_media::Model {
                message_id: id.clone(),
                position,
                media_id,
                url_ct,
            });
        }
        let contact = self.records.seal_contact(keys, user_id, &id, &req.to)?;
        let status = match req.send_at {
            Some(_) => MessageStatus::Scheduled,
            None => MessageStatus::Queued,
        };
        let row = message::Model {
            body_ct,
            key_version: key_version as i32,
            idempotency_key: req.idempotency_key.clone(),
            segments: count_segments(&req.body).segments as i32,
            num_media: req.media.len() as i32,
            status: status.as_str().to_owned(),
            send_at: req.send_at,
            ..new_row(
                id,
                user_id,
                Direction::Outbound,
                &req.from,
                contact.message_ct,
            )
        };
        Ok(MessageWrite {
            row,
            new_media: Vec::new(),
            links,
            unread_delta: 0,
            enqueue: true,
            opt_out: None,
            event_kind: events::CONVERSATION_UPDATED,
            search_terms: self.records.index_terms(keys, &req.body)?,
            unarchive: false,
            contact: contact.contact,
            check_sender: true,
            inherit_block: false,
        })
    }

    /// Whether message `id` went out with exactly `media`, in order (ours by id,
    /// external URLs compared decrypted).
    async fn same_media(
        &self,
        user_id: &str,
        id: &str,
        media: &[MediaItem],
    ) -> Result<bool, Error> {
        let db = self.records.store().conn();
        let links = store::media::links_any(db, vec![id.to_owned()]).await?;
        if links.len() != media.len() {
            return Ok(false);
        }
        for (link, item) in links.iter().zip(media) {
            let same = match (item, &link.media_id, &link.url_ct) {
                (MediaItem::Ours(want), Some(have), _) => want == have,
                (MediaItem::Url(want), None, Some(ct)) => {
                    let aad = aad::link_url(user_id, id, link.position);
                    matches!(self.records.keys().open(user_id, &aad, ct).await?,
                        Cleartext::Available(have) if *have == *want.as_bytes())
                }
                _ => false,
            };
            if !same {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The message first sent with `key`, if any. The same key with a different
    /// request is a client bug: refuse it rather than silently return another message.
    async fn replay(
        &self,
        user_id: &str,
        key: &str,
        req: &Valid,
    ) -> Result<Option<MessageView>, Error> {
        let db = self.records.store().conn();
        let Some(row) = store::messages::find_by_idempotency_key(db, user_id, key).await? else {
            return Ok(None);
        };
        let first = self.records.view(user_id, row).await?;
        let same = first.row.owner_e164 == req.from
            && first.contact_number.as_deref() == Some(req.to.as_str())
            && first.row.send_at == req.send_at
            && matches!(&first.body, Body::Text(b) if *b == req.body)
            && self.same_media(user_id, &first.row.id, &req.media).await?;
        if !same {
            return Err(Error::invalid(
                "idempotency_key",
                "was already used for a different message",
            ));
        }
        let mut first = [first];
        self.records.name_views(user_id, &mut first).await?;
        let [first] = first;
        Ok(Some(first))
    }
}

/// The error a refused send answers, naming the field and what to do.
fn refusal(why: Refusal, req: &Valid) -> Error {
    match why {
        Refusal::NotOwner => Error::PermissionDenied(format!(
            "from: {} is not a number assigned to you",
            Masked(&req.from)
        )),
        Refusal::OptedOut => Error::FailedPrecondition(format!(
            "to: {} has opted out of messages from {} (replied STOP); they must send START to it first",
            Masked(&req.to),
            Masked(&req.from)
        )),
        Refusal::Blocked => Error::FailedPrecondition(format!(
            "to: {} is a number you blocked; unblock it to send to it",
            Masked(&req.to)
        )),
    }
}
