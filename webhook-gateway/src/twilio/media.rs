//! `GET /media/{token}`: the decrypted bytes of an outbound MMS image, for Twilio to
//! fetch, only while the core's signed, expiring token is valid. Anything else is a
//! plain 404, whatever the reason.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{body::Body, extract::State, http::Uri, response::Response};
use hyper::header::{self, HeaderValue};
use secrecy::ExposeSecret;

use super::{Twilio, core_failed};
use crate::{plain, trace::TraceParent};

/// Serves the image a valid token names.
pub(crate) async fn serve(State(twilio): State<Arc<Twilio>>, uri: Uri) -> Response {
    // The token as sent, never percent-decoded: one URL, one token.
    let token = uri.path().strip_prefix("/media/").unwrap_or_default();
    let Some(media_id) = media_id(&twilio, token) else {
        return plain::not_found();
    };
    match twilio
        .core
        .serve_media(token, &media_id, &TraceParent::current(None))
        .await
    {
        Ok(Some((content_type, bytes))) => image(&content_type, bytes),
        Ok(None) => plain::not_found(),
        Err(e) => plain::refusal(core_failed(&media_id, e)),
    }
}

/// The media id of a token that is ours and not expired; none without
/// MEDIA_URL_SECRET.
fn media_id(twilio: &Twilio, token: &str) -> Option<String> {
    let secret = twilio.config.media_url_secret.as_ref()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    media_token::verify(secret.expose_secret().as_bytes(), token, now)
}

fn image(content_type: &str, bytes: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    // The URL is a bearer credential for one image: no cache may keep what it served.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}
