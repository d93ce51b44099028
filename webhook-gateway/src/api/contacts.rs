//! `PUT /api/contacts/{contactId}/name`.

pub(super) mod json;

use std::sync::Arc;

use axum::{Json, body::Body, extract::State};
use commpro_messaging_api::v1 as pb;
use hyper::HeaderMap;

use crate::error::GatewayError;

use self::json::{Contact, ContactNameBody};
use super::{
    Api,
    call::core_call,
    error::ErrorBody,
    extract::{self, CallerContext, Id},
};

/// Name a contact.
///
/// The name is encrypted at rest like message bodies; conversations and messages show
/// it as `contactName`. An empty or null name removes it.
#[utoipa::path(
    put,
    path = "/api/contacts/{contactId}/name",
    operation_id = "setContactName",
    tag = "contacts",
    params(("contactId" = String, Path, description = "The contact's id")),
    request_body = ContactNameBody,
    responses(
        (status = 200, description = "The contact with its name", body = Contact),
        (status = 400, description = "`name` is too long or has control characters, or the JSON is malformed", body = ErrorBody),
        (status = 404, description = "No such contact for this caller", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not `application/json`", body = ErrorBody),
    ),
)]
pub async fn set_name(
    State(api): State<Arc<Api>>,
    Id(contact_id): Id,
    ctx: CallerContext,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Contact>, GatewayError> {
    let req: ContactNameBody = extract::json_body(&api, &headers, body, false).await?;
    let name = req.name.unwrap_or_default();
    check_name(&name)?;
    core_call!(
        api,
        ctx,
        set_contact_name(pb::SetContactNameRequest { contact_id, name })
    )
}

/// What the document's schema says of `name`, as sent: at most 100 characters and no
/// control character anywhere, a trailing newline included. The core trims spaces
/// before its own checks, so without this `"Bob\n"` or 100 characters after a space
/// would be accepted although the schema forbids them.
fn check_name(name: &str) -> Result<(), GatewayError> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(GatewayError::invalid(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(GatewayError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The schema's `maxLength` of `name` (the core's limit too).
pub const MAX_NAME_CHARS: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_the_schema_says() {
        assert!(check_name("Bob (plumber)").is_ok());
        assert!(check_name("").is_ok());
        assert!(check_name(&"é".repeat(100)).is_ok());
        for bad in [
            "Bob\n".to_owned(),
            "\tBob".to_owned(),
            "B\u{85}ob".to_owned(),
            "Bob\u{7f}".to_owned(),
            format!(" {}", "a".repeat(100)),
        ] {
            let e = check_name(&bad).unwrap_err().into_body();
            assert_eq!(e.field.as_deref(), Some("name"), "{bad:?}");
        }
    }
}
