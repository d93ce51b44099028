//! The REST API's JSON shapes (camelCase, RFC 3339 timestamps, lower-case enums) and
//! their conversion from the core's messages. Response types deny unknown fields so the
//! OpenAPI schemas say `additionalProperties: false` and the contract test catches any
//! field the document does not list.

use chrono::{DateTime, SecondsFormat};
use commpro_messaging_api::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::GatewayError;

// ---- requests ----

/// An SMS to queue.
// Missing fields default to empty here and are reported by the core, which holds
// every rule.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SendSmsBody {
    /// One of the caller's numbers: E.164, or a 5-6 digit short code.
    #[schema(
        required = true,
        example = "+33123456789",
        pattern = r"^(\+[1-9][0-9]{6,14}|[0-9]{5,6})$"
    )]
    pub from: String,
    /// The recipient (E.164: `+`, then 7 to 15 digits, not starting with 0); not `from`.
    #[schema(
        required = true,
        example = "+33987654321",
        pattern = r"^\+[1-9][0-9]{6,14}$"
    )]
    pub to: String,
    /// 1 to 1600 characters, without NUL.
    #[schema(
        required = true,
        example = "Hello from CommPro!",
        min_length = 1,
        max_length = 1600,
        pattern = r"^[^\u0000]*$"
    )]
    pub body: String,
    /// Retrying with the same key returns the first message instead of sending twice
    /// (up to 128 characters, no control characters; also accepted as an
    /// `Idempotency-Key` header).
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub idempotency_key: Option<String>,
    /// Send at this time instead of now (RFC 3339, 1 minute to 35 days ahead): the
    /// message is `scheduled` until then.
    #[schema(format = DateTime, example = "2026-11-26T18:30:00Z")]
    pub send_at: Option<String>,
}

/// An MMS to queue: up to 10 media, 5 MB in all.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SendMmsBody {
    /// As for `/api/messages/send`.
    #[schema(
        required = true,
        example = "+33123456789",
        pattern = r"^(\+[1-9][0-9]{6,14}|[0-9]{5,6})$"
    )]
    pub from: String,
    /// As for `/api/messages/send`.
    #[schema(
        required = true,
        example = "+33987654321",
        pattern = r"^\+[1-9][0-9]{6,14}$"
    )]
    pub to: String,
    /// Optional for MMS; at most 1600 characters, without NUL.
    #[schema(max_length = 1600, pattern = r"^[^\u0000]*$")]
    pub body: String,
    /// https URLs Twilio downloads itself (at most 2048 characters each).
    #[schema(max_items = 10, inline)]
    pub media_urls: Vec<MediaUrl>,
    /// Ids returned by `POST /api/media`. With `mediaUrls`: 1 to 10 media in all.
    #[schema(max_items = 10, inline)]
    pub media_ids: Vec<MediaId>,
    /// As for `/api/messages/send`.
    #[schema(max_length = 128, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub idempotency_key: Option<String>,
    /// As for `/api/messages/send`.
    #[schema(format = DateTime, example = "2026-11-26T18:30:00Z")]
    pub send_at: Option<String>,
}

/// An https URL of a media item (the host's last label starts with a letter).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(
    value_type = String,
    max_length = 2048,
    pattern = r"^https://([A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*(:[0-9]{1,4})?(/[!-~]*)?$",
    example = "https://example.com/picture.jpg"
)]
pub struct MediaUrl(pub String);

/// The id of an uploaded media item.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, min_length = 1, max_length = 64, example = "0193a0c4-7d1e-7f38-9b1a-5d2f0e4c8a11")]
pub struct MediaId(pub String);

/// How far to mark a conversation read; the body is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MarkConversationReadBody {
    /// Only messages up to and including this one become read; absent: all of them.
    pub up_to_message_id: Option<String>,
}

/// How long to mute a conversation; the body is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MuteBody {
    /// End of the mute (RFC 3339, in the future); absent: until unmuted.
    #[schema(format = DateTime, example = "2026-11-27T08:00:00Z")]
    pub until: Option<String>,
}

/// A number to block.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BlockBody {
    /// E.164, a short code or an alphanumeric sender id.
    #[schema(required = true, example = "+14155550100")]
    pub number: String,
}

/// A contact's new name.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ContactNameBody {
    /// Up to 100 characters, no control characters; absent, empty or null removes the
    /// name.
    #[schema(
        example = "Bob (plumber)",
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: Option<String>,
}

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

// ---- responses ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Outbound,
    Inbound,
}

/// Delivery state; read state is `readAt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Received,
    /// Sent with `sendAt`: waiting for its time.
    Scheduled,
    /// A scheduled message canceled before it was due.
    Canceled,
}

