//! The served OpenAPI document lists exactly what the server answers.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_exactly_what_the_server_answers() {
    let (server, _gw, rest) = stack(&Backend::Sqlite, &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");
    let doc = rest.doc.clone();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );

    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = [
        ("POST", "/api/messages/send"),
        ("POST", "/api/messages/send-mms"),
        ("POST", "/api/media"),
        ("GET", "/api/media/{mediaId}"),
        ("GET", "/api/messages/conversations"),
        ("GET", "/api/messages/conversations/{contactId}"),
        ("PUT", "/api/messages/{messageId}/read"),
        ("PUT", "/api/messages/conversations/{contactId}/read"),
        ("GET", "/api/events"),
        ("POST", "/api/messages/{messageId}/cancel"),
        ("DELETE", "/api/messages/{messageId}"),
        ("GET", "/api/messages/search"),
        ("PUT", "/api/messages/conversations/{contactId}/archive"),
        ("DELETE", "/api/messages/conversations/{contactId}/archive"),
        ("PUT", "/api/messages/conversations/{contactId}/mute"),
        ("DELETE", "/api/messages/conversations/{contactId}/mute"),
        ("DELETE", "/api/messages/conversations/{contactId}"),
        ("GET", "/api/blocked-numbers"),
        ("POST", "/api/blocked-numbers"),
        ("DELETE", "/api/blocked-numbers/{number}"),
        ("PUT", "/api/contacts/{contactId}/name"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    expected.sort();
    assert_eq!(documented, expected);

    // A successful call of every documented operation, each checked against the
    // document by the client (status, content type, schema).
    let inbound = server.inbound("SMdoc", BOB, OWN, "hello").await;
    let media = rest
        .call(
            Method::POST,
            "/api/media",
            Some(&alice),
            Body::Raw("image/gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()),
        )
        .await
        .expect(201);
    let media_id = media["id"].as_str().unwrap();
    rest.get(&format!("/api/media/{media_id}"), &alice).await;
    rest.post(
        "/api/messages/send",
        &alice,
        json!({"from": OWN, "to": BOB, "body": "hi"}),
    )
    .await
    .expect(200);
    rest.post(
        "/api/messages/send-mms",
        &alice,
        json!({"from": OWN, "to": BOB, "mediaIds": [media_id]}),
    )
    .await
    .expect(200);
    rest.get("/api/messages/conversations", &alice)
        .await
        .expect(200);
    rest.get(
        &format!("/api/messages/conversations/{}", inbound.contact_id),
        &alice,
    )
    .await
    .expect(200);
    rest.put(
        &format!("/api/messages/{}/read", inbound.id),
        &alice,
        Body::None,
    )
    .await
    .expect(200);
    rest.put(
        &format!("/api/messages/conversations/{}/read", inbound.contact_id),
        &alice,
        Body::None,
    )
    .await
    .expect(200);

    // The mailbox operations.
    let at = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let scheduled = rest
        .post(
            "/api/messages/send",
            &alice,
            json!({"from": OWN, "to": BOB, "body": "later", "sendAt": at}),
        )
        .await
        .expect(200);
    let scheduled_id = scheduled["messageId"].as_str().unwrap();
    rest.call(
        Method::POST,
        &format!("/api/messages/{scheduled_id}/cancel"),
        Some(&alice),
        Body::None,
    )
    .await
    .expect(200);
    rest.get("/api/messages/search?q=hello", &alice)
        .await
        .expect(200);
    let conv = format!("/api/messages/conversations/{}", inbound.contact_id);
    for (method, path, body) in [
        (Method::PUT, format!("{conv}/archive"), Body::None),
        (Method::DELETE, format!("{conv}/archive"), Body::None),
        (Method::PUT, format!("{conv}/mute"), Body::None),
        (Method::DELETE, format!("{conv}/mute"), Body::None),
        (
            Method::PUT,
            format!("/api/contacts/{}/name", inbound.contact_id),
            Body::Json(json!({"name": "Bob"})),
        ),
        (Method::GET, "/api/blocked-numbers".to_owned(), Body::None),
        (
            Method::DELETE,
            format!("/api/messages/{scheduled_id}"),
            Body::None,
        ),
    ] {
        rest.call(method, &path, Some(&alice), body)
            .await
            .expect(200);
    }
    // Blocking Carol makes her contact; her (empty) conversation deletes at once, while
    // Bob's still has sends in flight.
    let blocked = rest
        .post("/api/blocked-numbers", &alice, json!({"number": CAROL}))
        .await
        .expect(200);
    rest.call(
        Method::DELETE,
        &format!(
            "/api/messages/conversations/{}",
            blocked["contactId"].as_str().unwrap()
        ),
        Some(&alice),
        Body::None,
    )
    .await
    .expect(200);
    rest.call(
        Method::DELETE,
        &format!("/api/blocked-numbers/{CAROL}"),
        Some(&alice),
        Body::None,
    )
    .await
    .expect(200);

    let mut events = EventStream::open(&rest, &alice, &[], "").await;
    let hello = events.next(20).await;
    rest.validate(
        &json!({"$ref": "#/components/schemas/Event"}),
        &hello.data,
        "SSE data",
    );

    let seen = rest.seen.lock().unwrap().clone();
    for (method, path) in &expected {
        assert!(
            seen.iter()
                .any(|(m, p, s)| m == method && p == path && *s < 300),
            "{method} {path} was documented but never answered successfully"
        );
    }
}
