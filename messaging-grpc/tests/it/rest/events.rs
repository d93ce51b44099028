//! `GET /api/events`: the event stream as SSE, resumed from `Last-Event-ID`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_as_sse_and_resume_from_last_event_id() {
    let (server, _gw, rest) =
        stack_with(&Backend::Sqlite, &[("WATCH_KEEPALIVE_MS", "400")], &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");
    let event_schema = json!({"$ref": "#/components/schemas/Event"});

    let mut stream = EventStream::open(&rest, &alice, &[], "").await;
    let hello = stream.next(5).await;
    assert_eq!(hello.event, "keepalive");
    assert_eq!(hello.data["cursor"], hello.id);
    let start = hello.id;

    let inbound = server.inbound("SMsse1", BOB, OWN, "hello over SSE").await;
    let (received, _) = stream.until("message_received").await;
    assert_eq!(received.id, start + 1);
    assert_eq!(received.data["messageId"], inbound.id.as_str());
    assert_eq!(received.data["contactId"], inbound.contact_id.as_str());
    assert_eq!(received.data["unreadCount"], 1);
    assert!(
        !received.data.to_string().contains("hello over SSE"),
        "events carry no bodies"
    );
    rest.validate(&event_schema, &received.data, "SSE data");

    // Past the gateway's 5 s call deadline the stream is still alive (it has none).
    let opened = tokio::time::Instant::now();
    while opened.elapsed() < Duration::from_millis(5_600) {
        let e = stream.next(3).await;
        rest.validate(&event_schema, &e.data, "SSE data");
    }
    drop(stream);

    // Changes while away are replayed, once, in order, after Last-Event-ID.
    rest.put(
        &format!("/api/messages/conversations/{}/read", inbound.contact_id),
        &alice,
        Body::None,
    )
    .await
    .expect(200);
    let last = received.id.to_string();
    let mut resumed = EventStream::open(&rest, &alice, &[("last-event-id", &last)], "").await;
    let (read, before) = resumed.until("messages_read").await;
    assert_eq!(read.id, start + 2);
    assert_eq!(read.data["unreadCount"], 0);
    assert!(
        before.iter().all(|e| e.event == "keepalive"),
        "nothing replayed twice: {before:?}"
    );

    // The same with sinceCursor; a cursor ahead of the log is out of range.
    let mut again = EventStream::open(&rest, &alice, &[], &format!("?sinceCursor={start}")).await;
    let (first, _) = again.until("message_received").await;
    assert_eq!(first.id, start + 1);
    rest.get("/api/events?sinceCursor=999999", &alice)
        .await
        .expect_error(400, "out_of_range", None);
    rest.get("/api/events?sinceCursor=soon", &alice)
        .await
        .expect_error(400, "invalid_argument", Some("sinceCursor"));
    rest.call(Method::GET, "/api/events", None, Body::None)
        .await
        .expect_error(401, "unauthenticated", None);
}
