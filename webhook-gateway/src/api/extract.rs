//! Reading a REST request: the body under a size limit and an idle timeout, JSON with
//! the failing field named, the query string, and what is passed on to the core.

use std::time::{Duration, Instant};

use axum::{
    body::Body,
    extract::{FromRequestParts, Path},
};
use http_body_util::BodyExt;
use hyper::{
    HeaderMap,
    body::Bytes,
    header::{self, HeaderValue},
};
use serde::de::DeserializeOwned;

use crate::error::GatewayError;
use crate::trace::{self, TraceParent};

/// The path's one parameter (an id), refused in the API's JSON shape when it cannot be
/// decoded (axum's own rejection is plain text).
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut hyper::http::request::Parts,
        state: &S,
    ) -> Result<Self, GatewayError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|e| {
                GatewayError::bad_request(format!("the path is not valid: {}", e.body_text()))
            })
    }
}

/// What a handler forwards to the core besides the request itself.
pub struct CallerContext {
    /// The caller's `Authorization` header, verbatim: the core checks it.
    pub authorization: String,
    pub trace: TraceParent,
}

impl CallerContext {
    /// Refuses a request without an `Authorization` header at once (before its body is
    /// read); whether the token is good is the core's call.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, GatewayError> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                GatewayError::unauthenticated(
                    "missing Authorization header (expected `Authorization: Bearer <token>`)",
                )
            })?;
        Ok(Self {
            authorization,
            trace: TraceParent::current(trace::incoming(headers)),
        })
    }
}

/// The caller, as a handler's argument. Placed after the path's `Id` and before the
/// body, as the handlers did by hand: a bad path is still a 400 first, and a request
/// without a token is refused before its body is read.
impl<S: Send + Sync> FromRequestParts<S> for CallerContext {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut hyper::http::request::Parts,
        _state: &S,
    ) -> Result<Self, GatewayError> {
        Self::from_headers(&parts.headers)
    }
}

/// The media type of the request, lower-cased, without parameters.
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = raw.split(';').next().unwrap_or_default().trim();
    (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
}

fn is_json(essence: &str) -> bool {
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// How long a client gets to send a body.
#[derive(Clone, Copy, Debug)]
pub struct BodyTime {
    /// The longest pause between two pieces.
    pub idle: Duration,
    /// The whole body, however steadily it trickles in: a client sending a byte every
    /// few seconds would otherwise hold its buffer (and slot) for as long as it likes.
    pub whole: Duration,
}

impl BodyTime {
    /// How long to wait for the next piece of a body begun at `started`.
    fn next_wait(&self, started: Instant) -> Duration {
        self.idle.min(self.whole.saturating_sub(started.elapsed()))
    }
}

/// Largest buffer reserved up front from a declared length: a client that declares
/// 5 MB and sends nothing must not cost 5 MB.
const RESERVE_MAX: usize = 64 * 1024;

/// Reads the whole body, refusing it (413) once it passes `limit` and (408) when the
/// client pauses longer than `time.idle` or takes longer than `time.whole` in all.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    time: BodyTime,
) -> Result<Bytes, GatewayError> {
    let started = Instant::now();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let mut body = body;
    if declared.is_some_and(|n| n > limit as u64) {
        drain(&mut body, limit, time, started).await;
        return Err(GatewayError::too_large(limit));
    }
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(RESERVE_MAX));
    loop {
        let frame = match tokio::time::timeout(time.next_wait(started), body.frame()).await {
            Err(_) => return Err(GatewayError::timeout()),
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(GatewayError::bad_request("the body could not be read"));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                drain(&mut body, limit, time, started).await;
                return Err(GatewayError::too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

/// Reads and drops the rest of a refused body (up to `limit` more bytes, within the
/// body's time), so a client that writes its whole body before reading gets the 413
/// rather than a reset connection. Past that, the connection is simply closed.
async fn drain(body: &mut Body, limit: usize, time: BodyTime, started: Instant) {
    let mut left = limit;
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(time.next_wait(started), body.frame()).await
    {
        let n = frame.data_ref().map_or(0, |d| d.len());
        match left.checked_sub(n) {
            Some(rest) => left = rest,
            None => return,
        }
    }
}

/// Reads and parses a JSON request body under the API's limits.
pub async fn json_body<T: DeserializeOwned + Default>(
    api: &super::Api,
    headers: &HeaderMap,
    body: Body,
    optional: bool,
) -> Result<T, GatewayError> {
    let raw = read_body(headers, body, api.json_limit, api.body_time).await?;
    json(headers, &raw, optional)
}

/// Parses a JSON body. An empty body is `T::default()` when `optional`; otherwise the
/// request must say `Content-Type: application/json`.
pub fn json<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &[u8],
    optional: bool,
) -> Result<T, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) && optional {
        return Ok(T::default());
    }
    // An optional body may also be JSON `null` (the document says it is nullable).
    if optional
        && body.trim_ascii() == b"null"
        && content_type(headers).is_some_and(|ct| is_json(&ct))
    {
        return Ok(T::default());
    }
    match content_type(headers) {
        Some(ct) if is_json(&ct) => {}
        Some(ct) => {
            return Err(GatewayError::unsupported_media_type(format!(
                "expected Content-Type: application/json, got {ct}"
            )));
        }
        None => {
            return Err(GatewayError::unsupported_media_type(
                "expected Content-Type: application/json",
            ));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::bad_request(
            "the body is empty; expected a JSON object",
        ));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => GatewayError::bad_request("the body must be a JSON object"),
                Err(e) => GatewayError::bad_request(format!("the body is not valid JSON: {e}")),
            },
        );
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = inner.to_string();
        // `"\ud800"` is well-formed JSON but not text: name the field it is in.
        if (reason.contains("surrogate") || reason.contains("hex escape"))
            && !path.is_empty()
            && path != "."
        {
            return GatewayError::invalid(
                path,
                "must be valid Unicode text (it holds a lone surrogate escape)",
            );
        }
        if inner.is_syntax() || inner.is_eof() {
            return GatewayError::bad_request(format!("the body is not valid JSON: {reason}"));
        }
        // serde reports an unknown key at its parent; name the key itself.
        if let Some(name) = reason
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
        {
            return GatewayError::invalid(name, "is not a field of this request");
        }
        // Drop serde's "at line 1 column 9" tail: the field is named.
        let reason = reason
            .rsplit_once(" at line ")
            .map_or(reason.as_str(), |(r, _)| r)
            .to_owned();
        GatewayError::invalid(path, reason)
    })
}

