//! Per-user caps on long-lived streams, and credentials checked before large bodies,
//! against the real core: a user's WatchEvents streams on the core and `/api/events`
//! streams on the gateway are capped (RESOURCE_EXHAUSTED / 429 naming the setting), and
//! an upload whose token the core refuses is answered 401 on its headers alone.

use std::{collections::HashMap, time::Duration};

use commpro_messaging_api::v1 as pb;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tonic::Code;

use crate::{gateway::gateway_on, helpers::*};

async fn watch(
    server: &TestServer,
    token: &str,
) -> Result<tonic::Streaming<pb::Event>, tonic::Status> {
    let mut client =
        pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    let req = authed(pb::WatchEventsRequest { since_cursor: None }, token);
    Ok(client.watch_events(req).await?.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_watch_streams_are_capped_on_the_core() {
    let server = TestServer::start_with(
        &Backend::Sqlite,
        HashMap::from([("MESSAGING_MAX_WATCH_STREAMS_PER_USER", "2".to_owned())]),
    )
    .await;
    let alice = server.token("alice");
    let first = watch(&server, &alice).await.unwrap();
    let _second = watch(&server, &alice).await.unwrap();
    let refused = watch(&server, &alice).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("MESSAGING_MAX_WATCH_STREAMS_PER_USER"),
        "{refused:?}"
    );
    // Another user is not affected.
    watch(&server, &server.token("bob")).await.unwrap();
    // A stream the client closes gives its place back.
    drop(first);
    wait_until("a closed stream's slot is given back", 10, || async {
        watch(&server, &alice).await.is_ok()
    })
    .await;
    server.stop().await;
}

/// An SSE stream's status, without waiting for its (endless) body.
async fn open_sse(http: &reqwest::Client, base: &str, token: &str) -> reqwest::Response {
    http.get(format!("{base}/api/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_event_streams_are_capped_on_the_gateway() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway_on(
        listener,
        &format!("http://{}", server.addr),
        &[("GATEWAY_MAX_EVENT_STREAMS_PER_USER", "2")],
    )
    .await;
    let base = format!("http://{}", gw.addr);
    let http = reqwest::Client::new();
    let alice = server.token("alice");
    let first = open_sse(&http, &base, &alice).await;
    let second = open_sse(&http, &base, &alice).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = open_sse(&http, &base, &alice).await;
    assert_eq!(third.status(), 429);
    let body: serde_json::Value = third.json().await.unwrap();
    assert_eq!(body["code"], "resource_exhausted", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("GATEWAY_MAX_EVENT_STREAMS_PER_USER"),
        "{body}"
    );
    assert_eq!(
        open_sse(&http, &base, &server.token("bob")).await.status(),
        200
    );
    drop(first);
    wait_until("a closed SSE stream's slot is given back", 10, || async {
        open_sse(&http, &base, &alice).await.status() == 200
    })
    .await;
    drop(second);
    server.stop().await;
}

/// An upload declaring 5 MB, with a well-formed token the core does not accept (signed
/// with another secret), is answered 401 with the core's reason before any of its body
/// is sent: before, the gateway waited for (and buffered) the whole body first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_with_a_refused_token_is_answered_on_its_headers() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway_on(listener, &format!("http://{}", server.addr), &[]).await;
    let forged = messaging_grpc::auth::JwtIssuer::hs256(
        b"another-secret-that-is-at-least-32-bytes",
        "commpro-auth",
        "commpro-messaging",
    )
    .issue("alice", &[], Duration::from_secs(600))
    .unwrap();
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /api/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {forged}\r\n\
         Content-Type: image/png\r\nContent-Length: {}\r\n\r\n",
        5 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("signature"), "the core's reason: {answer}");
    // A good token still uploads (the check lets it through to the handler).
    let png = {
        let mut b = vec![
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
        ];
        b.resize(64 * 1024, 7);
        b
    };
    let resp = reqwest::Client::new()
        .post(format!("http://{}/api/media", gw.addr))
        .bearer_auth(server.token("alice"))
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    server.stop().await;
}
