//! The JSON shapes of `mailbox.rs` (it answers with `Conversation` otherwise).

use commpro_messaging_api::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long to mute a conversation; the body is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MuteBody {
    /// End of the mute (RFC 3339, in the future); absent: until unmuted.
    #[schema(format = DateTime, example = "2026-11-27T08:00:00Z")]
    pub until: Option<String>,
}

/// What deleting a conversation removed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeletedConversation {
    pub contact_id: String,
    pub deleted_messages: u64,
}

impl From<pb::DeleteConversationResponse> for DeletedConversation {
    fn from(d: pb::DeleteConversationResponse) -> Self {
        Self {
            contact_id: d.contact_id,
            deleted_messages: d.deleted_messages,
        }
    }
}
