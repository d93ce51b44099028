//! MarkRead and MarkConversationRead.
//!
//! Read state only moves forward: `read_at` is set once and never cleared, so marks
//! may arrive late or twice without making anything unread again.

use super::Messaging;
use crate::{
    domain::{Direction, MessageView, events, require},
    error::Error,
    store::{self, events::NewEvent, page_token::Cursor},
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
            let txn = self.records.store().begin_write().await?;
            store::conversations::lock(&txn, user_id, &row.contact_id).await?;
            let changed = store::messages::mark_read(&txn, user_id, &row.id, store::now()).await?;
            // A message from a blocked number was never counted unread.
            if changed && Direction::parse(&row.direction)? == Direction::Inbound && !row.blocked {
                store::conversations::subtract_unread(&txn, user_id, &row.contact_id, 1).await?;
            }
            if changed {
                let unread_count = events::unread_in(&txn, user_id, &row.contact_id).await?;
                let event = NewEvent {
                    kind: events::MESSAGES_READ,
                    message_id: Some(&row.id),
                    contact_id: Some(&row.contact_id),
                    status: None,
                    unread_count,
                };
                let cursor = events::append(&txn, user_id, event).await?;
                txn.commit().await?;
                self.records.announce(user_id, cursor);
            } else {
                txn.commit().await?;
            }
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

        let txn = self.records.store().begin_write().await?;
        let Some(conv) = store::conversations::lock(&txn, user_id, &contact.id).await? else {
            return Ok(0);
        };
        let read = store::messages::mark_inbound_read_up_to(
            &txn,
            user_id,
            &contact.id,
            horizon.as_ref(),
            store::now(),
        )
        .await?;
        store::conversations::subtract_unread(&txn, user_id, &contact.id, read).await?;
        let left = (conv.unread_count - read as i64).max(0);
        if read == 0 {
            txn.commit().await?;
            return Ok(left as u64);
        }
        let event = NewEvent {
            kind: events::MESSAGES_READ,
            message_id: horizon.as_ref().map(|h| h.id.as_str()),
            contact_id: Some(&contact.id),
            status: None,
            unread_count: Some(left),
        };
        let cursor = events::append(&txn, user_id, event).await?;
        txn.commit().await?;
        self.records.announce(user_id, cursor);
        Ok(left as u64)
    }
}
