//! Token verification: every malformed, forged or misaddressed token is refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use commpro_messaging_api::v1 as pb;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::*;

fn claims() -> Value {
    let now = get_current_timestamp();
    json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600})
}

fn sign(claims: &Value, alg: Algorithm, secret: &str) -> String {
    encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn without(mut c: Value, key: &str) -> Value {
    c.as_object_mut().unwrap().remove(key);
    c
}

fn with(mut c: Value, key: &str, value: Value) -> Value {
    c[key] = value;
    c
}

async fn list_with(server: &TestServer, auth: Option<String>) -> Result<(), tonic::Status> {
    let mut client =
        pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    let mut req = tonic::Request::new(pb::ListConversationsRequest::default());
    if let Some(value) = auth {
        req.metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    client.list_conversations(req).await.map(drop)
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated_with_a_reason() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let now = get_current_timestamp();
    let unsigned_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "missing authorization"),
        (
            "not bearer",
            Some(format!(
                "Basic {}",
                sign(&claims(), Algorithm::HS256, SECRET)
            )),
            "Bearer",
        ),
        ("garbage", Some("Bearer not.a.jwt".into()), "malformed"),
        (
            "forged",
            Some(format!(
                "Bearer {}",
                sign(
                    &claims(),
                    Algorithm::HS256,
                    "another-secret-of-at-least-32-bytes!!"
                )
            )),
            "signature",
        ),
        ("alg none", Some(format!("Bearer {unsigned_none}")), ""),
        (
            "wrong alg",
            Some(format!(
                "Bearer {}",
                sign(&claims(), Algorithm::HS384, SECRET)
            )),
            "algorithm",
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                sign(
                    &with(claims(), "exp", json!(now - 3600)),
                    Algorithm::HS256,
                    SECRET
                )
            )),
            "expired",
        ),
        (
            "not yet valid",
            Some(format!(
                "Bearer {}",
                sign(
                    &with(claims(), "nbf", json!(now + 3600)),
                    Algorithm::HS256,
                    SECRET
                )
            )),
            "nbf",
        ),
        (
            "wrong aud",
            Some(format!(
                "Bearer {}",
                sign(
                    &with(claims(), "aud", json!("other-service")),
                    Algorithm::HS256,
                    SECRET
                )
            )),
            "audience",
        ),
        (
            "wrong iss",
            Some(format!(
                "Bearer {}",
                sign(
                    &with(claims(), "iss", json!("evil")),
                    Algorithm::HS256,
                    SECRET
                )
            )),
            "issuer",
        ),
        (
            "no exp",
            Some(format!(
                "Bearer {}",
                sign(&without(claims(), "exp"), Algorithm::HS256, SECRET)
            )),
            "exp",
        ),
        (
            "no aud",
            Some(format!(
                "Bearer {}",
                sign(&without(claims(), "aud"), Algorithm::HS256, SECRET)
            )),
            "aud",
        ),
        (
            "no iss",
            Some(format!(
                "Bearer {}",
                sign(&without(claims(), "iss"), Algorithm::HS256, SECRET)
            )),
            "iss",
        ),
        (
            "no sub",
            Some(format!(
                "Bearer {}",
                sign(&without(claims(), "sub"), Algorithm::HS256, SECRET)
            )),
            "sub",
        ),
        (
            "empty sub",
            Some(format!(
                "Bearer {}",
                sign(&with(claims(), "sub", json!("")), Algorithm::HS256, SECRET)
            )),
            "sub",
        ),
    ];
    for (name, auth, needle) in cases {
        let err = list_with(&server, auth).await.unwrap_err();
        assert_eq!(
            err.code(),
            Code::Unauthenticated,
            "{name}: {}",
            err.message()
        );
        assert!(
            err.message().contains(needle),
            "{name}: {:?} lacks {needle:?}",
            err.message()
        );
    }
    // The real thing works.
    list_with(
        &server,
        Some(format!(
            "Bearer {}",
            sign(&claims(), Algorithm::HS256, SECRET)
        )),
    )
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn admin_api_requires_the_admin_role() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let mut client = pb::messaging_admin_client::MessagingAdminClient::new(server.channel().await);
    let req = pb::ListNumbersRequest::default();
    let err = client
        .list_numbers(authed(req.clone(), &server.token("alice")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("admin"));
    let gateway = sign(
        &with(claims(), "roles", json!(["gateway"])),
        Algorithm::HS256,
        SECRET,
    );
    assert_eq!(
        client
            .list_numbers(authed(req.clone(), &gateway))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let err = client
        .list_numbers(tonic::Request::new(req.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    client
        .list_numbers(authed(req, &server.admin_token()))
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn assigning_needs_admin_even_for_your_own_user() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let mut client = pb::messaging_admin_client::MessagingAdminClient::new(server.channel().await);
    let req = pb::AssignNumberRequest {
        number: "+15005550006".into(),
        user_id: "alice".into(),
    };
    let err = client
        .assign_number(authed(req, &server.token("alice")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut admin = server.admin().await;
    let list = admin
        .call(
            |c, r| Box::pin(c.list_numbers(r)),
            pb::ListNumbersRequest::default(),
        )
        .await
        .unwrap();
    assert!(list.numbers.is_empty(), "nothing was assigned");
    server.stop().await;
}
