//! The console's JSON endpoints: read and check the request, ask the backend, answer.
//! Refusals have the REST API's shape (`{error, code, field?}`).

use std::time::Duration;

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use hyper::{
    HeaderMap, StatusCode,
    header::{self, HeaderValue},
};
use serde::Deserialize;

use super::{DevConsole, DevError, PhoneReply, phone_media};
use crate::{api::extract, error::GatewayError};

/// Largest JSON body of the console's requests.
const JSON_LIMIT: usize = 64 * 1024;
/// How long a client may pause while sending a body.
const IDLE: Duration = Duration::from_secs(10);
/// The console's bodies: pauses of at most IDLE, the whole body within a minute.
const DEV_BODY_TIME: extract::BodyTime = extract::BodyTime {
    idle: IDLE,
    whole: Duration::from_secs(60),
};
/// Longest reply body (Twilio's limit for an inbound message is 1600 characters).
const MAX_BODY_CHARS: usize = 1600;

impl From<DevError> for GatewayError {
    fn from(e: DevError) -> Self {
        match e {
            DevError::Invalid { field, reason } => GatewayError::invalid(field, reason),
            DevError::Unsupported(why) => {
                GatewayError::refused(StatusCode::CONFLICT, "failed_precondition", why)
            }
            DevError::Unavailable(why) => {
                GatewayError::refused(StatusCode::SERVICE_UNAVAILABLE, "unavailable", why)
            }
        }
    }
}

/// Answers are one user's secrets (tokens, messages): never cached.
fn fresh(resp: impl IntoResponse) -> Response {
    let mut resp = resp.into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn json_body<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, GatewayError> {
    let raw = extract::read_body(headers, body, JSON_LIMIT, DEV_BODY_TIME).await?;
    extract::json(headers, &raw, false)
}

/// A phone number in the path: E.164 (`+`, 7 to 15 digits, not starting with 0).
fn number(field: &'static str, value: &str) -> Result<String, GatewayError> {
    let ok = value.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    });
    if ok {
        Ok(value.to_owned())
    } else {
        Err(GatewayError::invalid(
            field,
            "must be an E.164 number such as +14155550100",
        ))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct TokenBody {
    user_id: String,
    #[serde(default)]
    assign_number: bool,
}

/// `POST /dev/api/tokens {userId, assignNumber?}` → `{token, userId, numbers, expiresAt}`.
pub(super) async fn token(
    State(console): State<DevConsole>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let req: TokenBody = json_body(&headers, body).await?;
    let user = req.user_id.trim();
    if user.is_empty() {
        return Err(GatewayError::invalid("userId", "is required"));
    }
    let minted = console.backend.token(user, req.assign_number).await?;
    Ok(fresh(Json(minted)))
}

/// `GET /dev/api/phones/{number}/messages` → `{messages, nextDeliveryErrorCode}`.
pub(super) async fn phone(
    State(console): State<DevConsole>,
    Path(raw): Path<String>,
) -> Result<Response, GatewayError> {
    let n = number("number", &raw)?;
    Ok(fresh(Json(console.backend.phone(&n).await?)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ReplyBody {
    to: String,
    #[serde(default)]
    body: String,
    media_url: Option<String>,
    media_content_type: Option<String>,
}

/// `POST /dev/api/phones/{number}/reply {to, body, mediaUrl?, mediaContentType?}` →
/// the gateway's own answer to the signed webhook (status, type and body as given).
pub(super) async fn reply(
    State(console): State<DevConsole>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let from = number("number", &raw)?;
    let req: ReplyBody = json_body(&headers, body).await?;
    let to = number("to", req.to.trim())?;
    if req.body.chars().count() > MAX_BODY_CHARS {
        return Err(GatewayError::invalid(
            "body",
            format!("at most {MAX_BODY_CHARS} characters"),
        ));
    }
    let media = match req.media_url {
        None => Vec::new(),
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(GatewayError::invalid(
                    "mediaUrl",
                    "must be an http:// or https:// URL",
                ));
            }
            let content_type = match (req.media_content_type, console.images.content_type_of(&url))
            {
                (Some(given), _) => given,
                (None, Some(ours)) => ours.to_owned(),
                (None, None) => {
                    return Err(GatewayError::invalid(
                        "mediaContentType",
                        "is required for a media URL not uploaded with /dev/api/phones/{number}/media",
                    ));
                }
            };
            vec![(url, content_type)]
        }
    };
    if req.body.is_empty() && media.is_empty() {
        return Err(GatewayError::invalid(
            "body",
            "is required without a mediaUrl",
        ));
    }
    let answer = console
        .backend
        .reply(PhoneReply {
            from,
            to,
            body: req.body,
            media,
        })
        .await?;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = (status, answer.body).into_response();
    if let Some(ct) = answer
        .content_type
        .and_then(|ct| HeaderValue::from_str(&ct).ok())
    {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(fresh(resp))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct NextDeliveryBody {
    error_code: u32,
}

/// `POST /dev/api/phones/{number}/next-delivery {errorCode}` → `{number, errorCode}`.
pub(super) async fn next_delivery(
    State(console): State<DevConsole>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let n = number("number", &raw)?;
    let req: NextDeliveryBody = json_body(&headers, body).await?;
    // Twilio's error codes are five digits.
    if !(10_000..=99_999).contains(&req.error_code) {
        return Err(GatewayError::invalid(
            "errorCode",
            "must be a Twilio error code (five digits, e.g. 30003 or 30007)",
        ));
    }
    console
        .backend
        .fail_next_delivery(&n, req.error_code)
        .await?;
    Ok(fresh(Json(serde_json::json!({
        "number": n,
        "errorCode": req.error_code,
    }))))
}

/// `POST /dev/api/phones/{number}/media` (the raw image) → 201 `{url, contentType}`:
/// a URL to pass as a reply's `mediaUrl`.
pub(super) async fn upload_image(
    State(console): State<DevConsole>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    number("number", &raw)?;
    // A browser sends an image/* type, which (unlike a form's) another site's page
    // cannot send here without a CORS preflight the console never grants.
    let declared = extract::content_type(&headers).unwrap_or_default();
    if !declared.starts_with("image/") {
        return Err(GatewayError::unsupported_media_type(
            "expected the image itself, with Content-Type image/jpeg, image/png or image/gif",
        ));
    }
    let bytes =
        extract::read_body(&headers, body, phone_media::MAX_IMAGE_BYTES, DEV_BODY_TIME).await?;
    let content_type = phone_media::sniff(&bytes)
        .ok_or_else(|| GatewayError::invalid("file", "must be a JPEG, PNG or GIF image"))?;
    let url = console.images.add(content_type, bytes).ok_or_else(|| {
        GatewayError::refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no randomness for an image name",
        )
    })?;
    let created = Json(serde_json::json!({ "url": url, "contentType": content_type }));
    Ok(fresh((StatusCode::CREATED, created)))
}

/// `GET /dev/phone-media/{id}`: an image the phone sent, as the core's copier fetches it.
pub(super) async fn phone_image(
    State(console): State<DevConsole>,
    Path(id): Path<String>,
) -> Response {
    match console.images.get(&id) {
        Some(image) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(image.content_type),
            )],
            image.bytes,
        )
            .into_response(),
        None => crate::plain::not_found(),
    }
}
