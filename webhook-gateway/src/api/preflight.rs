//! Credentials before bodies. A request whose body may be larger than a few KB (a
//! declared length past [`PREFLIGHT_BYTES`], or a chunked one of unknown length) has
//! its bearer token checked before one byte of the body is read: 60 connections each
//! posting 4 MB to `/api/media` with a bad token must cost the gateway nothing, not
//! 60 buffers of 4 MB.
//!
//! How: first the token's shape ([`crate::credentials::precheck`]: no token, not a
//! JWT, expired — refused on the spot); then the core's own verdict, by opening an
//! `UploadMedia` stream and ending it at once. The core authenticates every call in
//! its interceptor before the handler runs, so a bad token is UNAUTHENTICATED and a
//! good one reaches the handler, which refuses the empty stream (INVALID_ARGUMENT,
//! `metadata`) and stores nothing. Why not verify here: in production the gateway
//! holds no key that verifies user tokens (only its own service key), and a second
//! verifier would split the rules (issuer, audience, algorithms, subject format) that
//! live in the core alone. One extra round trip, only for large bodies (uploads),
//! and the core remembers tokens it has verified.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use hyper::{HeaderMap, Method, header};

use super::Api;
use crate::credentials;
use crate::trace::{self, TraceParent};

/// Bodies up to this size are read before the core sees the token (JSON requests);
/// past it, the token is checked first.
pub const PREFLIGHT_BYTES: u64 = 8 * 1024;

/// Whether `headers` announce a body that may be larger than [`PREFLIGHT_BYTES`].
fn large_body(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .is_some_and(|n| n > PREFLIGHT_BYTES)
}

/// The layer in front of the API's handlers.
pub(crate) async fn credentials_first(
    State(api): State<Arc<Api>>,
    req: Request,
    next: Next,
) -> Response {
    if large_body(req.method(), req.headers()) {
        if let Err(refusal) = credentials::precheck(&req) {
            return refusal.into_response();
        }
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let trace = TraceParent::current(trace::incoming(req.headers()));
        if let Err(refusal) = api.core.authenticate(authorization, &trace).await {
            return refusal.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_bodies_wait_for_the_token() {
        let with = |name: header::HeaderName, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            h
        };
        let big = with(header::CONTENT_LENGTH, "4000000");
        let small = with(header::CONTENT_LENGTH, "512");
        let chunked = with(header::TRANSFER_ENCODING, "chunked");
        assert!(large_body(&Method::POST, &big));
        assert!(large_body(&Method::PUT, &chunked));
        assert!(!large_body(&Method::POST, &small));
        assert!(!large_body(&Method::POST, &HeaderMap::new()));
        assert!(!large_body(&Method::GET, &big));
    }
}
