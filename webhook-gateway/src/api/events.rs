//! `GET /api/events`: the caller's `WatchEvents` stream as Server-Sent Events, so web
//! and mobile clients get real-time changes without gRPC. The SSE `id` is the event
//! cursor: a client that reconnects with `Last-Event-ID` (what EventSource-style
//! clients do by themselves) resumes without a gap or a duplicate.

pub(super) mod json;

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::{RawQuery, State},
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, Sse},
    },
};
use commpro_messaging_api::v1 as pb;
use hyper::HeaderMap;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::error::GatewayError;

use self::json::{Event, SseEnvelope};
use super::{Api, error::ErrorBody, extract::CallerContext, stream_slots::StreamSlot};

/// The caller's events, live, as `text/event-stream`.
///
/// Each event's `id` is its cursor and its `event` its kind (`message_received`,
/// `message_status_changed`, `messages_read`, `conversation_updated`, `keepalive`);
/// `data` is the JSON event. Ids and counts only: fetch bodies with
/// `GET /api/messages/conversations/{contactId}`. The stream opens with a `keepalive`
/// carrying the current cursor and sends one every 15 s. Resume with `Last-Event-ID`
/// (or `sinceCursor`); a cursor older than the retention answers 400 `out_of_range`:
/// resync with the conversation list, then watch without one.
#[utoipa::path(
    get,
    path = "/api/events",
    operation_id = "watchEvents",
    tag = "events",
    params(
        ("sinceCursor" = Option<u64>, Query, description = "The last cursor seen; absent: from now on"),
        ("Last-Event-ID" = Option<u64>, Header, description = "The last cursor seen, as SSE clients send it when they reconnect; wins over `sinceCursor`"),
    ),
    responses(
        (status = 200, description = "A stream of events; `data` of each is an `Event`", content_type = "text/event-stream", body = SseEnvelope),
        (status = 400, description = "The cursor is invalid, or `out_of_range`: older than the retention or ahead of the latest event", body = ErrorBody),
        (status = 429, description = "This user has the most event streams open already (`resource_exhausted`, naming the limit)", body = ErrorBody),
    ),
)]
pub async fn watch(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
    ctx: CallerContext,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let since_cursor = since_cursor(query.as_deref(), &headers)?;
    let (mut client, call) = api.core.watch(
        pb::WatchEventsRequest { since_cursor },
        &ctx.authorization,
        &ctx.trace,
    );
    // The core refuses a bad cursor or token before the first event: a plain error.
    let events = client.watch_events(call).await?.into_inner();
    // The core accepted the token: its subject is whose stream this is. Over the
    // user's share, the core stream just opened is dropped (closed) with the answer.
    let user = crate::credentials::subject(&ctx.authorization).unwrap_or_default();
    let slot = api.streams.acquire(&user)?;
    // The stream ends when the client leaves (hyper drops the body), the core ends it,
    // an event cannot be read or shown, or the gateway stops; the client then
    // reconnects and resumes. No task of its own: nothing outlives the answer.
    let events = events
        .map_while(|item| item.ok().and_then(to_sse))
        .map(Ok::<_, Infallible>);
    let stream = UntilShutdown {
        events,
        shutdown: Box::pin(api.shutdown.clone().cancelled_owned()),
        _slot: slot,
    };
    let mut resp = Sse::new(stream).into_response();
    // Proxies such as nginx would otherwise hold the events back in their buffers.
    resp.headers_mut().insert(
        "x-accel-buffering",
        hyper::header::HeaderValue::from_static("no"),
    );
    Ok(resp)
}

/// One core event as an SSE event: `id` the cursor, `event` the kind, `data` the JSON.
fn to_sse(event: pb::Event) -> Option<SseEvent> {
    let json = Event::try_from(event).ok()?;
    let data = serde_json::to_string(&json).ok()?;
    Some(
        SseEvent::default()
            .id(json.cursor.to_string())
            .event(json.kind.as_str())
            .data(data),
    )
}

/// A stream that ends when the gateway stops, so open event streams do not hold the
/// drain up (their clients reconnect to another replica). It holds its user's stream
/// slot for as long as it lives.
struct UntilShutdown<S> {
    events: S,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    _slot: StreamSlot,
}

impl<S: Stream + Unpin> Stream for UntilShutdown<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.shutdown.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.events).poll_next(cx)
    }
}

/// The cursor to resume after: `Last-Event-ID` when present (an SSE client that
/// reconnects sends it with the URL it first used, so it is the newer of the two), else
/// `sinceCursor`. Each one given must be a whole number, even the one not used.
fn since_cursor(query: Option<&str>, headers: &HeaderMap) -> Result<Option<u64>, GatewayError> {
    // Cursors are int64 in the document (the core keeps them as i64).
    let parse = |field: &'static str, raw: Option<&str>| {
        raw.map(|v| {
            v.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| i64::try_from(*n).is_ok())
                .ok_or_else(|| {
                    GatewayError::invalid(field, "must be a whole number (an event cursor)")
                })
        })
        .transpose()
    };
    let query_value = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "sinceCursor")
        .map(|(_, v)| v.into_owned());
    let from_query = parse("sinceCursor", query_value.as_deref())?;
    let header_value = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => Some("not text"),
    };
    let from_header = parse("Last-Event-ID", header_value)?;
    Ok(from_header.or(from_query))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn cursor_from_query_or_last_event_id() {
        let mut h = HeaderMap::new();
        assert_eq!(since_cursor(None, &h).unwrap(), None);
        h.insert("last-event-id", HeaderValue::from_static("41"));
        assert_eq!(since_cursor(None, &h).unwrap(), Some(41));
        // A reconnecting SSE client keeps its URL and adds the newer Last-Event-ID.
        assert_eq!(since_cursor(Some("sinceCursor=7"), &h).unwrap(), Some(41));
        assert_eq!(
            since_cursor(Some("sinceCursor=7"), &HeaderMap::new()).unwrap(),
            Some(7)
        );
        // The one not used is still checked, up to int64's maximum.
        let e = since_cursor(Some("sinceCursor=9223372036854775808"), &h)
            .unwrap_err()
            .into_body();
        assert_eq!(e.field.as_deref(), Some("sinceCursor"));
        let e = since_cursor(Some("sinceCursor=x"), &h)
            .unwrap_err()
            .into_body();
        assert_eq!(e.field.as_deref(), Some("sinceCursor"));
        h.insert("last-event-id", HeaderValue::from_static("-1"));
        let e = since_cursor(None, &h).unwrap_err().into_body();
        assert_eq!(e.field.as_deref(), Some("Last-Event-ID"));
    }
}
