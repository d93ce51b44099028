//! SendSms idempotency keys.

use commpro_messaging_api::v1 as pb;
use tonic::Code;

use crate::{backend_tests, helpers::*};

const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";

fn req(body: &str, key: &str) -> pb::SendSmsRequest {
    pb::SendSmsRequest {
        from: FROM.into(),
        to: TO.into(),
        body: body.into(),
        idempotency_key: key.into(),
        send_at: None,
    }
}

backend_tests! {
    async fn same_key_returns_the_first_message(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(FROM, "alice").await;
        let mut alice = server.user("alice").await;
        let first = alice.send_req(req("hello", "order-42")).await.unwrap();
        let again = alice.send_req(req("hello", "order-42")).await.unwrap();
        assert_eq!(first.id, again.id);
        assert_eq!(again.body, "hello");

        let page = alice.get(&first.contact_id, 10, "").await.unwrap();
        assert_eq!(page.messages.len(), 1, "stored once");

        // Keys are per user: bob may use the same key for his own message.
        server.assign("+15005550007", "bob").await;
        let mut bob = server.user("bob").await;
        let bobs = bob
            .send_req(pb::SendSmsRequest { from: "+15005550007".into(), ..req("hello", "order-42") })
            .await
            .unwrap();
        assert_ne!(bobs.id, first.id);
        server.stop().await;
    }

    async fn same_key_different_message_is_refused(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(FROM, "alice").await;
        let mut alice = server.user("alice").await;
        let first = alice.send_req(req("hello", "k1")).await.unwrap();
        let err = alice.send_req(req("something else", "k1")).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with("idempotency_key:"), "{}", err.message());
        assert_eq!(alice.get(&first.contact_id, 10, "").await.unwrap().messages.len(), 1);
        server.stop().await;
    }

    async fn concurrent_retries_store_one_message(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(FROM, "alice").await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let mut client = server.user("alice").await;
            tasks.push(tokio::spawn(async move { client.send_req(req("race", "same-key")).await }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap().expect("every retry succeeds").id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "all retries got the first message: {ids:?}");
        server.stop().await;
    }

    async fn no_key_means_no_deduplication(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(FROM, "alice").await;
        let mut alice = server.user("alice").await;
        let a = alice.send(FROM, TO, "same").await.unwrap();
        let b = alice.send(FROM, TO, "same").await.unwrap();
        assert_ne!(a.id, b.id);
        server.stop().await;
    }
}
