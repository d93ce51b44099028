//! What a REST request's credentials must look like before they are worth counting
//! against the rate limit and a call to the core: an `Authorization: Bearer` header
//! holding something shaped like a JWT (three base64url parts, a JSON payload), of a
//! sane size, not expired by its own `exp`. Whether it is *valid* (signature, issuer,
//! audience) stays the core's call. Over the rate limit, requests that fail here are
//! answered 401 rather than 429: a client over its budget still learns that its token
//! is the problem rather than being told to retry later.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hyper::{Method, header};

use crate::error::GatewayError;

/// Longest token forwarded (the core refuses longer ones too).
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The core's clock leeway on `exp`.
const LEEWAY_SECS: u64 = 30;

/// Paths of the API that need no credentials.
const PUBLIC_PATHS: &[&str] = &["/api/openapi.json"];

/// Refuses a request whose credentials cannot be good; passes everything else
/// (CORS preflights and the public document included).
pub(crate) fn precheck(req: &Request) -> Result<(), GatewayError> {
    if req.method() == Method::OPTIONS || PUBLIC_PATHS.contains(&req.uri().path()) {
        return Ok(());
    }
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        GatewayError::unauthenticated(
            "missing Authorization header (expected `Authorization: Bearer <token>`)",
        )
    })?;
    if value.len() > MAX_TOKEN_BYTES + "Bearer ".len() {
        return Err(GatewayError::unauthenticated(
            "token is too large (at most 8192 bytes)",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| GatewayError::unauthenticated("authorization must be `Bearer <token>`"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| GatewayError::unauthenticated("authorization must be `Bearer <token>`"))?
        .trim();
    let exp = expiry(token).ok_or_else(|| GatewayError::unauthenticated("token is malformed"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if exp.is_some_and(|exp| exp + LEEWAY_SECS < now) {
        return Err(GatewayError::unauthenticated("token expired"));
    }
    Ok(())
}

/// The `sub` of the bearer token in `authorization`, read without verifying it: only
/// for a token the core has just accepted.
pub(crate) fn subject(authorization: &str) -> Option<String> {
    let token = authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))?
        .trim();
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

/// `Some(exp)` of a JWT-shaped token (`Some(None)` when it has no `exp`: the core
/// names the missing claim), `None` when it is not shaped like a JWT at all.
fn expiry(token: &str) -> Option<Option<u64>> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || header.is_empty() {
        return None;
    }
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&decode(header)?).ok()?;
    // An unsigned token (`alg: none`) has an empty signature: the core refuses it by
    // name, so it is passed on; any other signature must at least decode.
    if !signature.is_empty() {
        decode(signature)?;
    }
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&decode(payload)?).ok()?;
    Some(claims.get("exp").and_then(serde_json::Value::as_u64))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use serde_json::json;

    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.{}",
            part(json!({"alg": "HS256", "typ": "JWT"})),
            part(claims),
            URL_SAFE_NO_PAD.encode([7u8; 32])
        )
    }

    fn check(method: Method, path: &str, auth: Option<&str>) -> Result<(), String> {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(auth) = auth {
            req = req.header(header::AUTHORIZATION, auth);
        }
        precheck(&req.body(Body::empty()).unwrap()).map_err(|e| e.into_body().error)
    }

    #[test]
    fn plainly_bad_credentials_are_refused_and_plausible_ones_pass() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let good = format!("Bearer {}", jwt(json!({"sub": "a", "exp": now + 60})));
        assert!(check(Method::GET, "/api/events", Some(&good)).is_ok());
        let no_exp = format!("Bearer {}", jwt(json!({"sub": "a"})));
        assert!(
            check(Method::GET, "/api/events", Some(&no_exp)).is_ok(),
            "the core names the claim"
        );
        let expired = format!("Bearer {}", jwt(json!({"sub": "a", "exp": now - 3600})));
        let huge = format!("Bearer {}", "a".repeat(16 * 1024));
        for (auth, why) in [
            (None, "missing"),
            (Some("Basic YTpi"), "Bearer"),
            (Some("Bearer not-a-jwt"), "malformed"),
            (Some("Bearer a.b.c"), "malformed"),
            (Some(expired.as_str()), "expired"),
            (Some(huge.as_str()), "too large"),
        ] {
            let err = check(Method::GET, "/api/messages/conversations", auth).unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        }
        // What needs no token.
        assert!(check(Method::GET, "/api/openapi.json", None).is_ok());
        assert!(check(Method::OPTIONS, "/api/messages/send", None).is_ok());
    }
}
