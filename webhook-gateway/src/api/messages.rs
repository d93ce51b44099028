//! `POST /api/messages/send`, `POST /api/messages/send-mms`, `PUT /api/messages/{id}/read`,
//! `POST /api/messages/{id}/cancel`, `DELETE /api/messages/{id}`.

pub(super) mod json;

use std::sync::Arc;

use axum::{Json, body::Body, extract::State};
use commpro_messaging_api::v1 as pb;
use hyper::HeaderMap;

use crate::error::GatewayError;

use self::json::{DeletedMessage, Message, SendMmsBody, SendResponse, SendSmsBody};
use super::{
    Api,
    call::core_call,
    error::ErrorBody,
    extract::{self, CallerContext, Id},
};

/// Queue an SMS.
///
/// Committed before the answer: once you have a `messageId` the message will be sent.
/// Retrying with the same idempotency key returns the first message instead of
/// sending twice; reusing a key for another message is a 400. With `sendAt` the
/// message is `scheduled` and sent at that time.
#[utoipa::path(
    post,
    path = "/api/messages/send",
    operation_id = "sendSms",
    tag = "messages",
    request_body = SendSmsBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as `idempotencyKey` in the body")),
    responses(
        (status = 200, description = "Queued, or the first message of this idempotency key", body = SendResponse),
        (status = 400, description = "A field is invalid (named in `field`) or the JSON is malformed", body = ErrorBody),
        (status = 403, description = "`from` is not one of the caller's numbers", body = ErrorBody),
        (status = 409, description = "The recipient opted out (STOP) or is blocked", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
    ),
)]
pub async fn send(
    State(api): State<Arc<Api>>,
    ctx: CallerContext,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SendResponse>, GatewayError> {
    let req: SendSmsBody = extract::json_body(&api, &headers, body, false).await?;
    let msg = pb::SendSmsRequest {
        send_at: extract::time("sendAt", req.send_at.as_deref())?,
        from: req.from,
        to: req.to,
        body: req.body,
        idempotency_key: extract::idempotency_key(&headers, req.idempotency_key)?,
    };
    core_call!(api, ctx, send_sms(msg))
}

/// Queue an MMS.
///
/// Up to 10 media: ids from `POST /api/media` and/or https URLs Twilio downloads
/// itself; ours at most 5 MB in all. Idempotent like `/api/messages/send`.
#[utoipa::path(
    post,
    path = "/api/messages/send-mms",
    operation_id = "sendMms",
    tag = "messages",
    request_body = SendMmsBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same as `idempotencyKey` in the body")),
    responses(
        (status = 200, description = "Queued, or the first message of this idempotency key", body = SendResponse),
        (status = 400, description = "A field is invalid (named in `field`) or the JSON is malformed", body = ErrorBody),
        (status = 403, description = "`from` is not one of the caller's numbers", body = ErrorBody),
        (status = 404, description = "A media id is not the caller's", body = ErrorBody),
        (status = 409, description = "The recipient opted out (STOP) or is blocked, or a media item is not ready", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
    ),
)]
pub async fn send_mms(
    State(api): State<Arc<Api>>,
    ctx: CallerContext,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SendResponse>, GatewayError> {
    let req: SendMmsBody = extract::json_body(&api, &headers, body, false).await?;
    let msg = pb::SendMmsRequest {
        send_at: extract::time("sendAt", req.send_at.as_deref())?,
        from: req.from,
        to: req.to,
        body: req.body,
        media_ids: req.media_ids.into_iter().map(|m| m.0).collect(),
        media_urls: req.media_urls.into_iter().map(|m| m.0).collect(),
        idempotency_key: extract::idempotency_key(&headers, req.idempotency_key)?,
    };
    core_call!(api, ctx, send_mms(msg))
}

/// Mark one inbound message read.
///
/// Idempotent: the first `readAt` is kept.
#[utoipa::path(
    put,
    path = "/api/messages/{messageId}/read",
    operation_id = "markRead",
    tag = "messages",
    params(("messageId" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The message, with `readAt` set", body = Message),
        (status = 404, description = "No such message for this caller", body = ErrorBody),
    ),
)]
pub async fn mark_read(
    State(api): State<Arc<Api>>,
    Id(message_id): Id,
    ctx: CallerContext,
) -> Result<Json<Message>, GatewayError> {
    core_call!(api, ctx, mark_read(pb::MarkReadRequest { message_id }))
}

/// Cancel a scheduled message.
///
/// Only before it is due: the message becomes `canceled` and is never sent. Retrying
/// returns the canceled message; once it is being sent the answer is 409.
#[utoipa::path(
    post,
    path = "/api/messages/{messageId}/cancel",
    operation_id = "cancelScheduled",
    tag = "messages",
    params(("messageId" = String, Path, description = "The scheduled message's id")),
    responses(
        (status = 200, description = "The message, `canceled`", body = Message),
        (status = 404, description = "No such message for this caller", body = ErrorBody),
        (status = 409, description = "Not a scheduled message, or already being sent", body = ErrorBody),
    ),
)]
pub async fn cancel(
    State(api): State<Arc<Api>>,
    Id(message_id): Id,
    ctx: CallerContext,
) -> Result<Json<Message>, GatewayError> {
    core_call!(
        api,
        ctx,
        cancel_scheduled(pb::CancelScheduledRequest { message_id })
    )
}

/// Delete a message.
///
/// The message, its media and its search terms are removed (not flagged); the
/// conversation's last message and unread count are recomputed. A message still
/// being sent (`queued`, `sending`) is a 409.
#[utoipa::path(
    delete,
    path = "/api/messages/{messageId}",
    operation_id = "deleteMessage",
    tag = "messages",
    params(("messageId" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "Deleted; what is left unread", body = DeletedMessage),
        (status = 404, description = "No such message for this caller", body = ErrorBody),
        (status = 409, description = "The message is being sent", body = ErrorBody),
    ),
)]
pub async fn delete(
    State(api): State<Arc<Api>>,
    Id(message_id): Id,
    ctx: CallerContext,
) -> Result<Json<DeletedMessage>, GatewayError> {
    core_call!(
        api,
        ctx,
        delete_message(pb::DeleteMessageRequest { message_id })
    )
}
