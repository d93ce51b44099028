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

/// Archive a conversation.
///
/// It leaves the default conversation list (`?archived=true` lists it) until it is
/// unarchived or a new inbound message brings it back. Archiving an archived
/// conversation changes nothing.
#[utoipa::path(
    put,
    path = "/api/messages/conversations/{contactId}/archive",
    operation_id = "archiveConversation",
    tag = "conversations",
    params(("contactId" = String, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The conversation, archived", body = Conversation),
        (status = 404, description = "No such conversation for this caller", body = ErrorBody),
    ),
)]
pub async fn archive(
    State(api): State<Arc<Api>>,
    Id(contact_id): Id,
    ctx: CallerContext,
) -> Result<Json<Conversation>, GatewayError> {
    core_call!(
        api,
        ctx,
        archive_conversation(pb::ArchiveConversationRequest { contact_id })
    )
}

/// Unarchive a conversation: back in the default list.
#[utoipa::path(
    delete,
    path = "/api/messages/conversations/{contactId}/archive",
    operation_id = "unarchiveConversation",
    tag = "conversations",
    params(("contactId" = String, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The conversation, not archived", body = Conversation),
        (status = 404, description = "No such conversation for this caller", body = ErrorBody),
    ),
)]
pub async fn unarchive(
    State(api): State<Arc<Api>>,
    Id(contact_id): Id,
    ctx: CallerContext,
) -> Result<Json<Conversation>, GatewayError> {
    core_call!(
        api,
        ctx,
        unarchive_conversation(pb::UnarchiveConversationRequest { contact_id })
    )
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

/// Unmute a conversation.
#[utoipa::path(
    delete,
    path = "/api/messages/conversations/{contactId}/mute",
    operation_id = "unmuteConversation",
    tag = "conversations",
    params(("contactId" = String, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The conversation, not muted", body = Conversation),
        (status = 404, description = "No such conversation for this caller", body = ErrorBody),
    ),
)]
pub async fn unmute(
    State(api): State<Arc<Api>>,
    Id(contact_id): Id,
    ctx: CallerContext,
) -> Result<Json<Conversation>, GatewayError> {
    core_call!(
        api,
        ctx,
        unmute_conversation(pb::UnmuteConversationRequest { contact_id })
    )
}

/// Delete a conversation and all its messages.
///
/// Messages, their media and search terms are removed; the contact stays (its name,
/// block and STOP state). A message still being sent makes it a 409. Retrying
/// answers `deletedMessages: 0`.
#[utoipa::path(
    delete,
    path = "/api/messages/conversations/{contactId}",
    operation_id = "deleteConversation",
    tag = "conversations",
    params(("contactId" = String, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "Deleted", body = DeletedConversation),
        (status = 404, description = "No such contact for this caller", body = ErrorBody),
        (status = 409, description = "A message of the conversation is being sent", body = ErrorBody),
    ),
)]
pub async fn delete(
    State(api): State<Arc<Api>>,
    Id(contact_id): Id,
    ctx: CallerContext,
) -> Result<Json<DeletedConversation>, GatewayError> {
    core_call!(
        api,
        ctx,
        delete_conversation(pb::DeleteConversationRequest { contact_id })
    )
}
