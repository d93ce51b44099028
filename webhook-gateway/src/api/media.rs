//! `POST /api/media` (multipart or a raw image body) and `GET /api/media/{mediaId}`.
//!
//! Both buffer the image (5 MB at most) on this side: a slow client then never holds
//! a core call open, and an upload that breaks off never reaches the core.

pub(super) mod json;

use std::{convert::Infallible, sync::Arc};

use axum::{
    Json,
    body::Body,
    extract::State,
    response::{IntoResponse, Response},
};
use commpro_messaging_api::v1::{self as pb, upload_media_request::Frame};
use hyper::{
    HeaderMap, StatusCode,
    body::Bytes,
    header::{self, HeaderValue},
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::GatewayError;

use self::json::Media;
use super::{
    Api,
    error::ErrorBody,
    extract::{self, CallerContext, Id},
};

/// Room for multipart boundaries and part headers around the file itself.
const MULTIPART_OVERHEAD: usize = 64 * 1024;
/// gRPC frames of the upload stream (the core's own chunk size).
const CHUNK: usize = 64 * 1024;

/// An image's bytes (documentation only: handlers move `Bytes`).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct Image(Vec<u8>);

/// The multipart form of an upload.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // documentation only: the form is read part by part
pub struct UploadForm {
    /// The image (a part named `file` or `media`, or the first part with a file name).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Upload an image for an MMS.
///
/// JPEG, PNG or GIF, judged by content (not by name or declared type), at most 5 MB.
/// Send it as `multipart/form-data` (part `file`) or as the raw body with the image's
/// Content-Type. Use the returned `id` in `mediaIds` of `/api/messages/send-mms`.
#[utoipa::path(
    post,
    path = "/api/media",
    operation_id = "uploadMedia",
    tag = "media",
    request_body(content(
        (UploadForm = "multipart/form-data"),
        (Image = "image/jpeg"),
        (Image = "image/png"),
        (Image = "image/gif"),
    )),
    responses(
        (status = 201, description = "Stored (encrypted)", body = Media,
            headers(("Location" = String, description = "Where to GET the bytes"))),
        (status = 400, description = "Not a JPEG, PNG or GIF, or no file in the form", body = ErrorBody),
        (status = 413, description = "Larger than 5 MB", body = ErrorBody),
        (status = 415, description = "Neither multipart/form-data nor an image type", body = ErrorBody),
    ),
)]
pub async fn upload(
    State(api): State<Arc<Api>>,
    ctx: CallerContext,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let Some(ct) = extract::content_type(&headers) else {
        return Err(GatewayError::unsupported_media_type(
            "expected multipart/form-data or the image's Content-Type",
        ));
    };
    let (claimed, filename, bytes) = if ct == "multipart/form-data" {
        let raw = extract::read_body(
            &headers,
            body,
            api.upload_limit + MULTIPART_OVERHEAD,
            api.body_time,
        )
        .await?;
        file_part(&headers, raw).await?
    } else if ct.starts_with("image/") || ct == "application/octet-stream" {
        let raw = extract::read_body(&headers, body, api.upload_limit, api.body_time).await?;
        (ct, String::new(), raw)
    } else {
        return Err(GatewayError::unsupported_media_type(format!(
            "expected multipart/form-data or the image's Content-Type, got {ct}"
        )));
    };
    if bytes.len() > api.upload_limit {
        return Err(GatewayError::too_large(api.upload_limit));
    }
    if bytes.is_empty() {
        return Err(GatewayError::invalid("file", "is empty"));
    }

    let metadata = pb::UploadMediaRequest {
        frame: Some(Frame::Metadata(pb::UploadMediaMetadata {
            content_type: claimed,
            filename,
        })),
    };
    let chunks = (0..bytes.len()).step_by(CHUNK).map(move |at| {
        let end = (at + CHUNK).min(bytes.len());
        pb::UploadMediaRequest {
            frame: Some(Frame::Chunk(bytes[at..end].to_vec())),
        }
    });
    let frames = tokio_stream::iter(std::iter::once(metadata).chain(chunks));
    let (mut client, call) = api.core.messaging(frames, &ctx.authorization, &ctx.trace);
    let media = Media::try_from(client.upload_media(call).await?.into_inner())?;
    let location = HeaderValue::from_str(&media.url).ok();
    let mut resp = (StatusCode::CREATED, Json(media)).into_response();
    if let Some(location) = location {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    Ok(resp)
}

/// The file of a multipart upload: its declared type, name and bytes.
async fn file_part(
    headers: &HeaderMap,
    raw: Bytes,
) -> Result<(String, String, Bytes), GatewayError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(ct)
        .map_err(|_| GatewayError::bad_request("multipart/form-data without a boundary"))?;
    let stream = tokio_stream::once(Ok::<_, Infallible>(raw));
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fallback = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return Err(GatewayError::bad_request(format!(
                    "unreadable multipart body: {e}"
                )));
            }
        };
        let named = matches!(field.name(), Some("file" | "media"));
        let has_file_name = field.file_name().is_some();
        if !named && (!has_file_name || fallback.is_some()) {
            continue;
        }
        let claimed = field
            .content_type()
            .map(|m| m.essence_str().to_owned())
            .unwrap_or_default();
        let filename = field.file_name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| GatewayError::bad_request(format!("unreadable multipart body: {e}")))?;
        if named {
            return Ok((claimed, filename, bytes));
        }
        fallback = Some((claimed, filename, bytes));
    }
    fallback
        .ok_or_else(|| GatewayError::invalid("file", "no file part in the form (name it `file`)"))
}

/// An image's bytes, decrypted. The caller's own media only.
#[utoipa::path(
    get,
    path = "/api/media/{mediaId}",
    operation_id = "getMedia",
    tag = "media",
    params(("mediaId" = String, Path, description = "The media's id")),
    responses(
        (status = 200, description = "The image", content(
            (Image = "image/jpeg"),
            (Image = "image/png"),
            (Image = "image/gif"),
        )),
        (status = 404, description = "No such media for this caller", body = ErrorBody),
        (status = 409, description = "An inbound image not copied from Twilio (yet)", body = ErrorBody),
    ),
)]
pub async fn get(
    State(api): State<Arc<Api>>,
    Id(media_id): Id,
    ctx: CallerContext,
) -> Result<Response, GatewayError> {
    let (mut client, call) = api.core.messaging(
        pb::GetMediaRequest { media_id },
        &ctx.authorization,
        &ctx.trace,
    );
    let mut stream = client.get_media(call).await?.into_inner();
    let (content_type, bytes) = crate::core::collect_media(&mut stream).await?;
    let mut resp = Response::new(Body::from(bytes));
    if let Ok(ct) = HeaderValue::from_str(&content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    // Cache-Control: no-store is added with the security headers, as for any answer
    // holding one user's data.
    Ok(resp)
}
