//! The JSON shapes of `contacts.rs`.

use commpro_messaging_api::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    api::json::{non_empty, required_time},
    error::GatewayError,
};

/// A contact's new name.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ContactNameBody {
    /// Up to 100 characters, no control characters; absent, empty or null removes the
    /// name.
    #[schema(
        example = "Bob (plumber)",
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: Option<String>,
}

/// The other party of a conversation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Contact {
    pub id: String,
    pub number: String,
    /// Null when none.
    pub name: Option<String>,
    pub blocked: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl TryFrom<pb::Contact> for Contact {
    type Error = GatewayError;
    fn try_from(c: pb::Contact) -> Result<Self, GatewayError> {
        Ok(Self {
            created_at: required_time(c.created_at, "created_at")?,
            id: c.id,
            number: c.number,
            name: non_empty(c.name),
            blocked: c.blocked,
        })
    }
}
