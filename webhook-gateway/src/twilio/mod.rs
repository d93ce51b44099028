//! Twilio's face of the gateway: `POST /webhook/sms`, `POST /webhook/status` and
//! `GET /media/{token}`, answered in plain text (or empty TwiML). Every webhook is
//! first read and signature-checked ([`verify`]); only then is its form parsed
//! ([`form`]) and handed to the core. The per-source rate limit counts every media
//! fetch, but only the webhooks that do not prove themselves Twilio's: Twilio does
//! not retry a 429, so refusing a signed webhook would lose the message or status.

pub mod form;
mod media;
mod params;
pub mod signature;
mod verify;
mod webhooks;

use std::sync::Arc;

use axum::{
    Router,
    middleware::from_fn_with_state,
    routing::{get, post},
};
use hyper::StatusCode;
use tonic::Code;

use crate::{
    config::GatewayConfig,
    core::Core,
    error::{Face, GatewayError, http_status},
    plain,
    rate_limit::{self, RateLimit},
};

/// What Twilio's handlers share.
pub(crate) struct Twilio {
    pub config: GatewayConfig,
    pub core: Core,
    /// The per-source budget shared with the REST API and the media URLs; webhooks are
    /// counted only when their signature does not check out ([`verify`]).
    pub limit: Arc<RateLimit>,
}

/// Twilio's routes. Another method on a webhook is 405 (`Allow: POST`); anything
/// but GET on a media URL is 404, as for a bad token. Neither is rate limited.
pub(crate) fn routes(state: Arc<Twilio>) -> Router {
    let limited = from_fn_with_state((state.limit.clone(), Face::Twilio), rate_limit::limit);
    Router::new()
        .route(
            "/webhook/sms",
            post(webhooks::sms).fallback(|| async { plain::not_allowed("POST") }),
        )
        .route(
            "/webhook/status",
            post(webhooks::status).fallback(|| async { plain::not_allowed("POST") }),
        )
        .route(
            "/media/{token}",
            get(media::serve)
                .route_layer(limited)
                // axum would answer HEAD with the GET handler.
                .head(|| async { plain::not_found() })
                .fallback(|| async { plain::not_found() }),
        )
        .with_state(state)
}

/// Logs why the core did not take a request of Twilio's (`id`: the message SID or
/// media id), then hands the error on to be answered.
fn core_failed(id: &str, err: GatewayError) -> GatewayError {
    let GatewayError::Core { code, message, .. } = &err else {
        return err;
    };
    if matches!(code, Code::Unauthenticated | Code::PermissionDenied) {
        tracing::error!(
            ?code,
            "the core refused the gateway's service token; check GATEWAY_SERVICE_TOKEN / JWT settings"
        );
    }
    match http_status(*code, Face::Twilio).0 {
        StatusCode::SERVICE_UNAVAILABLE => {
            tracing::warn!(sid = %id, reason = %message, "core unavailable; answering 503");
        }
        StatusCode::BAD_REQUEST => {
            tracing::warn!(sid = %id, reason = %message, "core refused the webhook");
        }
        _ => tracing::error!(sid = %id, reason = %message, "core failed on a webhook"),
    }
    err
}