/// `destroyed`: the user's key was shredded and `body` is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentState {
    Available,
    Destroyed,
}

/// `pending`: an inbound image still being copied from Twilio; `failed`: it could not be;
/// `destroyed`: the owner's keys were shredded and the image deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaState {
    Ready,
    Pending,
    Failed,
    Destroyed,
}

/// An image, stored encrypted; its bytes are at `url`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Media {
    pub id: String,
    /// The type sniffed from the bytes.
    #[schema(example = "image/png")]
    pub content_type: String,
    pub size_bytes: u64,
    pub state: MediaState,
    /// `GET` it with the same bearer token.
    #[schema(example = "/api/media/0193a0c4-7d1e-7f38-9b1a-5d2f0e4c8a11")]
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Message {
    /// UUIDv7.
    pub id: String,
    pub direction: Direction,
    /// Who sent it (the user's number when outbound).
    pub from: String,
    /// Who received it.
    pub to: String,
    /// The user's Twilio number.
    pub owner_number: String,
    /// The other party.
    pub contact_number: String,
    pub contact_id: String,
    pub body: String,
    pub media: Vec<Media>,
    pub status: MessageStatus,
    /// Twilio's Message SID once Twilio accepted the message.
    pub provider_sid: Option<String>,
    /// Twilio's error code when delivery failed.
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    /// SMS segments the body takes.
    pub segments: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub sent_at: Option<String>,
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    #[schema(format = DateTime)]
    pub read_at: Option<String>,
    pub content_state: ContentState,
    /// When a scheduled message is (or was) due; null for messages sent at once.
    #[schema(format = DateTime)]
    pub send_at: Option<String>,
    /// The name the user gave the contact; null when none.
    pub contact_name: Option<String>,
}

/// The answer to a send: the seed's `{messageId, status, …}` plus the whole message.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendResponse {
    pub message_id: String,
    pub status: MessageStatus,
    pub segments: u32,
    pub message: Message,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Conversation {
    pub contact_id: String,
    pub contact_number: String,
    /// The user's number used by the latest message.
    pub owner_number: String,
    pub last_message: Option<Message>,
    /// Exact count of inbound messages not yet read.
    pub unread_count: u64,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Listed with `?archived=true` only.
    pub archived: bool,
    /// Muted now: notification senders stay quiet (events carry `muted`).
    pub muted: bool,
    /// End of the mute; null when muted until unmuted, or not muted.
    #[schema(format = DateTime)]
    pub muted_until: Option<String>,
    /// The name the user gave the contact; null when none.
    pub contact_name: Option<String>,
}

/// Conversations, most recently active first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversationPage {
    pub conversations: Vec<Conversation>,
    /// Pass as `pageToken` for the next page; null on the last page.
    pub next_page_token: Option<String>,
}

/// One conversation's messages, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversationMessages {
    pub contact_id: String,
    pub contact_number: String,
    /// The name the user gave the contact; null when none.
    pub contact_name: Option<String>,
    pub messages: Vec<Message>,
    pub next_page_token: Option<String>,
}

/// Messages matching a search, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchResults {
    pub messages: Vec<Message>,
    pub next_page_token: Option<String>,
}

/// A number the user blocked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockedNumber {
    pub number: String,
    pub contact_id: String,
    #[schema(format = DateTime)]
    pub blocked_at: String,
}

/// Blocked numbers, most recently blocked first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockedNumberPage {
    pub blocked_numbers: Vec<BlockedNumber>,
    pub next_page_token: Option<String>,
}

/// A number no longer blocked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Unblocked {
    pub number: String,
    pub contact_id: String,
}

/// What deleting a message left.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeletedMessage {
    pub message_id: String,
    pub contact_id: String,
    /// Unread inbound messages left in the conversation.
    pub unread_count: u64,
}

/// What deleting a conversation removed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeletedConversation {
    pub contact_id: String,
    pub deleted_messages: u64,
}

