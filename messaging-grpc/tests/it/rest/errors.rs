//! Refusals through the REST API: each bad request names its field, credentials and
//! preconditions map to their statuses, overload and a down core are retryable.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_the_field_named() {
    let (server, _gw, rest) = stack(&Backend::Sqlite, &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");
    let send = |body: Value| rest.post("/api/messages/send", &alice, body);

    send(json!({"from": OWN, "to": "12345", "body": "x"}))
        .await
        .expect_error(400, "invalid_argument", Some("to"));
    send(json!({"from": OWN, "to": BOB}))
        .await
        .expect_error(400, "invalid_argument", Some("body"));
    send(json!({"from": OWN, "to": BOB, "body": "x".repeat(1601)}))
        .await
        .expect_error(400, "invalid_argument", Some("body"));
    let e = send(json!({"from": OWN, "to": 5, "body": "x"}))
        .await
        .expect_error(400, "invalid_argument", Some("to"));
    assert!(
        e["error"].as_str().unwrap().contains("expected a string"),
        "{e}"
    );
    send(json!({"from": OWN, "to": BOB, "body": "x", "idempotency_key": "k"}))
        .await
        .expect_error(400, "invalid_argument", Some("idempotency_key"));
    rest.post(
        "/api/messages/send-mms",
        &alice,
        json!({"from": OWN, "to": BOB, "mediaUrls": ["http://insecure.example/a.png"]}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("mediaUrls"));
    rest.call_with(
        Method::POST,
        "/api/messages/send",
        Some(&alice),
        Body::Json(json!({"from": OWN, "to": BOB, "body": "x", "idempotencyKey": "a"})),
        &[("idempotency-key", "b")],
    )
    .await
    .expect_error(400, "invalid_argument", Some("idempotencyKey"));

    // Not JSON, wrong type, too big, empty.
    let raw = |ct: &'static str, body: &[u8]| {
        rest.call(
            Method::POST,
            "/api/messages/send",
            Some(&alice),
            Body::Raw(ct, body.to_vec()),
        )
    };
    let e =
        raw("application/json", b"{\"from\": ")
            .await
            .expect_error(400, "invalid_argument", None);
    assert!(
        e["error"].as_str().unwrap().contains("not valid JSON"),
        "{e}"
    );
    raw("application/json", b"[1,2]")
        .await
        .expect_error(400, "invalid_argument", None);
    raw("application/json", b"")
        .await
        .expect_error(400, "invalid_argument", None);
    raw("text/plain", b"{}")
        .await
        .expect_error(415, "unsupported_media_type", None);
    raw("application/x-www-form-urlencoded", b"from=x")
        .await
        .expect_error(415, "unsupported_media_type", None);
    let huge =
        serde_json::to_vec(&json!({"from": OWN, "to": BOB, "body": "x".repeat(70_000)})).unwrap();
    raw("application/json", &huge)
        .await
        .expect_error(413, "payload_too_large", None);

    // Uploads: not an image, too big, neither multipart nor image, a form without a file.
    let upload = |ct: &'static str, body: Vec<u8>| {
        rest.call(
            Method::POST,
            "/api/media",
            Some(&alice),
            Body::Raw(ct, body),
        )
    };
    upload("image/png", b"plain text, not an image".to_vec())
        .await
        .expect_error(400, "invalid_argument", Some("file"));
    upload(
        "image/gif",
        b"GIF? no, text with an image's first letters".to_vec(),
    )
    .await
    .expect_error(400, "invalid_argument", Some("file"));
    upload("image/png", png(5 * 1024 * 1024 + 1))
        .await
        .expect_error(413, "payload_too_large", None);
    upload("image/png", Vec::new())
        .await
        .expect_error(400, "invalid_argument", Some("file"));
    upload("text/plain", b"hello".to_vec())
        .await
        .expect_error(415, "unsupported_media_type", None);
    let form = reqwest::multipart::Form::new().text("caption", "no file here");
    rest.call(Method::POST, "/api/media", Some(&alice), Body::Form(form))
        .await
        .expect_error(400, "invalid_argument", Some("file"));

    // Unknown things.
    rest.get(
        "/api/messages/conversations/0193a0c4-7d1e-7f38-9b1a-5d2f0e4c8a11",
        &alice,
    )
    .await
    .expect_error(404, "not_found", None);
    rest.put(
        "/api/messages/0193a0c4-7d1e-7f38-9b1a-5d2f0e4c8a11/read",
        &alice,
        Body::None,
    )
    .await
    .expect_error(404, "not_found", None);
    rest.get("/api/media/0193a0c4-7d1e-7f38-9b1a-5d2f0e4c8a11", &alice)
        .await
        .expect_error(404, "not_found", None);
    // An id that does not decode: the same JSON shape.
    rest.get("/api/messages/conversations/%FF%FE", &alice)
        .await
        .expect_error(400, "invalid_argument", None);
    rest.put("/api/messages/%FF/read", &alice, Body::None)
        .await
        .expect_error(400, "invalid_argument", None);
    rest.get("/api/nothing-here", &alice)
        .await
        .expect_error(404, "not_found", None);
    let wrong = rest
        .call(
            Method::DELETE,
            "/api/messages/send",
            Some(&alice),
            Body::None,
        )
        .await;
    wrong.expect_error(405, "method_not_allowed", None);
    assert_eq!(wrong.header("allow"), Some("POST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_preconditions_map_to_their_statuses() {
    let (server, _gw, rest) = stack(&Backend::Sqlite, &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");

    // No token, a forged one, an expired one: 401 with a Bearer challenge.
    let forged = JwtIssuerFor::other_secret("alice");
    for token in [None, Some("not-a-jwt"), Some(forged.as_str())] {
        let a = rest
            .call(
                Method::POST,
                "/api/messages/send",
                token,
                Body::Json(seed_send()),
            )
            .await;
        a.expect_error(401, "unauthenticated", None);
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    }
    rest.call(Method::GET, "/api/messages/conversations", None, Body::None)
        .await
        .expect_error(401, "unauthenticated", None);

    // A number that is not the caller's: 403.
    rest.post("/api/messages/send", &alice, seed_send())
        .await
        .expect_error(403, "permission_denied", None);

    // A recipient who replied STOP: 409 until they send START.
    server.inbound("SMstop", BOB, OWN, "STOP").await;
    let e = rest
        .post(
            "/api/messages/send",
            &alice,
            json!({"from": OWN, "to": BOB, "body": "hi"}),
        )
        .await
        .expect_error(409, "failed_precondition", None);
    assert!(e["error"].as_str().unwrap().contains("opted out"), "{e}");
    assert!(
        !e["error"].as_str().unwrap().contains(BOB),
        "number not masked: {e}"
    );
}

/// Tokens the core must refuse.
struct JwtIssuerFor;

impl JwtIssuerFor {
    fn other_secret(user: &str) -> String {
        messaging_grpc::auth::JwtIssuer::hs256(
            b"another-secret-that-is-at-least-32-bytes",
            ISSUER,
            AUDIENCE,
        )
        .issue(user, &[], Duration::from_secs(600))
        .unwrap()
    }
}

/// The status of a listing made through a load balancer that appended `xff`.
async fn from(rest: &Rest, token: &str, xff: &str) -> u16 {
    rest.call_with(
        Method::GET,
        "/api/messages/conversations",
        Some(token),
        Body::None,
        &[("x-forwarded-for", xff)],
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_and_a_down_core_are_retryable_answers() {
    let (server, _gw, rest) = stack(&Backend::Sqlite, &[("GATEWAY_RATE_LIMIT_PER_SEC", "1")]).await;
    let alice = server.token("alice");
    // One per second, bursts of two: the third at once is refused.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let a = rest.get("/api/messages/conversations", &alice).await;
        if a.status == 429 {
            a.expect_error(429, "resource_exhausted", None);
            assert_eq!(a.header("retry-after"), Some("1"));
        }
        statuses.push(a.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    // Behind a trusted load balancer each client has its own bucket, whatever it
    // claims further left in X-Forwarded-For.
    let (server, _gw, rest) = stack(
        &Backend::Sqlite,
        &[
            ("GATEWAY_RATE_LIMIT_PER_SEC", "1"),
            ("GATEWAY_TRUSTED_PROXIES", "127.0.0.1, ::1"),
        ],
    )
    .await;
    let alice = server.token("alice");
    let mut first_client = Vec::new();
    for _ in 0..4 {
        first_client.push(from(&rest, &alice, "203.0.113.1").await);
    }
    assert!(first_client.contains(&429), "{first_client:?}");
    // Right after its bucket ran dry: a spoofed leftmost entry does not help it...
    assert_eq!(from(&rest, &alice, "9.9.9.9, 203.0.113.1").await, 429);
    // ...while other clients behind the same balancer are served.
    assert_eq!(from(&rest, &alice, "203.0.113.2").await, 200);
    assert_eq!(from(&rest, &alice, "203.0.113.1, 203.0.113.3").await, 200);

    // A gateway whose core is not there: 503 with Retry-After, in JSON.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gw = gateway_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), &dead, &[]).await;
    let rest = Rest::new(&gw).await;
    let a = rest.post("/api/messages/send", &alice, seed_send()).await;
    a.expect_error(503, "unavailable", None);
    assert_eq!(a.header("retry-after"), Some("1"));
}
