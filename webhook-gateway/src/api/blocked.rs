//! `GET|POST /api/blocked-numbers`, `DELETE /api/blocked-numbers/{number}`.

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

use self::json::{BlockBody, BlockedNumber, BlockedNumberPage, Unblocked};
use super::{
    Api,
    call::{core_call, paged_path},
    error::ErrorBody,
    extract::{self, CallerContext, Id},
};

paged_path! {
    get,
    path = "/api/blocked-numbers",
    operation_id = "listBlockedNumbers",
    tag = "blocked numbers",
    params(),
    page_size = "Absent or 0: 50; larger than 200 is served as 200",
    responses(
        (status = 200, description = "One page of blocked numbers", body = BlockedNumberPage),
        (status = 400, description = "`pageSize` or `pageToken` is invalid", body = ErrorBody),
    ),
/// The caller's blocked numbers, most recently blocked first.
pub async fn list(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
    ctx: CallerContext,
) -> Result<Json<BlockedNumberPage>, GatewayError> {
    let (page_size, page_token) = extract::page(query.as_deref())?;
    core_call!(
        api,
        ctx,
        list_blocked_numbers(pb::ListBlockedNumbersRequest {
            page_size,
            page_token,
        })
    )
}
}

/// Block a number.
///
/// Its messages are still received and kept (encrypted) but not counted unread, not
/// shown in conversations and not announced; sending to it is a 409. Blocking a
/// blocked number returns it unchanged.
#[utoipa::path(
    post,
    path = "/api/blocked-numbers",
    operation_id = "blockNumber",
    tag = "blocked numbers",
    request_body = BlockBody,
    responses(
        (status = 200, description = "The number, blocked", body = BlockedNumber),
        (status = 400, description = "`number` is not a phone number, short code or sender id, or the JSON is malformed", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
    ),
)]
pub async fn block(
    State(api): State<Arc<Api>>,
    ctx: CallerContext,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BlockedNumber>, GatewayError> {
    let req: BlockBody = extract::json_body(&api, &headers, body, false).await?;
    core_call!(
        api,
        ctx,
        block_number(pb::BlockNumberRequest { number: req.number })
    )
}

/// Unblock a number.
#[utoipa::path(
    delete,
    path = "/api/blocked-numbers/{number}",
    operation_id = "unblockNumber",
    tag = "blocked numbers",
    params(("number" = String, Path, description = "The blocked number, e.g. `+14155550100` (`%2B` also works for the `+`)")),
    responses(
        (status = 200, description = "The number, no longer blocked", body = Unblocked),
        (status = 400, description = "`number` is not a phone number, short code or sender id", body = ErrorBody),
        (status = 404, description = "The caller never had this number", body = ErrorBody),
    ),
)]
pub async fn unblock(
    State(api): State<Arc<Api>>,
    Id(number): Id,
    ctx: CallerContext,
) -> Result<Json<Unblocked>, GatewayError> {
    core_call!(
        api,
        ctx,
        unblock_number(pb::UnblockNumberRequest { number })
    )
}