/// The other party of a conversation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Contact {
    pub id: String,
    pub number: String,
    /// Null when none.
    pub name: Option<String>,
    pub blocked: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversationRead {
    pub contact_id: String,
    /// Unread inbound messages left after the mark.
    pub unread_count: u64,
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

// ---- from the core ----

fn status(value: i32) -> Result<Option<MessageStatus>, GatewayError> {
    Ok(Some(match pb::MessageStatus::try_from(value) {
        Ok(pb::MessageStatus::Unspecified) => return Ok(None),
        Ok(pb::MessageStatus::Queued) => MessageStatus::Queued,
        Ok(pb::MessageStatus::Sending) => MessageStatus::Sending,
        Ok(pb::MessageStatus::Sent) => MessageStatus::Sent,
        Ok(pb::MessageStatus::Delivered) => MessageStatus::Delivered,
        Ok(pb::MessageStatus::Undelivered) => MessageStatus::Undelivered,
        Ok(pb::MessageStatus::Failed) => MessageStatus::Failed,
        Ok(pb::MessageStatus::Received) => MessageStatus::Received,
        Ok(pb::MessageStatus::Scheduled) => MessageStatus::Scheduled,
        Ok(pb::MessageStatus::Canceled) => MessageStatus::Canceled,
        Err(_) => return Err(GatewayError::bad_core_answer("message status")),
    }))
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
            status: status(e.status)?,
            unread_count: e.unread_count,
            muted: e.muted,
        })
    }
}

