//! The JSON shapes of `messages.rs` (sending, one message's state), and `Message`
//! itself, which every listing of messages shows.

use commpro_messaging_api::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    api::{
        json::{each, non_empty, required_time, time},
        media::json::Media,
    },
    error::GatewayError,
};

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

/// What deleting a message left.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeletedMessage {
    pub message_id: String,
    pub contact_id: String,
    /// Unread inbound messages left in the conversation.
    pub unread_count: u64,
}

// ---- from the core ----

/// A message's status; unspecified is `None` (events without one).
pub(in crate::api) fn message_status(value: i32) -> Result<Option<MessageStatus>, GatewayError> {
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

impl TryFrom<pb::Message> for Message {
    type Error = GatewayError;
    fn try_from(m: pb::Message) -> Result<Self, GatewayError> {
        let direction = match pb::Direction::try_from(m.direction) {
            Ok(pb::Direction::Outbound) => Direction::Outbound,
            Ok(pb::Direction::Inbound) => Direction::Inbound,
            _ => return Err(GatewayError::bad_core_answer("direction")),
        };
        let status = message_status(m.status)?
            .ok_or_else(|| GatewayError::bad_core_answer("message status"))?;
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
            created_at: required_time(m.created_at, "created_at")?,
            sent_at: time(m.sent_at),
            delivered_at: time(m.delivered_at),
            read_at: time(m.read_at),
            media: each(m.media)?,
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

impl From<pb::DeleteMessageResponse> for DeletedMessage {
    fn from(d: pb::DeleteMessageResponse) -> Self {
        Self {
            message_id: d.message_id,
            contact_id: d.contact_id,
            unread_count: d.unread_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
