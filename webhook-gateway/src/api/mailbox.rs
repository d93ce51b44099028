//! Conversation state: `PUT|DELETE /api/messages/conversations/{contactId}/archive`,
//! `PUT|DELETE …/mute`, and `DELETE /api/messages/conversations/{contactId}`.

pub(super) mod json;

use std::sync::Arc;

use axum::{Json, body::Body, extract::State};
use commpro_messaging_api::v1 as pb;
use hyper::HeaderMap;

use crate::error::GatewayError;

use self::json::{DeletedConversation, MuteBody};
use super::{
    Api,
    call::core_call,
    conversations::json::Conversation,
    error::ErrorBody,
    extract::{self, CallerContext, Id},
};

/// A route on one contact's conversation that takes nothing but the path's `contactId`:
/// its `#[utoipa::path]` (a 404 when the caller has no such conversation, and any
/// other refusals listed) and its handler, the one core call `$rpc($request)`.
macro_rules! contact_route {
    (
        $(#[doc = $doc:tt])*
        $method:ident $path:tt, operation_id = $op:tt,
        $name:ident -> $shape:ident: $ok:tt,
        404: $not_found:tt $(, $status:tt: $why:tt)*;
        $rpc:ident($request:ident)
    ) => {
        $(#[doc = $doc])*
        #[utoipa::path(
            $method,
            path = $path,
            operation_id = $op,
            tag = "conversations",
            params(("contactId" = String, Path, description = "The contact's id")),
            responses(
                (status = 200, description = $ok, body = $shape),
                (status = 404, description = $not_found, body = ErrorBody),
                $((status = $status, description = $why, body = ErrorBody),)*
            ),
        )]
        pub async fn $name(
            State(api): State<Arc<Api>>,
            Id(contact_id): Id,
            ctx: CallerContext,
        ) -> Result<Json<$shape>, GatewayError> {
            core_call!(api, ctx, $rpc(pb::$request { contact_id }))
        }
    };
}

contact_route! {
    /// Archive a conversation.
    ///
    /// It leaves the default conversation list (`?archived=true` lists it) until it is
    /// unarchived or a new inbound message brings it back. Archiving an archived
    /// conversation changes nothing.
    put "/api/messages/conversations/{contactId}/archive", operation_id = "archiveConversation",
    archive -> Conversation: "The conversation, archived",
    404: "No such conversation for this caller";
    archive_conversation(ArchiveConversationRequest)
}

contact_route! {
    /// Unarchive a conversation: back in the default list.
    delete "/api/messages/conversations/{contactId}/archive", operation_id = "unarchiveConversation",
    unarchive -> Conversation: "The conversation, not archived",
    404: "No such conversation for this caller";
    unarchive_conversation(UnarchiveConversationRequest)
}

/// Mute a conversation, until a time or until unmuted.
///
/// Its events then carry `muted: true` so notification senders stay quiet; unread
/// counts still count. The body is optional.
#[utoipa::path(
    put,
    path = "/api/messages/conversations/{contactId}/mute",
    operation_id = "muteConversation",
    tag = "conversations",
    params(("contactId" = String, Path, description = "The contact's id")),
    request_body(content = Option<MuteBody>, description = "Optional"),
    responses(
        (status = 200, description = "The conversation, muted", body = Conversation),
        (status = 400, description = "`until` is not a time in the future, or the JSON is malformed", body = ErrorBody),
        (status = 404, description = "No such conversation for this caller", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
    ),
)]
pub async fn mute(
    State(api): State<Arc<Api>>,
    Id(contact_id): Id,
    ctx: CallerContext,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Conversation>, GatewayError> {
    let req: MuteBody = extract::json_body(&api, &headers, body, true).await?;
    let until = extract::time("until", req.until.as_deref())?;
    core_call!(
        api,
        ctx,
        mute_conversation(pb::MuteConversationRequest { contact_id, until })
    )
}

contact_route! {
    /// Unmute a conversation.
    delete "/api/messages/conversations/{contactId}/mute", operation_id = "unmuteConversation",
    unmute -> Conversation: "The conversation, not muted",
    404: "No such conversation for this caller";
    unmute_conversation(UnmuteConversationRequest)
}

contact_route! {
    /// Delete a conversation and all its messages.
    ///
    /// Messages, their media and search terms are removed; the contact stays (its name,
    /// block and STOP state). A message still being sent makes it a 409. Retrying
    /// answers `deletedMessages: 0`.
    delete "/api/messages/conversations/{contactId}", operation_id = "deleteConversation",
    delete -> DeletedConversation: "Deleted",
    404: "No such contact for this caller",
    409: "A message of the conversation is being sent";
    delete_conversation(DeleteConversationRequest)
}