fn time(ts: Option<prost_types::Timestamp>) -> Option<String> {
    let ts = ts?;
    let nanos = u32::try_from(ts.nanos).ok()?;
    // Milliseconds and `Z`, as JavaScript's toISOString() writes them.
    DateTime::from_timestamp(ts.seconds, nanos)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

pub fn media_url(id: &str) -> String {
    format!("/api/media/{id}")
}

impl TryFrom<pb::Media> for Media {
    type Error = GatewayError;
    fn try_from(m: pb::Media) -> Result<Self, GatewayError> {
        let state = match pb::MediaState::try_from(m.state) {
            Ok(pb::MediaState::Ready) => MediaState::Ready,
            Ok(pb::MediaState::Pending) => MediaState::Pending,
            Ok(pb::MediaState::Failed) => MediaState::Failed,
            Ok(pb::MediaState::Destroyed) => MediaState::Destroyed,
            _ => return Err(GatewayError::bad_core_answer("media state")),
        };
        Ok(Self {
            url: media_url(&m.id),
            id: m.id,
            content_type: m.content_type,
            size_bytes: m.size_bytes,
            state,
        })
    }
}

impl TryFrom<pb::Message> for Message {
    type Error = GatewayError;
    fn try_from(m: pb::Message) -> Result<Self, GatewayError> {
        let direction = match pb::Direction::try_from(m.direction) {
            Ok(pb::Direction::Outbound) => Direction::Outbound,
            Ok(pb::Direction::Inbound) => Direction::Inbound,
            _ => return Err(GatewayError::bad_core_answer("direction")),
        };
        let status =
            status(m.status)?.ok_or_else(|| GatewayError::bad_core_answer("message status"))?;
        let content_state = match pb::ContentState::try_from(m.content_state) {
            Ok(pb::ContentState::Available) => ContentState::Available,
            Ok(pb::ContentState::Destroyed) => ContentState::Destroyed,
            _ => return Err(GatewayError::bad_core_answer("content state")),
        };
        let (from, to) = match direction {
            Direction::Outbound => (m.owner_number.clone(), m.contact_number.clone()),
            Direction::Inbound => (m.contact_number.clone(), m.owner_number.clone()),
        };
        Ok(Self {
            created_at: time(m.created_at)
                .ok_or_else(|| GatewayError::bad_core_answer("created_at"))?,
            sent_at: time(m.sent_at),
            delivered_at: time(m.delivered_at),
            read_at: time(m.read_at),
            media: m
                .media
                .into_iter()
                .map(Media::try_from)
                .collect::<Result<_, _>>()?,
            id: m.id,
            direction,
            from,
            to,
            owner_number: m.owner_number,
            contact_number: m.contact_number,
            contact_id: m.contact_id,
            body: m.body,
            status,
            provider_sid: non_empty(m.provider_sid),
            error_code: (m.error_code != 0).then_some(m.error_code),
            error_message: non_empty(m.error_message),
            segments: m.segments,
            content_state,
            send_at: time(m.send_at),
            contact_name: non_empty(m.contact_name),
        })
    }
}

impl TryFrom<pb::Message> for SendResponse {
    type Error = GatewayError;
    fn try_from(m: pb::Message) -> Result<Self, GatewayError> {
        let message = Message::try_from(m)?;
        Ok(Self {
            message_id: message.id.clone(),
            status: message.status,
            segments: message.segments,
            message,
        })
    }
}

impl TryFrom<pb::Conversation> for Conversation {
    type Error = GatewayError;
    fn try_from(c: pb::Conversation) -> Result<Self, GatewayError> {
        Ok(Self {
            last_message: c.last_message.map(Message::try_from).transpose()?,
            updated_at: time(c.updated_at)
                .ok_or_else(|| GatewayError::bad_core_answer("updated_at"))?,
            contact_id: c.contact_id,
            contact_number: c.contact_number,
            owner_number: c.owner_number,
            unread_count: c.unread_count,
            archived: c.archived,
            muted: c.muted,
            muted_until: time(c.muted_until),
            contact_name: non_empty(c.contact_name),
        })
    }
}

impl TryFrom<pb::ListConversationsResponse> for ConversationPage {
    type Error = GatewayError;
    fn try_from(r: pb::ListConversationsResponse) -> Result<Self, GatewayError> {
        Ok(Self {
            conversations: r
                .conversations
                .into_iter()
                .map(Conversation::try_from)
                .collect::<Result<_, _>>()?,
            next_page_token: non_empty(r.next_page_token),
        })
    }
}

impl TryFrom<pb::GetConversationResponse> for ConversationMessages {
    type Error = GatewayError;
    fn try_from(r: pb::GetConversationResponse) -> Result<Self, GatewayError> {
        Ok(Self {
            messages: r
                .messages
                .into_iter()
                .map(Message::try_from)
                .collect::<Result<_, _>>()?,
            contact_id: r.contact_id,
            contact_number: r.contact_number,
            contact_name: non_empty(r.contact_name),
            next_page_token: non_empty(r.next_page_token),
        })
    }
}

impl TryFrom<pb::SearchMessagesResponse> for SearchResults {
    type Error = GatewayError;
    fn try_from(r: pb::SearchMessagesResponse) -> Result<Self, GatewayError> {
        Ok(Self {
            messages: r
                .messages
                .into_iter()
                .map(Message::try_from)
                .collect::<Result<_, _>>()?,
            next_page_token: non_empty(r.next_page_token),
        })
    }
}

impl TryFrom<pb::BlockedNumber> for BlockedNumber {
    type Error = GatewayError;
    fn try_from(b: pb::BlockedNumber) -> Result<Self, GatewayError> {
        Ok(Self {
            blocked_at: time(b.blocked_at)
                .ok_or_else(|| GatewayError::bad_core_answer("blocked_at"))?,
            number: b.number,
            contact_id: b.contact_id,
        })
    }
}

impl TryFrom<pb::ListBlockedNumbersResponse> for BlockedNumberPage {
    type Error = GatewayError;
    fn try_from(r: pb::ListBlockedNumbersResponse) -> Result<Self, GatewayError> {
        Ok(Self {
            blocked_numbers: r
                .blocked_numbers
                .into_iter()
                .map(BlockedNumber::try_from)
                .collect::<Result<_, _>>()?,
            next_page_token: non_empty(r.next_page_token),
        })
    }
}

impl TryFrom<pb::Contact> for Contact {
    type Error = GatewayError;
    fn try_from(c: pb::Contact) -> Result<Self, GatewayError> {
        Ok(Self {
            created_at: time(c.created_at)
                .ok_or_else(|| GatewayError::bad_core_answer("created_at"))?,
            id: c.id,
            number: c.number,
            name: non_empty(c.name),
            blocked: c.blocked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_with_millis_in_utc() {
        let ts = prost_types::Timestamp {
            seconds: 1_764_000_000,
            nanos: 123_456_789,
        };
        assert_eq!(time(Some(ts)).unwrap(), "2025-11-24T16:00:00.123Z");
        assert_eq!(time(None), None);
    }

    #[test]
    fn inbound_messages_are_from_the_contact() {
        let m = pb::Message {
            id: "m1".into(),
            direction: pb::Direction::Inbound as i32,
            owner_number: "+15005550006".into(),
            contact_number: "+14155550100".into(),
            status: pb::MessageStatus::Received as i32,
            content_state: pb::ContentState::Available as i32,
            created_at: Some(prost_types::Timestamp::default()),
            ..Default::default()
        };
        let json = serde_json::to_value(Message::try_from(m).unwrap()).unwrap();
        assert_eq!(json["from"], "+14155550100");
        assert_eq!(json["to"], "+15005550006");
        assert_eq!(json["status"], "received");
        assert_eq!(json["direction"], "inbound");
        assert_eq!(json["providerSid"], serde_json::Value::Null);
        assert_eq!(json["createdAt"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn unknown_enum_values_are_refused_not_guessed() {
        let m = pb::Message {
            direction: 42,
            created_at: Some(prost_types::Timestamp::default()),
            ..Default::default()
        };
        assert_eq!(
            Message::try_from(m).unwrap_err().status(),
            hyper::StatusCode::BAD_GATEWAY
        );
    }
}