/// `pageSize` and `pageToken` from the query string; other parameters are ignored.
pub fn page(query: Option<&str>) -> Result<(u32, String), GatewayError> {
    let (mut size, mut token) = (0, String::new());
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "pageSize" => {
                size = v.trim().parse::<u32>().map_err(|_| {
                    GatewayError::invalid("pageSize", "must be a positive whole number")
                })?;
            }
            "pageToken" => token = v.into_owned(),
            _ => {}
        }
    }
    Ok((size, token))
}

/// One query parameter's value (the first), if present.
pub fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A `true`/`false` query parameter; absent is false.
pub fn flag(query: Option<&str>, name: &'static str) -> Result<bool, GatewayError> {
    match query_value(query, name).as_deref().map(str::trim) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(GatewayError::invalid(name, "must be true or false")),
    }
}

/// An optional RFC 3339 time of a request body, for the core.
pub fn time(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<prost_types::Timestamp>, GatewayError> {
    let Some(value) = value else { return Ok(None) };
    let t = chrono::DateTime::parse_from_rfc3339(value.trim()).map_err(|_| {
        GatewayError::invalid(
            field,
            "must be an RFC 3339 time such as 2026-11-26T18:30:00Z",
        )
    })?;
    Ok(Some(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }))
}

/// The idempotency key from the body or the `Idempotency-Key` header; both must agree.
pub fn idempotency_key(headers: &HeaderMap, body: Option<String>) -> Result<String, GatewayError> {
    let header = headers
        .get("idempotency-key")
        .map(HeaderValue::to_str)
        .transpose()
        .map_err(|_| GatewayError::invalid("Idempotency-Key", "must be visible ASCII"))?
        .map(str::trim)
        .filter(|k| !k.is_empty());
    match (header, body) {
        (Some(h), Some(b)) if h != b => Err(GatewayError::invalid(
            "idempotencyKey",
            "differs from the Idempotency-Key header",
        )),
        (_, Some(b)) => Ok(b),
        (Some(h), None) => Ok(h.to_owned()),
        (None, None) => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::messages::json::SendSmsBody;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    fn field_of(r: Result<SendSmsBody, GatewayError>) -> Option<String> {
        r.unwrap_err().into_body().field
    }

    #[test]
    fn type_errors_name_the_field() {
        let h = headers("application/json; charset=utf-8");
        let r = json::<SendSmsBody>(&h, br#"{"from":"+1","to":5}"#, false);
        assert_eq!(field_of(r).as_deref(), Some("to"));
        let r = json::<SendSmsBody>(&h, br#"{"form":"+1"}"#, false);
        assert_eq!(field_of(r).as_deref(), Some("form"));
    }

    #[test]
    fn wrong_content_type_and_broken_json() {
        let r = json::<SendSmsBody>(&headers("text/plain"), b"{}", false);
        assert_eq!(r.unwrap_err().status().as_u16(), 415);
        let r = json::<SendSmsBody>(&headers("application/json"), b"{\"to\":", false);
        let e = r.unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert!(e.into_body().error.contains("not valid JSON"));
        let r = json::<SendSmsBody>(&headers("application/json"), b"[1]", false);
        assert_eq!(r.unwrap_err().status().as_u16(), 400);
    }

    #[test]
    fn page_parameters() {
        assert_eq!(
            page(Some("pageSize=5&pageToken=a%2Bb")).unwrap(),
            (5, "a+b".into())
        );
        assert_eq!(page(None).unwrap(), (0, String::new()));
        let e = page(Some("pageSize=-1")).unwrap_err().into_body();
        assert_eq!(e.field.as_deref(), Some("pageSize"));
    }

    proptest::proptest! {
        // Whatever bytes arrive, the parser answers (a value or a 4xx), never panics.
        #[test]
        fn json_parser_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let r = json::<SendSmsBody>(&headers("application/json"), &body, false);
            if let Err(e) = r {
                proptest::prop_assert!(e.status().is_client_error());
            }
        }
    }
}
