//! The first step of every webhook: read the body within the size and time limits,
//! then check `X-Twilio-Signature` against the URL Twilio called. A missing or wrong
//! signature is refused here, with 403, before anything is parsed or stored.
//!
//! The per-source rate limit counts only the webhooks that do not prove themselves
//! Twilio's; a valid signature is never refused by it (Twilio does not retry a 429,
//! and the message or status would be lost). A request without a signature that could
//! be one, or declaring a body over the limit, is counted before its body is read, as
//! every request was before, and over the budget gets 429 without it being read. One
//! with a well-formed signature is read and checked first (one HMAC-SHA1 over the form,
//! about 2 µs), and counted only when the check fails: 429 over the budget, else the
//! refusal itself. Either way a forged request costs one unit of its source's budget
//! and never reaches the core.

use std::{net::IpAddr, time::Duration};

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
    rate_limit::RateLimit,
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
/// Twilio's, 415 for a (signed) JSON body, which these URLs do not take; 429 in place
/// of any of these once the source is over its budget.
pub(crate) async fn verified(req: Request, twilio: &Twilio) -> Result<Verified, GatewayError> {
    let limit = twilio.config.max_body_bytes;
    let claim = Claim::of(&req, twilio);
    let over_limit = declared_length(req.headers()).is_some_and(|n| n > limit as u64);
    if !claim.well_formed || over_limit {
        // Nothing here can be Twilio's: counted before the body is read.
        twilio.limit.charge(claim.source)?;
    }
    if over_limit {
        return Err(too_large());
    }
    let trace = TraceParent::current(trace::incoming(req.headers()));
    let body = read_body(req.into_body(), limit, twilio.config.read_timeout)
        .await
        .map_err(|e| claim.unproven(e, &twilio.limit))?;
    let form = claim
        .check_signature(&body, &twilio.config.auth_tokens)
        .map_err(|e| claim.unproven(e, &twilio.limit))?;
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
    /// Whether the signature could be one at all (base64 of 20 bytes).
    well_formed: bool,
    /// The URLs Twilio may have signed: our configured public URL (never a forwarded
    /// header) + path + query, and the same with GATEWAY_CONNECTION_OVERRIDES as its
    /// fragment when set (Twilio never sends the fragment).
    urls: Vec<String>,
    is_json: bool,
    source: IpAddr,
}

impl Claim {
    fn of(req: &Request, twilio: &Twilio) -> Self {
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        let uri = req.uri();
        let public_url = &twilio.config.public_url;
        let url = match uri.query() {
            Some(q) => format!("{public_url}{}?{q}", uri.path()),
            None => format!("{public_url}{}", uri.path()),
        };
        let mut urls = Vec::with_capacity(2);
        if let Some(overrides) = &twilio.config.connection_overrides {
            urls.push(format!("{url}#{overrides}"));
        }
        urls.push(url);
        let signature = header("x-twilio-signature").unwrap_or_default().to_owned();
        Self {
            well_formed: signature::is_well_formed(&signature),
            signature,
            urls,
            is_json: header(header::CONTENT_TYPE.as_str())
                .is_some_and(|ct| ct.trim_start().starts_with("application/json")),
            source: twilio.limit.source(req),
        }
    }

    /// The form, when the signature is one of `tokens`' for one of the URLs and this
    /// body.
    fn check_signature(
        &self,
        body: &[u8],
        tokens: &[SecretString],
    ) -> Result<Vec<(String, String)>, GatewayError> {
        if self.signature.trim().is_empty() {
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
        if !self.well_formed
            || !self
                .urls
                .iter()
                .any(|url| signature::validate(&tokens, url, payload, &self.signature))
        {
            return Err(forbidden("invalid signature"));
        }
        Ok(form)
    }

    /// `refusal` of a request that did not prove itself Twilio's, counted against its
    /// source unless it was before its body was read: 429 instead once the source is
    /// over its budget (not logged, like every 429). A refused signature is logged.
    fn unproven(&self, refusal: GatewayError, limit: &RateLimit) -> GatewayError {
        if self.well_formed
            && let Err(too_many) = limit.charge(self.source)
        {
            return too_many;
        }
        if let GatewayError::Refused {
            status: StatusCode::FORBIDDEN,
            message,
            ..
        } = &refusal
        {
            tracing::warn!(source = %self.source, reason = %message, "webhook not signed by Twilio refused");
        }
        refusal
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
