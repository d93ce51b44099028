//! Production token verification with a public key (EdDSA and RS256), through the
//! real server. The key pairs in `fixtures/` exist only for these tests.

use std::collections::HashMap;

use commpro_messaging_api::v1 as pb;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::json;
use tonic::Code;

use crate::helpers::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures");

fn claims() -> serde_json::Value {
    let now = get_current_timestamp();
    json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600})
}

async fn server_with_public_key(file: &str, alg: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let vars: HashMap<String, String> = HashMap::from([
        (
            "MESSAGING_DATA_DIR".into(),
            dir.path().display().to_string(),
        ),
        ("MESSAGING_MASTER_KEYS".into(), master_keys_spec()),
        ("JWT_PUBLIC_KEY_FILE".into(), format!("{FIXTURES}/{file}")),
        ("JWT_ALGORITHM".into(), alg.into()),
    ]);
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    TestServer::start_from_vars(vars, db, dir, None, messaging_grpc::Mode::Serve).await
}

async fn list(server: &TestServer, token: &str) -> Result<(), tonic::Status> {
    let mut c = pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    c.list_conversations(authed(pb::ListConversationsRequest::default(), token))
        .await
        .map(drop)
}

#[tokio::test]
async fn eddsa_tokens_verify_and_confusion_attacks_fail() {
    let server = server_with_public_key("ed25519-test-public.pem", "EdDSA").await;
    let private = std::fs::read(format!("{FIXTURES}/ed25519-test-private.pem")).unwrap();
    let good = encode(
        &Header::new(Algorithm::EdDSA),
        &claims(),
        &EncodingKey::from_ed_pem(&private).unwrap(),
    )
    .unwrap();
    list(&server, &good)
        .await
        .expect("a token signed with the private key is accepted");

    // Algorithm confusion: HS256 "signed" with the public key as the shared secret.
    let public = std::fs::read(format!("{FIXTURES}/ed25519-test-public.pem")).unwrap();
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    let err = list(&server, &confused).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("algorithm"), "{}", err.message());

    // Signed by another key of the same type.
    let rsa = std::fs::read(format!("{FIXTURES}/rsa-test-private.pem")).unwrap();
    let other = encode(
        &Header::new(Algorithm::RS256),
        &claims(),
        &EncodingKey::from_rsa_pem(&rsa).unwrap(),
    )
    .unwrap();
    assert_eq!(
        list(&server, &other).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    server.stop().await;
}

#[tokio::test]
async fn rs256_tokens_verify() {
    let server = server_with_public_key("rsa-test-public.pem", "RS256").await;
    let rsa = std::fs::read(format!("{FIXTURES}/rsa-test-private.pem")).unwrap();
    let token = encode(
        &Header::new(Algorithm::RS256),
        &claims(),
        &EncodingKey::from_rsa_pem(&rsa).unwrap(),
    )
    .unwrap();
    list(&server, &token).await.expect("RS256 token accepted");
    let ps = encode(
        &Header::new(Algorithm::PS256),
        &claims(),
        &EncodingKey::from_rsa_pem(&rsa).unwrap(),
    )
    .unwrap();
    assert_eq!(
        list(&server, &ps).await.unwrap_err().code(),
        Code::Unauthenticated,
        "exactly one algorithm"
    );
    server.stop().await;
}

#[test]
fn a_bad_public_key_file_fails_at_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    for (file, alg) in [
        (garbage.display().to_string(), "EdDSA"),
        ("/nonexistent.pem".to_owned(), "RS256"),
    ] {
        let vars: HashMap<String, String> = HashMap::from([
            (
                "MESSAGING_DATA_DIR".into(),
                dir.path().display().to_string(),
            ),
            ("MESSAGING_MASTER_KEYS".into(), master_keys_spec()),
            ("JWT_PUBLIC_KEY_FILE".into(), file),
            ("JWT_ALGORITHM".into(), alg.into()),
        ]);
        let Err(err) = messaging_grpc::Config::from_vars(&vars, messaging_grpc::Mode::Serve) else {
            panic!("a bad key must not start");
        };
        assert_eq!(err.var, "JWT_PUBLIC_KEY_FILE", "{err}");
    }
}
