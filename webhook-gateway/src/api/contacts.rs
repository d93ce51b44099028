//! `PUT /api/contacts/{contactId}/name`.

use std::sync::Arc;

use axum::{Json, body::Body, extract::State};
use commpro_messaging_api::v1 as pb;
use hyper::HeaderMap;

use crate::error::GatewayError;

use super::{
    Api,
    error::ErrorBody,
    extract::{self, CallerContext, Id},
    json::{Contact, ContactNameBody},
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
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Contact>, GatewayError> {
    let ctx = CallerContext::from_headers(&headers)?;
    let req: ContactNameBody = extract::json_body(&api, &headers, body, false).await?;
    let (mut client, call) = api.core.messaging(
        pb::SetContactNameRequest {
            contact_id,
            name: req.name.unwrap_or_default(),
        },
        &ctx.authorization,
        &ctx.trace,
    );
    let contact = client.set_contact_name(call).await?.into_inner();
    Ok(Json(Contact::try_from(contact)?))
}
