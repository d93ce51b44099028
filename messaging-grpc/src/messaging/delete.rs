//! DeleteMessage and DeleteConversation. Deleting removes — not flags — the message
//! rows, their media (rows in the transaction, encrypted objects right after the
//! commit), their search terms and any scheduled job, then recomputes the
//! conversation (last message, unread count) in the same transaction. A message being
//! sent (QUEUED or SENDING) is refused: the dispatcher owns it until its outcome is
//! recorded, and a deleted row must not be sent.

use sea_orm::ConnectionTrait;

use super::Messaging;
use crate::{
    domain::{events, require},
    error::Error,
    store::{self, entities::media, events::NewEvent},
};

/// Statuses a message cannot be deleted in.
const BEING_SENT: [&str; 2] = ["queued", "sending"];
/// Ids per statement (SQLite's limit on bound values is far above this).
const CHUNK: usize = 500;

/// What DeleteMessage did.
pub struct DeletedMessage {
    pub message_id: String,
    pub contact_id: String,
    pub unread_count: u64,
}

fn being_sent(status: &str) -> bool {
    BEING_SENT.contains(&status)
}

fn refused_being_sent(field: &'static str) -> Error {
    Error::FailedPrecondition(format!(
        "{field}: a message is being sent (queued or sending); delete it once it is sent or failed"
    ))
}

impl Messaging {
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn delete_message(
        &self,
        user_id: &str,
        message_id: &str,
    ) -> Result<DeletedMessage, Error> {
        let id = require("message_id", message_id)?;
        let db = self.records.store().conn();
        let row = store::messages::find(db, user_id, id)
            .await?
            .ok_or(Error::NotFound("message_id"))?;
        if being_sent(&row.status) {
            return Err(refused_being_sent("message_id"));
        }
        let txn = self.records.store().begin_write().await?;
        store::conversations::lock(&txn, user_id, &row.contact_id).await?;
        let (deleted, freed) = delete_rows(&txn, user_id, vec![row.id.clone()]).await?;
        if deleted != 1 {
            // Gone or handed to the dispatcher since we read it.
            txn.rollback().await.ok();
            return match store::messages::find(db, user_id, id).await? {
                None => Err(Error::NotFound("message_id")),
                Some(_) => Err(refused_being_sent("message_id")),
            };
        }
        let unread = store::conversations::recompute(&txn, user_id, &row.contact_id).await?;
        let event = NewEvent {
            kind: events::MESSAGE_DELETED,
            message_id: Some(&row.id),
            contact_id: Some(&row.contact_id),
            unread_count: Some(unread.unwrap_or(0)),
            ..Default::default()
        };
        let cursor = events::append(&txn, user_id, event).await?;
        txn.commit().await?;
        self.records.announce(user_id, cursor);
        self.remove_objects(&freed).await;
        tracing::info!(message_id = %row.id, media = freed.len(), "message deleted");
        Ok(DeletedMessage {
            message_id: row.id,
            contact_id: row.contact_id,
            unread_count: unread.unwrap_or(0).max(0) as u64,
        })
    }

    /// Deletes every message of a conversation (those from a blocked number too) and
    /// the conversation; the contact stays with its name, block and opt-out state.
    /// Returns how many messages went; a retry finds none and returns 0.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn delete_conversation(&self, user_id: &str, contact_id: &str) -> Result<u64, Error> {
        let contact_id = require("contact_id", contact_id)?;
        let db = self.records.store().conn();
        let contact = store::contacts::find(db, user_id, contact_id)
            .await?
            .ok_or(Error::NotFound("contact_id"))?;
        let txn = self.records.store().begin_write().await?;
        let conversation = store::conversations::lock(&txn, user_id, &contact.id).await?;
        let rows = store::messages::ids_in_conversation(&txn, user_id, &contact.id).await?;
        if rows.iter().any(|(_, status)| being_sent(status)) {
            txn.rollback().await.ok();
            return Err(refused_being_sent("contact_id"));
        }
        if rows.is_empty() && conversation.is_none() {
            txn.commit().await?;
            return Ok(0);
        }
        let ids: Vec<String> = rows.into_iter().map(|(id, _)| id).collect();
        let wanted = ids.len() as u64;
        let (deleted, freed) = delete_rows(&txn, user_id, ids).await?;
        if deleted != wanted {
            // One was handed to the dispatcher meanwhile (PostgreSQL): all or nothing.
            txn.rollback().await.ok();
            return Err(refused_being_sent("contact_id"));
        }
        store::conversations::delete(&txn, user_id, &contact.id).await?;
        let event = NewEvent {
            kind: events::CONVERSATION_DELETED,
            contact_id: Some(&contact.id),
            ..Default::default()
        };
        let cursor = events::append(&txn, user_id, event).await?;
        txn.commit().await?;
        self.records.announce(user_id, cursor);
        self.remove_objects(&freed).await;
        tracing::info!(
            messages = deleted,
            media = freed.len(),
            "conversation deleted"
        );
        Ok(deleted)
    }

    async fn remove_objects(&self, freed: &[media::Model]) {
        self.media.remove_objects(freed).await;
    }
}

/// Deletes the user's messages with these ids unless being sent, with their search
/// terms, media links, scheduled jobs and the media no other message uses. Returns how
/// many messages went and the media rows deleted (whose objects go after commit).
async fn delete_rows(
    txn: &impl ConnectionTrait,
    user_id: &str,
    ids: Vec<String>,
) -> Result<(u64, Vec<media::Model>), Error> {
    let mut deleted = 0;
    let mut freed = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let chunk = chunk.to_vec();
        // Before unlinking: media shared with messages of a later chunk are freed
        // there, once this chunk's links are gone.
        let media = store::media::freed_by(txn, user_id, chunk.clone()).await?;
        deleted += store::messages::delete_unless(txn, user_id, chunk.clone(), &BEING_SENT).await?;
        store::search::delete_for(txn, user_id, chunk.clone()).await?;
        store::media::unlink_any(txn, chunk.clone()).await?;
        store::scheduled::remove_for(txn, user_id, chunk).await?;
        store::media::delete(txn, user_id, media.iter().map(|m| m.id.clone()).collect()).await?;
        freed.extend(media);
    }
    Ok((deleted, freed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MessageStatus;

    #[test]
    fn only_queued_and_sending_are_being_sent() {
        use MessageStatus::*;
        for s in [Queued, Sending] {
            assert!(being_sent(s.as_str()));
        }
        for s in [
            Scheduled,
            Canceled,
            Sent,
            Delivered,
            Undelivered,
            Failed,
            Received,
        ] {
            assert!(!being_sent(s.as_str()));
        }
    }
}
