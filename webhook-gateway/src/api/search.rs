//! `GET /api/messages/search`: SearchMessages over the blind index.

pub(super) mod json;

use std::sync::Arc;

use axum::{
    Json,
    extract::{RawQuery, State},
};
use commpro_messaging_api::v1 as pb;

use crate::error::GatewayError;

use self::json::SearchResults;
use super::{
    Api,
    call::{core_call, paged_path},
    error::ErrorBody,
    extract::{self, CallerContext},
};

paged_path! {
    get,
    path = "/api/messages/search",
    operation_id = "searchMessages",
    tag = "messages",
    params(
        ("q" = String, Query, min_length = 1, max_length = 200, description = "Words to find (1 to 200 characters, at most 10 words, at least one letter or digit)"),
        ("contactId" = Option<String>, Query, description = "Only this conversation"),
    ),
    page_size = "Absent or 0: 50; larger than 200 is served as 200",
    responses(
        (status = 200, description = "Matching messages, newest first, decrypted", body = SearchResults),
        (status = 400, description = "`q`, `pageSize` or `pageToken` is invalid", body = ErrorBody),
        (status = 404, description = "`contactId` is not a contact of this caller", body = ErrorBody),
    ),
/// Search the caller's messages.
///
/// Every word of `q` must appear in a message (whole words; case and accents do not
/// matter). A `q` that looks like a phone number also finds the messages of the
/// conversations with that number. Bodies stay encrypted at rest: words are indexed
/// as keyed hashes.
pub async fn search(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
    ctx: CallerContext,
) -> Result<Json<SearchResults>, GatewayError> {
    let (page_size, page_token) = extract::page(query.as_deref())?;
    core_call!(
        api,
        ctx,
        search_messages(pb::SearchMessagesRequest {
            query: extract::query_value(query.as_deref(), "q").unwrap_or_default(),
            contact_id: extract::query_value(query.as_deref(), "contactId").unwrap_or_default(),
            page_size,
            page_token,
        })
    )
}
}
