//! The first step of every webhook: read the body within the size and time limits,
//! then check `X-Twilio-Signature` against the URL Twilio called. A missing or wrong
//! signature is refused here, with 403, before anything is parsed or stored.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use axum::{body::Body, extract::Request};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::{HeaderMap, StatusCode, body::Bytes, header};
use secrecy::{ExposeSecret, SecretString};

use super::{
    Twilio,
    signature::{self, Payload},
};
use crate::{
    error::GatewayError,
    rate_limit::ClientIp,
    trace::{self, TraceParent},
};

/// A webhook whose signature checked out.
pub(crate) struct Verified {
    /// Its form parameters, in the order sent.
    pub form: Vec<(String, String)>,
    /// The trace the core's work continues.
    pub trace: TraceParent,
}

/// Reads `req`'s body and checks its signature: 413 when the body is over the limit,
/// 408 when it is not received in time, 403 when the signature is missing or not
/// Twilio's, 415 for a (signed) JSON body, which these URLs do not take.
pub(crate) async fn verified(req: Request, twilio: &Twilio) -> Result<Verified, GatewayError> {
    let limit = twilio.config.max_body_bytes;
    if declared_length(req.headers()).is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let trace = TraceParent::current(trace::incoming(req.headers()));
    let claim = Claim::of(&req, &twilio.config.public_url);
    let body = read_body(req.into_body(), limit, twilio.config.read_timeout).await?;
    let form = claim.check_signature(&body, &twilio.config.auth_tokens)?;
    if claim.is_json {
        return Err(GatewayError::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected application/x-www-form-urlencoded",
        ));
    }
    Ok(Verified { form, trace })
}

/// What a request's head says about its signature, taken before the body is read.
struct Claim {
    signature: String,
    /// The URL Twilio signed: our configured public URL, never a forwarded header.
    url: String,
    is_json: bool,
    source: IpAddr,
}

impl Claim {
    fn of(req: &Request, public_url: &str) -> Self {
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        let uri = req.uri();
        Self {
            signature: header("x-twilio-signature").unwrap_or_default().to_owned(),
            url: match uri.query() {
                Some(q) => format!("{public_url}{}?{q}", uri.path()),
                None => format!("{public_url}{}", uri.path()),
            },
            is_json: header(header::CONTENT_TYPE.as_str())
                .is_some_and(|ct| ct.trim_start().starts_with("application/json")),
            source: req
                .extensions()
                .get::<ClientIp>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ip| ip.0),
        }
    }

    /// The form, when the signature is one of `tokens`' for this URL and body.
    fn check_signature(
        &self,
        body: &[u8],
        tokens: &[SecretString],
    ) -> Result<Vec<(String, String)>, GatewayError> {
        if self.signature.trim().is_empty() {
            tracing::warn!(source = %self.source, "webhook without X-Twilio-Signature refused");
            return Err(forbidden("missing signature"));
        }
        let form: Vec<(String, String)> = if self.is_json {
            Vec::new()
        } else {
            form_urlencoded::parse(body).into_owned().collect()
        };
        let payload = if self.is_json {
            Payload::Body(body)
        } else {
            Payload::Form(&form)
        };
        let tokens: Vec<&[u8]> = tokens
            .iter()
            .map(|t| t.expose_secret().as_bytes())
            .collect();
        if !signature::validate(&tokens, &self.url, payload, &self.signature) {
            tracing::warn!(source = %self.source, "webhook with an invalid signature refused");
            return Err(forbidden("invalid signature"));
        }
        Ok(form)
    }
}

/// The whole body, within `limit` bytes and `timeout` for all of it: Twilio posts
/// small forms at once, so a body that trickles in is not Twilio's.
async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, GatewayError> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(GatewayError::refused(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "body not received in time",
        )),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(_)) => Err(GatewayError::refused(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "could not read the body",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

fn too_large() -> GatewayError {
    GatewayError::refused(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "body too large",
    )
}

fn forbidden(message: &str) -> GatewayError {
    GatewayError::refused(StatusCode::FORBIDDEN, "permission_denied", message)
}
