//! Messages and conversations through the REST API: the seed's curl, retried sends,
//! media (upload, MMS, download), read state, another user's data, and pages.

use super::*;

backend_tests! {
    async fn the_seeds_curl_sends_and_the_message_reads_back(backend: Backend) {
        let (server, _gw, rest) = stack(&backend, &[]).await;
        server.assign(SEED_FROM, "alice").await;
        let alice = server.token("alice");

        // Exactly the seed's request: bearer token, JSON, three fields.
        let sent = rest.post("/api/messages/send", &alice, seed_send()).await.expect(200);
        let id = sent["messageId"].as_str().unwrap().to_owned();
        assert_eq!(sent["status"], "queued");
        assert_eq!(sent["segments"], 1);
        let m = &sent["message"];
        assert_eq!(m["id"], id.as_str());
        assert_eq!((m["from"].as_str(), m["to"].as_str()), (Some(SEED_FROM), Some(SEED_TO)));
        assert_eq!(m["body"], "Hello from CommPro!");
        assert_eq!(m["direction"], "outbound");
        chrono::DateTime::parse_from_rfc3339(m["createdAt"].as_str().unwrap()).unwrap();

        // The same message through gRPC: one implementation behind both.
        let contact = m["contactId"].as_str().unwrap().to_owned();
        let grpc = server.user("alice").await.message(&contact, &id).await;
        assert_eq!(grpc.body, "Hello from CommPro!");

        // It is listed, and its conversation holds it.
        let list = rest.get("/api/messages/conversations", &alice).await.expect(200);
        assert_eq!(list["conversations"][0]["contactId"], contact.as_str());
        assert_eq!(list["conversations"][0]["lastMessage"]["id"], id.as_str());
        assert_eq!(list["nextPageToken"], Value::Null);
        let conv = rest
            .get(&format!("/api/messages/conversations/{contact}"), &alice)
            .await
            .expect(200);
        assert_eq!(conv["contactNumber"], SEED_TO);
        assert_eq!(conv["messages"][0]["id"], id.as_str());

        // The console provider delivers it; the REST view follows.
        wait_until("delivered via REST", 10, || {
            let rest = rest.clone();
            let alice = alice.clone();
            let path = format!("/api/messages/conversations/{contact}");
            async move {
                let conv = rest.get(&path, &alice).await.json();
                conv["messages"][0]["status"] == "delivered"
                    && conv["messages"][0]["deliveredAt"].is_string()
            }
        })
        .await;
    }

    async fn retried_sends_with_one_key_send_once(backend: Backend) {
        let (server, _gw, rest) = stack(&backend, &[]).await;
        server.assign(OWN, "alice").await;
        let alice = server.token("alice");
        let body = json!({"from": OWN, "to": BOB, "body": "once", "idempotencyKey": "k-1"});
        let first = rest.post("/api/messages/send", &alice, body.clone()).await.expect(200);
        let again = rest.post("/api/messages/send", &alice, body).await.expect(200);
        assert_eq!(first["messageId"], again["messageId"]);

        // The Idempotency-Key header works the same way.
        let by_header = || {
            rest.call_with(
                Method::POST,
                "/api/messages/send",
                Some(&alice),
                Body::Json(json!({"from": OWN, "to": BOB, "body": "twice?"})),
                &[("idempotency-key", "k-2")],
            )
        };
        let a = by_header().await.expect(200);
        let b = by_header().await.expect(200);
        assert_eq!(a["messageId"], b["messageId"]);
        assert_ne!(a["messageId"], first["messageId"]);

        // The same key for another message is refused, naming the field.
        rest.post(
            "/api/messages/send",
            &alice,
            json!({"from": OWN, "to": BOB, "body": "different", "idempotencyKey": "k-1"}),
        )
        .await
        .expect_error(400, "invalid_argument", Some("idempotencyKey"));
        let conv = rest
            .get(&format!("/api/messages/conversations/{}", first["message"]["contactId"].as_str().unwrap()), &alice)
            .await
            .expect(200);
        assert_eq!(conv["messages"].as_array().unwrap().len(), 2);
    }

    async fn images_upload_send_as_mms_and_download(backend: Backend) {
        let (server, _gw, rest) = stack(&backend, &[]).await;
        server.assign(OWN, "alice").await;
        let alice = server.token("alice");

        // Raw body with the image's type.
        let image = png(70_000);
        let up = rest
            .call(Method::POST, "/api/media", Some(&alice), Body::Raw("image/png", image.clone()))
            .await;
        let media = up.expect(201);
        let id = media["id"].as_str().unwrap().to_owned();
        assert_eq!(media["contentType"], "image/png");
        assert_eq!(media["sizeBytes"], 70_000);
        assert_eq!(media["state"], "ready");
        assert_eq!(up.header("location"), Some(format!("/api/media/{id}").as_str()));

        // Multipart, as browsers send it; the type is sniffed, not believed.
        let photo = jpeg(20_000);
        let form = reqwest::multipart::Form::new()
            .text("caption", "ignored")
            .part(
                "file",
                reqwest::multipart::Part::bytes(photo.clone())
                    .file_name("cat.png")
                    .mime_str("image/png")
                    .unwrap(),
            );
        let second = rest
            .call(Method::POST, "/api/media", Some(&alice), Body::Form(form))
            .await
            .expect(201);
        assert_eq!(second["contentType"], "image/jpeg");

        // Both download byte for byte.
        for (mid, bytes, ct) in [
            (id.as_str(), &image, "image/png"),
            (second["id"].as_str().unwrap(), &photo, "image/jpeg"),
        ] {
            let got = rest.get(&format!("/api/media/{mid}"), &alice).await;
            assert_eq!(got.status, 200);
            assert_eq!(got.header("content-type"), Some(ct));
            assert_eq!(got.header("cache-control"), Some("no-store"));
            assert_eq!(&got.bytes, bytes);
        }

        let sent = rest
            .post(
                "/api/messages/send-mms",
                &alice,
                json!({"from": OWN, "to": BOB, "body": "look", "mediaIds": [id, second["id"]]}),
            )
            .await
            .expect(200);
        assert_eq!(sent["status"], "queued");
        let listed: Vec<&str> = sent["message"]["media"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, [id.as_str(), second["id"].as_str().unwrap()]);
        assert_eq!(sent["message"]["media"][0]["url"], format!("/api/media/{id}"));

        // External media by URL only (Twilio fetches those itself).
        let by_url = rest
            .post(
                "/api/messages/send-mms",
                &alice,
                json!({"from": OWN, "to": BOB, "mediaUrls": ["https://example.com/cat.gif"]}),
            )
            .await
            .expect(200);
        assert_eq!(by_url["message"]["body"], "");
    }

    async fn read_state_through_the_api(backend: Backend) {
        let (server, _gw, rest) = stack(&backend, &[]).await;
        server.assign(OWN, "alice").await;
        let alice = server.token("alice");
        let first = server.inbound("SMr1", BOB, OWN, "one").await;
        let second = server.inbound("SMr2", BOB, OWN, "two").await;
        server.inbound("SMr3", BOB, OWN, "three").await;
        let contact = first.contact_id.clone();

        let unread = |rest: Rest, alice: String| async move {
            let list = rest.get("/api/messages/conversations", &alice).await.expect(200);
            list["conversations"][0]["unreadCount"].as_u64().unwrap()
        };
        assert_eq!(unread(rest.clone(), alice.clone()).await, 3);

        let read = rest
            .put(&format!("/api/messages/{}/read", first.id), &alice, Body::None)
            .await
            .expect(200);
        assert_eq!(read["id"], first.id.as_str());
        assert_eq!(read["direction"], "inbound");
        assert_eq!((read["from"].as_str(), read["to"].as_str()), (Some(BOB), Some(OWN)));
        let read_at = read["readAt"].as_str().unwrap().to_owned();
        // Idempotent: the first readAt stays.
        let again = rest
            .put(&format!("/api/messages/{}/read", first.id), &alice, Body::None)
            .await
            .expect(200);
        assert_eq!(again["readAt"], read_at.as_str());
        assert_eq!(unread(rest.clone(), alice.clone()).await, 2);

        let path = format!("/api/messages/conversations/{contact}/read");
        let left = rest
            .put(&path, &alice, Body::Json(json!({"upToMessageId": second.id})))
            .await
            .expect(200);
        assert_eq!(left, json!({"contactId": contact, "unreadCount": 1}));
        // No body at all: the whole conversation.
        let left = rest.put(&path, &alice, Body::None).await.expect(200);
        assert_eq!(left["unreadCount"], 0);
        assert_eq!(unread(rest.clone(), alice.clone()).await, 0);
    }

    async fn another_users_data_is_not_found(backend: Backend) {
        let (server, _gw, rest) = stack(&backend, &[]).await;
        server.assign(OWN, "alice").await;
        server.assign(CAROL, "bob").await;
        let (alice, bob) = (server.token("alice"), server.token("bob"));
        let sent = rest
            .post("/api/messages/send", &alice, json!({"from": OWN, "to": BOB, "body": "private"}))
            .await
            .expect(200);
        let contact = sent["message"]["contactId"].as_str().unwrap().to_owned();
        let inbound = server.inbound("SMiso", BOB, OWN, "for alice").await;
        let media = rest
            .call(Method::POST, "/api/media", Some(&alice), Body::Raw("image/png", png(1000)))
            .await
            .expect(201);
        let media_id = media["id"].as_str().unwrap().to_owned();

        let list = rest.get("/api/messages/conversations", &bob).await.expect(200);
        assert_eq!(list["conversations"], json!([]));
        rest.get(&format!("/api/messages/conversations/{contact}"), &bob)
            .await
            .expect_error(404, "not_found", None);
        rest.get(&format!("/api/media/{media_id}"), &bob)
            .await
            .expect_error(404, "not_found", None);
        rest.put(&format!("/api/messages/{}/read", inbound.id), &bob, Body::None)
            .await
            .expect_error(404, "not_found", None);
        rest.put(&format!("/api/messages/conversations/{contact}/read"), &bob, Body::None)
            .await
            .expect_error(404, "not_found", None);
        rest.post(
            "/api/messages/send-mms",
            &bob,
            json!({"from": CAROL, "to": BOB, "mediaIds": [media_id]}),
        )
        .await
        .expect_error(404, "not_found", None);
        rest.post("/api/messages/send", &bob, json!({"from": OWN, "to": BOB, "body": "spoof"}))
            .await
            .expect_error(403, "permission_denied", None);

        // Alice's data is untouched: still unread, still one message each way.
        let conv = rest
            .get(&format!("/api/messages/conversations/{contact}"), &alice)
            .await
            .expect(200);
        assert_eq!(conv["messages"].as_array().unwrap().len(), 2);
        assert!(conv["messages"].as_array().unwrap().iter().all(|m| m["readAt"].is_null()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_next_page_token() {
    let (server, _gw, rest) = stack(&Backend::Sqlite, &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");
    for (i, to) in ["+14155550111", "+14155550112", "+14155550113"]
        .iter()
        .enumerate()
    {
        rest.post(
            "/api/messages/send",
            &alice,
            json!({"from": OWN, "to": to, "body": format!("m{i}")}),
        )
        .await
        .expect(200);
    }
    let first = rest
        .get("/api/messages/conversations?pageSize=2", &alice)
        .await
        .expect(200);
    assert_eq!(first["conversations"].as_array().unwrap().len(), 2);
    let token = first["nextPageToken"].as_str().unwrap();
    let second = rest
        .get(
            &format!(
                "/api/messages/conversations?pageSize=2&pageToken={}",
                urlencode(token)
            ),
            &alice,
        )
        .await
        .expect(200);
    assert_eq!(second["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(second["nextPageToken"], Value::Null);
    // Newest first across the pages.
    assert_eq!(first["conversations"][0]["contactNumber"], "+14155550113");
    assert_eq!(second["conversations"][0]["contactNumber"], "+14155550111");

    // A conversation's messages page the same way.
    for i in 0..3 {
        rest.post(
            "/api/messages/send",
            &alice,
            json!({"from": OWN, "to": BOB, "body": format!("b{i}")}),
        )
        .await
        .expect(200);
    }
    let contact = rest
        .get("/api/messages/conversations?pageSize=1", &alice)
        .await
        .expect(200)["conversations"][0]["contactId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bodies = Vec::new();
    let mut token = String::new();
    loop {
        let page = rest
            .get(
                &format!(
                    "/api/messages/conversations/{contact}?pageSize=2&pageToken={}",
                    urlencode(&token)
                ),
                &alice,
            )
            .await
            .expect(200);
        bodies.extend(
            page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_owned()),
        );
        match page["nextPageToken"].as_str() {
            Some(t) => token = t.to_owned(),
            None => break,
        }
    }
    assert_eq!(bodies, ["b2", "b1", "b0"]);

    rest.get("/api/messages/conversations?pageSize=ten", &alice)
        .await
        .expect_error(400, "invalid_argument", Some("pageSize"));
    rest.get("/api/messages/conversations?pageToken=garbage", &alice)
        .await
        .expect_error(400, "invalid_argument", Some("pageToken"));
}
