//! The JSON shapes of `conversations.rs` (listing, reading), and `Conversation`
//! itself, which the mailbox routes answer too.

use commpro_messaging_api::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    api::{
        json::{each, non_empty, required_time, time},
        messages::json::Message,
    },
    error::GatewayError,
};

/// How far to mark a conversation read; the body is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MarkConversationReadBody {
    /// Only messages up to and including this one become read; absent: all of them.
    pub up_to_message_id: Option<String>,
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

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversationRead {
    pub contact_id: String,
    /// Unread inbound messages left after the mark.
    pub unread_count: u64,
}

impl TryFrom<pb::Conversation> for Conversation {
    type Error = GatewayError;
    fn try_from(c: pb::Conversation) -> Result<Self, GatewayError> {
        Ok(Self {
            last_message: c.last_message.map(Message::try_from).transpose()?,
            updated_at: required_time(c.updated_at, "updated_at")?,
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
            conversations: each(r.conversations)?,
            next_page_token: non_empty(r.next_page_token),
        })
    }
}

impl TryFrom<pb::GetConversationResponse> for ConversationMessages {
    type Error = GatewayError;
    fn try_from(r: pb::GetConversationResponse) -> Result<Self, GatewayError> {
        Ok(Self {
            messages: each(r.messages)?,
            contact_id: r.contact_id,
            contact_number: r.contact_number,
            contact_name: non_empty(r.contact_name),
            next_page_token: non_empty(r.next_page_token),
        })
    }
}
