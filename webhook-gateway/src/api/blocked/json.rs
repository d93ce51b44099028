//! The JSON shapes of `blocked.rs`.

use commpro_messaging_api::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    api::json::{each, non_empty, required_time},
    error::GatewayError,
};

/// A number to block.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BlockBody {
    /// E.164, a short code or an alphanumeric sender id.
    #[schema(required = true, example = "+14155550100")]
    pub number: String,
}

/// A number the user blocked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockedNumber {
    pub number: String,
    pub contact_id: String,
    #[schema(format = DateTime)]
    pub blocked_at: String,
}

/// Blocked numbers, most recently blocked first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockedNumberPage {
    pub blocked_numbers: Vec<BlockedNumber>,
    pub next_page_token: Option<String>,
}

/// A number no longer blocked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Unblocked {
    pub number: String,
    pub contact_id: String,
}

impl TryFrom<pb::BlockedNumber> for BlockedNumber {
    type Error = GatewayError;
    fn try_from(b: pb::BlockedNumber) -> Result<Self, GatewayError> {
        Ok(Self {
            blocked_at: required_time(b.blocked_at, "blocked_at")?,
            number: b.number,
            contact_id: b.contact_id,
        })
    }
}

impl TryFrom<pb::ListBlockedNumbersResponse> for BlockedNumberPage {
    type Error = GatewayError;
    fn try_from(r: pb::ListBlockedNumbersResponse) -> Result<Self, GatewayError> {
        Ok(Self {
            blocked_numbers: each(r.blocked_numbers)?,
            next_page_token: non_empty(r.next_page_token),
        })
    }
}

impl From<pb::UnblockNumberResponse> for Unblocked {
    fn from(u: pb::UnblockNumberResponse) -> Self {
        Self {
            number: u.number,
            contact_id: u.contact_id,
        }
    }
}
