//! Credentials that end: WatchEvents and the SSE stream end when the token they were
//! opened with expires (the client resumes by cursor with a fresh one, missing
//! nothing); the gateway's own credential in production (its private key, accepted by
//! the core for MessagingIngest only) and the refusal of a given service token that
//! would expire within a day.

use std::{collections::HashMap, time::Duration};

use commpro_messaging_api::v1::{self as pb, EventKind};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use messaging_grpc::auth::JwtIssuer;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tonic::{Code, Streaming};

use crate::{
    backend_tests,
    gateway::{gateway_on, inbound_form},
    helpers::*,
};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures");

fn short_token(user: &str, secs: u64) -> String {
    JwtIssuer::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE)
        .issue(user, &[], Duration::from_secs(secs))
        .unwrap()
}

async fn watch(server: &TestServer, token: &str, since: Option<u64>) -> Streaming<pb::Event> {
    let mut client =
        pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    client
        .watch_events(authed(
            pb::WatchEventsRequest {
                since_cursor: since,
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// Reads until the stream ends; the error it ended with, if any, and the events seen.
async fn until_end(stream: &mut Streaming<pb::Event>) -> (Option<tonic::Status>, Vec<pb::Event>) {
    let mut seen = Vec::new();
    loop {
        let item = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("the stream ends when its token expires");
        match item {
            Some(Ok(e)) => seen.push(e),
            Some(Err(status)) => return (Some(status), seen),
            None => return (None, seen),
        }
    }
}

backend_tests! {
    async fn watch_events_ends_when_its_token_expires_and_resumes_with_a_fresh_one(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut stream = watch(&server, &short_token("alice", 3), None).await;
        let first = server.inbound("SM00000000000000000000000000exp001", BOB, OWN, "one").await;

        let (end, seen) = until_end(&mut stream).await;
        let end = end.expect("an error says why the stream ended");
        assert_eq!(end.code(), Code::Unauthenticated, "{end:?}");
        assert!(end.message().contains("expired"), "{}", end.message());
        let received: Vec<_> = seen.iter().filter(|e| e.kind == EventKind::MessageReceived as i32).collect();
        assert_eq!(received.len(), 1, "the event before expiry was delivered");
        assert_eq!(received[0].message_id, first.id);
        let last = received[0].cursor;

        // Written while the client was away; a fresh token resumes after the cursor.
        let second = server.inbound("SM00000000000000000000000000exp002", BOB, OWN, "two").await;
        let mut resumed = watch(&server, &server.token("alice"), Some(last)).await;
        let next = loop {
            let e = tokio::time::timeout(Duration::from_secs(10), resumed.next()).await.unwrap().unwrap().unwrap();
            if e.kind != EventKind::Keepalive as i32 {
                break e;
            }
        };
        assert_eq!((next.cursor, next.message_id.as_str()), (last + 1, second.id.as_str()), "nothing missed, nothing twice");

        // An already expired token cannot open one at all.
        let mut client = pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
        let expired = encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": get_current_timestamp() - 120}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        let err = client.watch_events(authed(pb::WatchEventsRequest::default(), &expired)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        server.stop().await;
    }
}

/// The REST event stream (SSE through the gateway) ends with the token too, and
/// `Last-Event-ID` with a fresh token picks up exactly what followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sse_stream_ends_when_its_token_expires() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = TestServer::start(&Backend::Sqlite).await;
    let gw = gateway_on(listener, &format!("http://{}", server.addr), &[]).await;
    server.assign(OWN, "alice").await;
    let url = format!("http://{}/api/events", gw.addr);

    let resp = gw
        .http
        .get(&url)
        .bearer_auth(short_token("alice", 3))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = server
        .inbound("SM00000000000000000000000000sse001", BOB, OWN, "one")
        .await;
    // The whole body: it ends by itself when the token expires.
    let text = tokio::time::timeout(Duration::from_secs(30), resp.text())
        .await
        .expect("the SSE stream ends when its token expires")
        .unwrap();
    assert!(text.contains("event: message_received"), "{text}");
    assert!(text.contains(&first.id), "{text}");
    assert!(
        !text.contains("one\n") && !text.contains("\"one\""),
        "no body in events"
    );
    let last: u64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .filter_map(|v| v.trim().parse().ok())
        .max()
        .unwrap();

    let second = server
        .inbound("SM00000000000000000000000000sse002", BOB, OWN, "two")
        .await;
    let mut resumed = gw
        .http
        .get(&url)
        .bearer_auth(server.token("alice"))
        .header("last-event-id", last.to_string())
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    while !buf.contains("event: message_received") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), resumed.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        buf.contains(&format!("id: {}", last + 1)) || buf.contains(&format!("id:{}", last + 1)),
        "{buf}"
    );
    assert!(buf.contains(&second.id), "{buf}");
    server.stop().await;
}

/// Production credentials: users' tokens verified with the auth service's public key
/// (RS256), the gateway signing its own short-lived tokens with an Ed25519 key whose
/// public half the core accepts for MessagingIngest only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_key_signs_webhooks_and_nothing_else() {
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
        ("JWT_ALGORITHM".into(), "RS256".into()),
        (
            "JWT_GATEWAY_PUBLIC_KEY_FILE".into(),
            format!("{FIXTURES}/ed25519-test-public.pem"),
        ),
    ]);
    let server =
        TestServer::start_from_vars(vars, db, dir, None, messaging_grpc::Mode::Serve).await;
    let rsa = EncodingKey::from_rsa_pem(
        &std::fs::read(format!("{FIXTURES}/rsa-test-private.pem")).unwrap(),
    )
    .unwrap();
    let ed = EncodingKey::from_ed_pem(
        &std::fs::read(format!("{FIXTURES}/ed25519-test-private.pem")).unwrap(),
    )
    .unwrap();
    let now = get_current_timestamp();
    let user_token = |sub: &str, roles: &[&str]| {
        encode(
            &Header::new(Algorithm::RS256),
            &json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "roles": roles}),
            &rsa,
        )
        .unwrap()
    };
    let channel = server.channel().await;
    let mut admin = pb::messaging_admin_client::MessagingAdminClient::new(channel.clone());
    admin
        .assign_number(authed(
            pb::AssignNumberRequest {
                number: OWN.into(),
                user_id: "alice".into(),
            },
            &user_token("operator", &["admin"]),
        ))
        .await
        .unwrap();

    // The gateway mints its tokens with the private key: a signed webhook is stored.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let key_file = format!("{FIXTURES}/ed25519-test-private.pem");
    let gw = gateway_on(
        listener,
        &format!("http://{}", server.addr),
        &[("GATEWAY_SERVICE_KEY_FILE", key_file.as_str())],
    )
    .await;
    let (status, _, _) = gw
        .post(
            "/webhook/sms",
            &inbound_form("SM0000000000000000000000000000ce01", BOB, OWN, "via key"),
        )
        .await;
    assert_eq!(status, 200);
    let mut messaging = pb::messaging_service_client::MessagingServiceClient::new(channel.clone());
    let page = messaging
        .list_conversations(authed(
            pb::ListConversationsRequest::default(),
            &user_token("alice", &[]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.conversations.len(), 1, "the webhook was stored");

    // Whatever a token signed with the gateway's key claims, it is only ever the gateway.
    let forged = |sub: &str, roles: &[&str], iss: &str| {
        encode(
            &Header::new(Algorithm::EdDSA),
            &json!({"sub": sub, "iss": iss, "aud": AUDIENCE, "exp": now + 600, "roles": roles}),
            &ed,
        )
        .unwrap()
    };
    for iss in ["webhook-gateway", ISSUER] {
        let err = messaging
            .list_conversations(authed(
                pb::ListConversationsRequest::default(),
                &forged("alice", &[], iss),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::Unauthenticated,
            "a user's API with the gateway key ({iss})"
        );
        let err = admin
            .list_numbers(authed(
                pb::ListNumbersRequest::default(),
                &forged("operator", &["admin"], iss),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::Unauthenticated,
            "the admin API with the gateway key ({iss})"
        );
    }
    server.stop().await;
}

/// A given service token that cannot be renewed must outlive a day, or the gateway
/// does not start (naming the variable).
#[test]
fn a_service_token_expiring_within_a_day_is_refused_at_start_up() {
    let issuer = JwtIssuer::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE);
    let vars = |token: String| {
        HashMap::from([
            (
                "TWILIO_ACCOUNT_SID".to_owned(),
                twilio_fake::ACCOUNT_SID.to_owned(),
            ),
            (
                "TWILIO_AUTH_TOKEN".to_owned(),
                twilio_fake::AUTH_TOKEN.to_owned(),
            ),
            ("GATEWAY_SERVICE_TOKEN".to_owned(), token),
        ])
    };
    let short = vars(
        issuer
            .issue(
                "webhook-gateway",
                &[messaging_grpc::auth::Role::Gateway],
                Duration::from_secs(12 * 3600),
            )
            .unwrap(),
    );
    let Err(err) = webhook_gateway::GatewayConfig::from_vars(&|k| short.get(k).cloned()) else {
        panic!("a token for 12 hours must not start the gateway");
    };
    assert!(err.to_string().contains("GATEWAY_SERVICE_TOKEN"), "{err}");
    let long = vars(
        issuer
            .issue(
                "webhook-gateway",
                &[messaging_grpc::auth::Role::Gateway],
                Duration::from_secs(7 * 24 * 3600),
            )
            .unwrap(),
    );
    assert!(webhook_gateway::GatewayConfig::from_vars(&|k| long.get(k).cloned()).is_ok());
}
