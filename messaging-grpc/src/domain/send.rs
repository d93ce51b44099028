//! SendSms: validate, check ownership, encrypt, and write message + outbox +
//! conversation in one transaction.

use sea_orm::{ActiveModelTrait as _, IntoActiveModel as _};
use uuid::Uuid;

use super::{Body, Direction, MessageStatus, MessageView, Messaging, events, view::body_aad};
use crate::{
    error::Error,
    phone::{Masked, parse_e164},
    sms::{MAX_BODY_CHARS, count_segments},
    store::{self, entities::message, events::NewEvent},
};

const MAX_IDEMPOTENCY_KEY: usize = 128;

/// A send request as the caller gave it.
pub struct SendSms {
    pub from: String,
    pub to: String,
    pub body: String,
    pub idempotency_key: String,
}

struct Valid {
    from: String,
    to: String,
    body: String,
    idempotency_key: Option<String>,
}

impl SendSms {
    fn validate(self) -> Result<Valid, Error> {
        let from = parse_e164("from", &self.from)?;
        let to = parse_e164("to", &self.to)?;
        if from == to {
            return Err(Error::invalid("to", "must differ from `from`"));
        }
        if self.body.is_empty() {
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
        })
    }
}

impl Messaging {
    /// Queues an SMS for `user_id`. Committed before returning. A retry with the same
    /// idempotency key returns the first message.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn send_sms(&self, user_id: &str, req: SendSms) -> Result<MessageView, Error> {
        let req = req.validate()?;
        if let Some(key) = &req.idempotency_key
            && let Some(first) = self.replay(user_id, key, &req).await?
        {
            return Ok(first);
        }
        let db = self.store.conn();
        if !store::numbers::is_owned_by(db, &req.from, user_id).await? {
            return Err(Error::PermissionDenied(format!(
                "from: {} is not a number assigned to you",
                Masked(&req.from)
            )));
        }

        if store::contacts::find_by_number(db, user_id, &req.to)
            .await?
            .is_some_and(|c| c.opted_out)
        {
            return Err(Error::FailedPrecondition(format!(
                "to: {} has opted out of messages from you (replied STOP); they must send START first",
                Masked(&req.to)
            )));
        }

        let id = Uuid::now_v7().to_string();
        let segments = count_segments(&req.body).segments;
        let (body_ct, key_version) = self
            .keys
            .seal(user_id, &body_aad(user_id, &id), req.body.as_bytes())
            .await?;

        let now = store::now();
        let txn = self.store.begin_write().await?;
        let contact = store::contacts::get_or_create(&txn, user_id, &req.to).await?;
        let row = message::Model {
            id: id.clone(),
            user_id: user_id.to_owned(),
            contact_id: contact.id.clone(),
            direction: Direction::Outbound.as_str().to_owned(),
            owner_e164: req.from.clone(),
            contact_e164: req.to.clone(),
            body_ct,
            key_version: key_version as i32,
            status: MessageStatus::Queued.as_str().to_owned(),
            provider_sid: None,
            idempotency_key: req.idempotency_key.clone(),
            error_code: None,
            error_message: None,
            segments: segments as i32,
            num_media: 0,
            created_at: now,
            updated_at: now,
            sent_at: None,
            delivered_at: None,
            read_at: None,
        };
        let inserted = store::messages::insert(&txn, active(row.clone())).await;
        if let Err(err) = inserted {
            txn.rollback().await.ok();
            // A concurrent request with the same key committed first: return its message.
            if store::is_unique_violation(&err)
                && let Some(key) = &req.idempotency_key
                && let Some(first) = self.replay(user_id, key, &req).await?
            {
                return Ok(first);
            }
            return Err(err.into());
        }
        store::outbox::enqueue(&txn, user_id, &id).await?;
        store::conversations::record_message(
            &txn,
            store::conversations::MessageWritten {
                user_id,
                contact_id: &contact.id,
                owner_e164: &req.from,
                message_id: &id,
                at: now,
                unread_delta: 0,
            },
        )
        .await?;
        let unread_count = self.unread_in(&txn, user_id, &contact.id).await?;
        let event = NewEvent {
            kind: events::CONVERSATION_UPDATED,
            message_id: Some(&id),
            contact_id: Some(&contact.id),
            status: Some(MessageStatus::Queued.as_str()),
            unread_count,
        };
        let cursor = self.record_event(&txn, user_id, event).await?;
        txn.commit().await?;
        self.announce(user_id, cursor);
        self.outbox_signal.notify_one();

        tracing::info!(message_id = %id, to = %Masked(&req.to), segments, "sms queued");
        Ok(MessageView {
            row,
            body: Body::Text(req.body),
        })
    }

    /// The message first sent with `key`, if any. The same key with a different
    /// request is a client bug: refuse it rather than silently return another message.
    async fn replay(
        &self,
        user_id: &str,
        key: &str,
        req: &Valid,
    ) -> Result<Option<MessageView>, Error> {
        let Some(row) =
            store::messages::find_by_idempotency_key(self.store.conn(), user_id, key).await?
        else {
            return Ok(None);
        };
        let first = self.view(user_id, row).await?;
        let same = first.row.owner_e164 == req.from
            && first.row.contact_e164 == req.to
            && matches!(&first.body, Body::Text(b) if *b == req.body);
        if !same {
            return Err(Error::invalid(
                "idempotency_key",
                "was already used for a different message",
            ));
        }
        Ok(Some(first))
    }
}

/// A full row as an insertable active model (every column set).
pub(super) fn active(row: message::Model) -> message::ActiveModel {
    row.into_active_model().reset_all()
}
