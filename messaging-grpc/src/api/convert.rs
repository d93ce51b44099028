//! Domain → proto conversions.

use chrono::{DateTime, Utc};
use commpro_messaging_api::v1 as pb;

use crate::{
    domain::{Body, Direction, MessageStatus, MessageView, StoredEvent, events},
    error::Error,
    messaging::{Blocked, ContactView, ConversationSummary, WatchItem},
    store::entities::phone_number,
};

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A request's optional time; one out of range is refused naming `field`.
pub fn time_in(
    field: &'static str,
    t: Option<prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, Error> {
    let Some(t) = t else { return Ok(None) };
    u32::try_from(t.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
        .map(Some)
        .ok_or_else(|| Error::invalid(field, "is not a valid time"))
}

fn direction(d: Direction) -> pb::Direction {
    match d {
        Direction::Outbound => pb::Direction::Outbound,
        Direction::Inbound => pb::Direction::Inbound,
    }
}

fn status(s: MessageStatus) -> pb::MessageStatus {
    match s {
        MessageStatus::Queued => pb::MessageStatus::Queued,
        MessageStatus::Sending => pb::MessageStatus::Sending,
        MessageStatus::Sent => pb::MessageStatus::Sent,
        MessageStatus::Delivered => pb::MessageStatus::Delivered,
        MessageStatus::Undelivered => pb::MessageStatus::Undelivered,
        MessageStatus::Failed => pb::MessageStatus::Failed,
        MessageStatus::Received => pb::MessageStatus::Received,
        MessageStatus::Scheduled => pb::MessageStatus::Scheduled,
        MessageStatus::Canceled => pb::MessageStatus::Canceled,
    }
}

pub fn message(m: MessageView) -> Result<pb::Message, Error> {
    let r = m.row;
    let (body, content_state) = match m.body {
        Body::Text(text) => (text, pb::ContentState::Available),
        Body::Destroyed => (String::new(), pb::ContentState::Destroyed),
    };
    Ok(pb::Message {
        id: r.id,
        direction: direction(Direction::parse(&r.direction)?) as i32,
        owner_number: r.owner_e164,
        // Empty once the user's keys were destroyed, like the body.
        contact_number: m.contact_number.unwrap_or_default(),
        contact_id: r.contact_id,
        body,
        media: m.media.into_iter().map(media).collect(),
        status: status(MessageStatus::parse(&r.status)?) as i32,
        provider_sid: r.provider_sid.unwrap_or_default(),
        error_code: r.error_code.unwrap_or_default(),
        error_message: r.error_message.unwrap_or_default(),
        segments: r.segments.max(0) as u32,
        created_at: Some(timestamp(r.created_at)),
        sent_at: r.sent_at.map(timestamp),
        delivered_at: r.delivered_at.map(timestamp),
        read_at: r.read_at.map(timestamp),
        content_state: content_state as i32,
        send_at: r.send_at.map(timestamp),
        contact_name: m.contact_name.unwrap_or_default(),
    })
}

/// A media item as the API shows it.
/// A page's messages.
pub fn messages(ms: Vec<MessageView>) -> Result<Vec<pb::Message>, Error> {
    ms.into_iter().map(message).collect()
}

pub fn media(m: crate::store::entities::media::Model) -> pb::Media {
    let (state, content) = match m.status.as_str() {
        crate::store::media::READY => (pb::MediaState::Ready, pb::ContentState::Available),
        crate::store::media::PENDING => (pb::MediaState::Pending, pb::ContentState::Available),
        crate::store::media::DESTROYED => (pb::MediaState::Destroyed, pb::ContentState::Destroyed),
        _ => (pb::MediaState::Failed, pb::ContentState::Available),
    };
    pb::Media {
        id: m.id,
        content_type: m.content_type,
        size_bytes: m.size_bytes.max(0) as u64,
        state: state as i32,
        content_state: content as i32,
    }
}

/// An exported message, or a piece of an exported media item (its type and size on
/// the first piece).
pub fn export_item(item: crate::admin::ExportItem) -> Result<pb::ExportUserResponse, Error> {
    use pb::export_user_response::Item;
    let item = match item {
        crate::admin::ExportItem::Message(view) => Item::Message(message(*view)?),
        crate::admin::ExportItem::MediaChunk { media, data, first } => {
            Item::Media(pb::ExportMediaChunk {
                content_type: if first {
                    media.content_type.clone()
                } else {
                    String::new()
                },
                size_bytes: if first {
                    media.size_bytes.max(0) as u64
                } else {
                    0
                },
                media_id: media.id,
                data,
            })
        }
    };
    Ok(pb::ExportUserResponse { item: Some(item) })
}

/// How many data keys a master key wraps.
pub fn master_key_use(m: crate::crypto::MasterKeyUse) -> pb::MasterKeyCount {
    pb::MasterKeyCount {
        master_key_id: m.master_key_id,
        data_keys: m.data_keys,
        configured: m.configured,
        active: m.active,
    }
}

/// An operator action from the audit log.
pub fn audit_event(e: crate::store::entities::audit_event::Model) -> pb::AuditEvent {
    pb::AuditEvent {
        id: e.id,
        at: Some(timestamp(e.at)),
        actor: e.actor,
        action: e.action,
        target_user_id: e.target_user_id.unwrap_or_default(),
        target: e.target.unwrap_or_default(),
        details: e.details,
    }
}

/// Splits decrypted bytes into the chunks GetMedia/ServeMedia stream.
pub fn media_chunks(
    m: &crate::store::entities::media::Model,
    bytes: Vec<u8>,
) -> Vec<pb::MediaChunk> {
    const CHUNK: usize = 64 * 1024;
    let size = bytes.len() as u64;
    let mut chunks: Vec<pb::MediaChunk> = bytes
        .chunks(CHUNK)
        .map(|c| pb::MediaChunk {
            data: c.to_vec(),
            ..Default::default()
        })
        .collect();
    if chunks.is_empty() {
        chunks.push(pb::MediaChunk::default());
    }
    chunks[0].content_type = m.content_type.clone();
    chunks[0].size_bytes = size;
    chunks
}

pub fn conversation(c: ConversationSummary) -> Result<pb::Conversation, Error> {
    Ok(pb::Conversation {
        contact_id: c.contact_id,
        contact_number: c.contact_number,
        owner_number: c.owner_number,
        last_message: Some(message(c.last_message)?),
        unread_count: c.unread_count,
        updated_at: Some(timestamp(c.updated_at)),
        archived: c.archived,
        muted: c.muted,
        muted_until: c.muted_until.map(timestamp),
        contact_name: c.contact_name.unwrap_or_default(),
    })
}

/// A page's conversations.
pub fn conversations(cs: Vec<ConversationSummary>) -> Result<Vec<pb::Conversation>, Error> {
    cs.into_iter().map(conversation).collect()
}

pub fn blocked(b: Blocked) -> pb::BlockedNumber {
    pb::BlockedNumber {
        number: b.number,
        contact_id: b.contact_id,
        blocked_at: Some(timestamp(b.blocked_at)),
    }
}

pub fn contact(c: ContactView) -> pb::Contact {
    pb::Contact {
        blocked: c.contact.blocked_at.is_some(),
        id: c.contact.id,
        number: c.number.unwrap_or_default(),
        name: c.name.unwrap_or_default(),
        created_at: Some(timestamp(c.contact.created_at)),
    }
}

pub fn phone_number(n: phone_number::Model) -> pb::PhoneNumber {
    pb::PhoneNumber {
        number: n.e164,
        user_id: n.user_id,
        created_at: Some(timestamp(n.created_at)),
    }
}

/// One item of a WatchEvents stream.
pub fn watch_item(item: WatchItem) -> pb::Event {
    match item {
        WatchItem::Event(e) => event(e),
        WatchItem::Keepalive { cursor, at } => pb::Event {
            cursor: cursor.max(0) as u64,
            kind: pb::EventKind::Keepalive as i32,
            created_at: Some(timestamp(at)),
            ..Default::default()
        },
    }
}

fn event(e: StoredEvent) -> pb::Event {
    let kind = match e.kind.as_str() {
        events::MESSAGE_RECEIVED => pb::EventKind::MessageReceived,
        events::MESSAGE_STATUS_CHANGED => pb::EventKind::MessageStatusChanged,
        events::MESSAGES_READ => pb::EventKind::MessagesRead,
        events::CONVERSATION_UPDATED => pb::EventKind::ConversationUpdated,
        events::CONVERSATION_ARCHIVED => pb::EventKind::ConversationArchived,
        events::CONVERSATION_UNARCHIVED => pb::EventKind::ConversationUnarchived,
        events::CONVERSATION_MUTED => pb::EventKind::ConversationMuted,
        events::CONVERSATION_UNMUTED => pb::EventKind::ConversationUnmuted,
        events::NUMBER_BLOCKED => pb::EventKind::NumberBlocked,
        events::NUMBER_UNBLOCKED => pb::EventKind::NumberUnblocked,
        events::MESSAGE_DELETED => pb::EventKind::MessageDeleted,
        events::CONVERSATION_DELETED => pb::EventKind::ConversationDeleted,
        events::CONTACT_UPDATED => pb::EventKind::ContactUpdated,
        _ => pb::EventKind::Unspecified,
    };
    let status = e
        .status
        .as_deref()
        .and_then(|s| MessageStatus::parse(s).ok())
        .map_or(pb::MessageStatus::Unspecified, status);
    pb::Event {
        cursor: e.cursor.max(0) as u64,
        kind: kind as i32,
        created_at: Some(timestamp(e.created_at)),
        message_id: e.message_id.unwrap_or_default(),
        contact_id: e.contact_id.unwrap_or_default(),
        status: status as i32,
        unread_count: e.unread_count.unwrap_or(0).max(0) as u64,
        muted: e.muted,
    }
}
