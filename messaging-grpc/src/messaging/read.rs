//! MarkRead and MarkConversationRead.
//!
//! Read state only moves forward: `read_at` is set once and never cleared, so marks
//! may arrive late or twice without making anything unread again.

use sea_orm::DatabaseTransaction;

use super::Messaging;
use crate::{
    domain::{Direction, MessageView, events, require},
    error::Error,
    store::{self, entities::message, events::NewEvent, page_token::Cursor},
};

impl Messaging {
    /// Marks one message read; idempotent (the first `read_at` is kept).
    pub async fn mark_read(&self, user_id: &str, message_id: &str) -> Result<MessageView, Error> {
        let db = self.records.store().conn();
        let message_id = require("message_id", message_id)?;
        let row = store::messages::find(db, user_id, message_id)
            .await?
            .ok_or(Error::NotFound("message_id"))?;

        if row.read_at.is_none() {
            let user = user_id.to_owned();
            self.records
                .write_announced(user_id, move |txn| Box::pin(mark_read_in(txn, user, row)))
                .await?;
        }
        let row = store::messages::find(db, user_id, message_id)
            .await?
            .ok_or(Error::NotFound("message_id"))?;
        let mut view = [self.records.view(user_id, row).await?];
        self.records.name_views(user_id, &mut view).await?;
        let [view] = view;
        Ok(view)
    }

    /// Marks inbound messages of a conversation read: all, or those up to and
    /// including `up_to_message_id`. Returns the unread count left.
    pub async fn mark_conversation_read(
        &self,
        user_id: &str,
        contact_id: &str,
        up_to_message_id: Option<&str>,
    ) -> Result<u64, Error> {
        let db = self.records.store().conn();
        let contact_id = require("contact_id", contact_id)?;
        let contact = store::contacts::find(db, user_id, contact_id)
            .await?
            .ok_or(Error::NotFound("contact_id"))?;
        let horizon = match up_to_message_id {
            None => None,
            Some(id) => {
                let m = store::messages::find(db, user_id, id)
                    .await?
                    .filter(|m| m.contact_id == contact.id)
                    .ok_or(Error::NotFound("up_to_message_id"))?;
                Some(Cursor {
                    at: m.created_at,
                    id: m.id,
                })
            }
        };

        let (user, contact_id) = (user_id.to_owned(), contact.id);
        let (left, cursor) = self
            .records
            .store()
            .write_for(user_id, move |txn| {
                Box::pin(mark_conversation_read_in(txn, user, contact_id, horizon))
            })
            .await?;
        if let Some(cursor) = cursor {
            self.records.announce(user_id, cursor);
        }
        Ok(left as u64)
    }
}

/// MarkRead's statements: the cursor of its event, if the message changed.
async fn mark_read_in(
    txn: &DatabaseTransaction,
    user_id: String,
    row: message::Model,
) -> Result<Option<i64>, Error> {
    let user_id = user_id.as_str();
    store::conversations::lock(txn, user_id, &row.contact_id).await?;
    let changed = store::messages::mark_read(txn, user_id, &row.id, store::now()).await?;
    if !changed {
        return Ok(None);
    }
    // A message from a blocked number was never counted unread.
    if Direction::parse(&row.direction)? == Direction::Inbound && !row.blocked {
        store::conversations::subtract_unread(txn, user_id, &row.contact_id, 1).await?;
    }
    let unread_count = events::unread_in(txn, user_id, &row.contact_id).await?;
    let event = NewEvent {
        kind: events::MESSAGES_READ,
        message_id: Some(&row.id),
        contact_id: Some(&row.contact_id),
        status: None,
        unread_count,
        muted: None,
    };
    Ok(Some(events::append(txn, user_id, event).await?))
}

/// MarkConversationRead's statements: the unread count left, and the cursor of its
/// event if anything was marked.
async fn mark_conversation_read_in(
    txn: &DatabaseTransaction,
    user_id: String,
    contact_id: String,
    horizon: Option<Cursor>,
) -> Result<(i64, Option<i64>), Error> {
    let user_id = user_id.as_str();
    let Some(conv) = store::conversations::lock(txn, user_id, &contact_id).await? else {
        return Ok((0, None));
    };
    let read = store::messages::mark_inbound_read_up_to(
        txn,
        user_id,
        &contact_id,
        horizon.as_ref(),
        store::now(),
    )
    .await?;
    store::conversations::subtract_unread(txn, user_id, &contact_id, read).await?;
    let left = (conv.unread_count - read as i64).max(0);
    if read == 0 {
        return Ok((left, None));
    }
    let event = NewEvent {
        kind: events::MESSAGES_READ,
        message_id: horizon.as_ref().map(|h| h.id.as_str()),
        contact_id: Some(&contact_id),
        status: None,
        unread_count: Some(left),
        // The row was just read (and locked): no second look-up.
        muted: Some(store::conversations::muted_at(&conv, store::now())),
    };
    Ok((left, Some(events::append(txn, user_id, event).await?)))
}
