//! The JSON shapes of `events.rs`: a change event, and how it travels as SSE.

use commpro_messaging_api::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    api::{
        json::{non_empty, time},
        messages::json::{MessageStatus, message_status},
    },
    error::GatewayError,
};

/// One Server-Sent Event as it appears on `GET /api/events`: `data` is an `Event` as
/// JSON text (`#/components/schemas/Event`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SseEnvelope {
    /// The event's cursor: resume after it with `Last-Event-ID`.
    pub id: String,
    /// The event's kind (`keepalive`, `message_received`, …).
    pub event: String,
    /// The `Event`, as JSON.
    pub data: String,
}

/// What a change event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An inbound message was stored (`messageId`, `contactId`, `unreadCount`).
    MessageReceived,
    /// A message's delivery status changed (`messageId`, `contactId`, `status`).
    MessageStatusChanged,
    /// Messages were marked read (`contactId`, `unreadCount`; `messageId`: the message
    /// or the read horizon, null when the whole conversation was marked).
    MessagesRead,
    /// A conversation got a new message we sent (`messageId`, `contactId`, `unreadCount`).
    ConversationUpdated,
    /// No news; `cursor` is the stream's position. Also the first event of a stream.
    Keepalive,
    /// The conversation was archived (`contactId`).
    ConversationArchived,
    /// The conversation is back in the inbox (`contactId`): unarchived, or a new
    /// inbound message (then followed by its `message_received`).
    ConversationUnarchived,
    /// The conversation was muted (`contactId`).
    ConversationMuted,
    /// The conversation was unmuted (`contactId`).
    ConversationUnmuted,
    /// A number was blocked (`contactId` of its contact).
    NumberBlocked,
    /// A number was unblocked (`contactId`).
    NumberUnblocked,
    /// A message was deleted (`messageId`, `contactId`, `unreadCount`).
    MessageDeleted,
    /// A conversation and its messages were deleted (`contactId`).
    ConversationDeleted,
    /// The contact's name changed (`contactId`; the name itself is not in events).
    ContactUpdated,
}

impl EventKind {
    /// The SSE `event` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageReceived => "message_received",
            Self::MessageStatusChanged => "message_status_changed",
            Self::MessagesRead => "messages_read",
            Self::ConversationUpdated => "conversation_updated",
            Self::Keepalive => "keepalive",
            Self::ConversationArchived => "conversation_archived",
            Self::ConversationUnarchived => "conversation_unarchived",
            Self::ConversationMuted => "conversation_muted",
            Self::ConversationUnmuted => "conversation_unmuted",
            Self::NumberBlocked => "number_blocked",
            Self::NumberUnblocked => "number_unblocked",
            Self::MessageDeleted => "message_deleted",
            Self::ConversationDeleted => "conversation_deleted",
            Self::ContactUpdated => "contact_updated",
        }
    }
}

/// A change in the caller's messages: ids and counts, never contents.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    /// Per user, increasing by one per event: resume after the last one seen.
    pub cursor: u64,
    pub kind: EventKind,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    pub message_id: Option<String>,
    pub contact_id: Option<String>,
    pub status: Option<MessageStatus>,
    pub unread_count: u64,
    /// The conversation was muted when this happened: stay quiet.
    pub muted: bool,
}

impl TryFrom<pb::Event> for Event {
    type Error = GatewayError;
    fn try_from(e: pb::Event) -> Result<Self, GatewayError> {
        let kind = match pb::EventKind::try_from(e.kind) {
            Ok(pb::EventKind::MessageReceived) => EventKind::MessageReceived,
            Ok(pb::EventKind::MessageStatusChanged) => EventKind::MessageStatusChanged,
            Ok(pb::EventKind::MessagesRead) => EventKind::MessagesRead,
            Ok(pb::EventKind::ConversationUpdated) => EventKind::ConversationUpdated,
            Ok(pb::EventKind::Keepalive) => EventKind::Keepalive,
            Ok(pb::EventKind::ConversationArchived) => EventKind::ConversationArchived,
            Ok(pb::EventKind::ConversationUnarchived) => EventKind::ConversationUnarchived,
            Ok(pb::EventKind::ConversationMuted) => EventKind::ConversationMuted,
            Ok(pb::EventKind::ConversationUnmuted) => EventKind::ConversationUnmuted,
            Ok(pb::EventKind::NumberBlocked) => EventKind::NumberBlocked,
            Ok(pb::EventKind::NumberUnblocked) => EventKind::NumberUnblocked,
            Ok(pb::EventKind::MessageDeleted) => EventKind::MessageDeleted,
            Ok(pb::EventKind::ConversationDeleted) => EventKind::ConversationDeleted,
            Ok(pb::EventKind::ContactUpdated) => EventKind::ContactUpdated,
            _ => return Err(GatewayError::bad_core_answer("event kind")),
        };
        Ok(Self {
            cursor: e.cursor,
            kind,
            created_at: time(e.created_at),
            message_id: non_empty(e.message_id),
            contact_id: non_empty(e.contact_id),
            status: message_status(e.status)?,
            unread_count: e.unread_count,
            muted: e.muted,
        })
    }
}
