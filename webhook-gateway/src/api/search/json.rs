//! The JSON shape of `search.rs`.

use commpro_messaging_api::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    api::{
        json::{each, non_empty},
        messages::json::Message,
    },
    error::GatewayError,
};

/// Messages matching a search, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchResults {
    pub messages: Vec<Message>,
    pub next_page_token: Option<String>,
}

impl TryFrom<pb::SearchMessagesResponse> for SearchResults {
    type Error = GatewayError;
    fn try_from(r: pb::SearchMessagesResponse) -> Result<Self, GatewayError> {
        Ok(Self {
            messages: each(r.messages)?,
            next_page_token: non_empty(r.next_page_token),
        })
    }
}
