//! `GET /api/messages/conversations[/{contactId}]` and
//! `PUT /api/messages/conversations/{contactId}/read`.

pub(super) mod json;

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{RawQuery, State},
};
use commpro_messaging_api::v1 as pb;
use hyper::HeaderMap;

use crate::error::GatewayError;

use self::json::{
    ConversationMessages, ConversationPage, ConversationRead, MarkConversationReadBody,
};
use super::{
    Api,
    call::{core_call, paged_path},
    error::ErrorBody,
    extract::{self, CallerContext, Id},
};

paged_path! {
    get,
    path = "/api/messages/conversations",
    operation_id = "listConversations",
    tag = "conversations",
    params(
        ("archived" = Option<bool>, Query, description = "true: the archived conversations"),
    ),
    page_size = "Absent or 0: 20; larger than 100 is served as 100",
    responses(
        (status = 200, description = "One page of conversations", body = ConversationPage),
        (status = 400, description = "`archived`, `pageSize` or `pageToken` is invalid", body = ErrorBody),
    ),
/// The caller's conversations, most recently active first.
///
/// The inbox by default; `archived=true` lists the archived conversations instead.
pub async fn list(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
    ctx: CallerContext,
) -> Result<Json<ConversationPage>, GatewayError> {
    let (page_size, page_token) = extract::page(query.as_deref())?;
    let archived = extract::flag(query.as_deref(), "archived")?;
    core_call!(
        api,
        ctx,
        list_conversations(pb::ListConversationsRequest {
            page_size,
            page_token,
            archived,
        })
    )
}
}

paged_path! {
    get,
    path = "/api/messages/conversations/{contactId}",
    operation_id = "getConversation",
    tag = "conversations",
    params(
        ("contactId" = String, Path, description = "The contact's id (`contactId` of a conversation or message)"),
    ),
    page_size = "Absent or 0: 50; larger than 200 is served as 200",
    responses(
        (status = 200, description = "One page of messages", body = ConversationMessages),
        (status = 400, description = "`pageSize` or `pageToken` is invalid", body = ErrorBody),
        (status = 404, description = "No such contact for this caller", body = ErrorBody),
    ),
/// One conversation's messages, newest first, decrypted.
pub async fn get(
    State(api): State<Arc<Api>>,
    Id(contact_id): Id,
    RawQuery(query): RawQuery,
    ctx: CallerContext,
) -> Result<Json<ConversationMessages>, GatewayError> {
    let (page_size, page_token) = extract::page(query.as_deref())?;
    core_call!(
        api,
        ctx,
        get_conversation(pb::GetConversationRequest {
            contact_id,
            page_size,
            page_token,
        })
    )
}
}

/// Mark a conversation read: all of it, or up to a message.
///
/// The read horizon only moves forward: marking up to an older message leaves newer
/// read ones read. The body is optional.
#[utoipa::path(
    put,
    path = "/api/messages/conversations/{contactId}/read",
    operation_id = "markConversationRead",
    tag = "conversations",
    params(("contactId" = String, Path, description = "The contact's id")),
    request_body(content = Option<MarkConversationReadBody>, description = "Optional"),
    responses(
        (status = 200, description = "What is left unread", body = ConversationRead),
        (status = 400, description = "The JSON is malformed", body = ErrorBody),
        (status = 404, description = "No such contact, or `upToMessageId` is not in this conversation", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "A body that is not `application/json`", body = ErrorBody),
    ),
)]
pub async fn mark_read(
    State(api): State<Arc<Api>>,
    Id(contact_id): Id,
    ctx: CallerContext,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ConversationRead>, GatewayError> {
    let req: MarkConversationReadBody = extract::json_body(&api, &headers, body, true).await?;
    let request = pb::MarkConversationReadRequest {
        contact_id: contact_id.clone(),
        up_to_message_id: req.up_to_message_id.unwrap_or_default(),
    };
    // The core's answer is only the count; the contact is the one asked about.
    core_call!(api, ctx, mark_conversation_read(request), |left| {
        ConversationRead {
            contact_id,
            unread_count: left.unread_count,
        }
    })
}
