//! Events recorded with every change a user's WatchEvents streams report.

use sea_orm::ConnectionTrait;

use crate::{
    error::Error,
    store::{self, entities::event, events::NewEvent},
};

/// `events.kind` values.
pub const MESSAGE_RECEIVED: &str = "message_received";
pub const MESSAGE_STATUS_CHANGED: &str = "message_status_changed";
pub const MESSAGES_READ: &str = "messages_read";
pub const CONVERSATION_UPDATED: &str = "conversation_updated";
pub const CONVERSATION_ARCHIVED: &str = "conversation_archived";
pub const CONVERSATION_UNARCHIVED: &str = store::message_batch::CONVERSATION_UNARCHIVED;
pub const CONVERSATION_MUTED: &str = "conversation_muted";
pub const CONVERSATION_UNMUTED: &str = "conversation_unmuted";
pub const NUMBER_BLOCKED: &str = "number_blocked";
pub const NUMBER_UNBLOCKED: &str = "number_unblocked";
pub const MESSAGE_DELETED: &str = "message_deleted";
pub const CONVERSATION_DELETED: &str = "conversation_deleted";
pub const CONTACT_UPDATED: &str = "contact_updated";

/// A stored event as streams deliver it (the API layer converts it).
pub type StoredEvent = event::Model;

/// Appends an event in `txn` and returns its cursor (call last, then
/// [`super::Records::announce`] after commit).
pub async fn append(
    txn: &impl ConnectionTrait,
    user_id: &str,
    event: NewEvent<'_>,
) -> Result<i64, Error> {
    Ok(store::events::append(txn, user_id, event).await?)
}

/// The conversation's unread count as `txn` sees it (for event payloads).
pub async fn unread_in(
    txn: &impl ConnectionTrait,
    user_id: &str,
    contact_id: &str,
) -> Result<Option<i64>, Error> {
    Ok(store::conversations::find(txn, user_id, contact_id)
        .await?
        .map(|c| c.unread_count))
}
