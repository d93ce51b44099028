//! Events recorded with every change a user's WatchEvents streams report.

use chrono::{DateTime, Utc};
use commpro_messaging_api::v1 as pb;
use sea_orm::ConnectionTrait;

use super::{MessageStatus, Messaging};
use crate::{
    error::Error,
    store::{self, entities::event, events::NewEvent},
};

/// `events.kind` values.
pub const MESSAGE_RECEIVED: &str = "message_received";
pub const MESSAGE_STATUS_CHANGED: &str = "message_status_changed";
pub const MESSAGES_READ: &str = "messages_read";
pub const CONVERSATION_UPDATED: &str = "conversation_updated";

impl Messaging {
    /// Appends an event in `txn` (call last, then [`Self::announce`] after commit).
    pub(super) async fn record_event(
        &self,
        txn: &impl ConnectionTrait,
        user_id: &str,
        event: NewEvent<'_>,
    ) -> Result<i64, Error> {
        Ok(store::events::append(txn, user_id, event).await?)
    }

    /// The conversation's unread count as `txn` sees it (for event payloads).
    pub(super) async fn unread_in(
        &self,
        txn: &impl ConnectionTrait,
        user_id: &str,
        contact_id: &str,
    ) -> Result<Option<i64>, Error> {
        Ok(store::conversations::find(txn, user_id, contact_id)
            .await?
            .map(|c| c.unread_count))
    }

    /// Wakes this process's streams for a committed event.
    pub(super) fn announce(&self, user_id: &str, cursor: i64) {
        self.events.publish(user_id, cursor);
    }

    /// `(last cursor, last pruned cursor)` of the user.
    pub async fn event_position(&self, user_id: &str) -> Result<(i64, i64), Error> {
        Ok(store::events::position(self.store.conn(), user_id).await?)
    }

    pub async fn events_after(
        &self,
        user_id: &str,
        cursor: i64,
        limit: u64,
    ) -> Result<Vec<event::Model>, Error> {
        Ok(store::events::after(self.store.conn(), user_id, cursor, limit).await?)
    }

    /// Deletes events older than `before` (retention).
    pub async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        let txn = self.store.begin_write().await?;
        let n = store::events::prune(&txn, before).await?;
        txn.commit().await?;
        Ok(n)
    }
}

impl event::Model {
    pub fn into_proto(self) -> pb::Event {
        let kind = match self.kind.as_str() {
            MESSAGE_RECEIVED => pb::EventKind::MessageReceived,
            MESSAGE_STATUS_CHANGED => pb::EventKind::MessageStatusChanged,
            MESSAGES_READ => pb::EventKind::MessagesRead,
            CONVERSATION_UPDATED => pb::EventKind::ConversationUpdated,
            _ => pb::EventKind::Unspecified,
        };
        let status = self
            .status
            .as_deref()
            .and_then(|s| MessageStatus::parse(s).ok())
            .map_or(pb::MessageStatus::Unspecified, crate::api::status_proto);
        pb::Event {
            cursor: self.cursor.max(0) as u64,
            kind: kind as i32,
            created_at: Some(crate::api::timestamp(self.created_at)),
            message_id: self.message_id.unwrap_or_default(),
            contact_id: self.contact_id.unwrap_or_default(),
            status: status as i32,
            unread_count: self.unread_count.unwrap_or(0).max(0) as u64,
        }
    }
}
