//! Bad input: the right code, the field named, nothing written.

use commpro_messaging_api::v1 as pb;
use tonic::Code;

use crate::{backend_tests, helpers::*};

const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";

fn send(from: &str, to: &str, body: &str, key: &str) -> pb::SendSmsRequest {
    pb::SendSmsRequest {
        from: from.into(),
        to: to.into(),
        body: body.into(),
        idempotency_key: key.into(),
        send_at: None,
    }
}

backend_tests! {
    async fn send_sms_refuses_bad_input_and_writes_nothing(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(FROM, "alice").await;
        let mut alice = server.user("alice").await;
        let too_long = "x".repeat(1601);
        let long_key = "k".repeat(129);
        let cases = [
            (send("15005550006", TO, "hi", ""), Code::InvalidArgument, "from:"),
            (send("", TO, "hi", ""), Code::InvalidArgument, "from:"),
            (send(FROM, "+1 415 555 0100", "hi", ""), Code::InvalidArgument, "to:"),
            (send(FROM, "+0123456789", "hi", ""), Code::InvalidArgument, "to:"),
            (send(FROM, FROM, "hi", ""), Code::InvalidArgument, "to:"),
            (send(FROM, TO, "", ""), Code::InvalidArgument, "body:"),
            (send(FROM, TO, &too_long, ""), Code::InvalidArgument, "body:"),
            (send(FROM, TO, "nul\0byte", ""), Code::InvalidArgument, "body:"),
            (send(FROM, TO, "hi", &long_key), Code::InvalidArgument, "idempotency_key:"),
            (send(FROM, TO, "hi", "tab\tkey"), Code::InvalidArgument, "idempotency_key:"),
            (send("+15005550099", TO, "hi", ""), Code::PermissionDenied, "from:"),
        ];
        for (req, code, field) in cases {
            let err = alice.send_req(req).await.unwrap_err();
            assert_eq!(err.code(), code, "{}", err.message());
            assert!(err.message().starts_with(field), "expected {field} in {:?}", err.message());
        }
        assert!(alice.list(100, "").await.unwrap().conversations.is_empty(), "nothing was written");
        server.stop().await;
    }

    async fn unknown_and_missing_ids(backend: Backend) {
        let server = TestServer::start(&backend).await;
        let mut alice = server.user("alice").await;
        let unknown = uuid::Uuid::now_v7().to_string();
        let err = alice.mark_read(&unknown).await.unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "message_id not found"));
        let err = alice.mark_read("").await.unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::InvalidArgument, "message_id: is required"));
        let err = alice.get("", 10, "").await.unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::InvalidArgument, "contact_id: is required"));
        let err = alice.mark_conversation_read("", "").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = alice.mark_conversation_read(&unknown, "").await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        server.stop().await;
    }

    async fn admin_number_rules(backend: Backend) {
        let server = TestServer::start(&backend).await;
        let mut admin = server.admin().await;
        let assign = |n: &str, u: &str| pb::AssignNumberRequest { number: n.into(), user_id: u.into() };

        let a = admin.call(|c, r| Box::pin(c.assign_number(r)), assign(FROM, "alice")).await.unwrap();
        let again = admin.call(|c, r| Box::pin(c.assign_number(r)), assign(FROM, "alice")).await.unwrap();
        assert_eq!(a.created_at, again.created_at, "re-assigning to the owner is a no-op");
        let err = admin.call(|c, r| Box::pin(c.assign_number(r)), assign(FROM, "bob")).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let err = admin.call(|c, r| Box::pin(c.assign_number(r)), assign("555", "bob")).await.unwrap_err();
        assert!(err.code() == Code::InvalidArgument && err.message().starts_with("number:"));
        let err = admin.call(|c, r| Box::pin(c.assign_number(r)), assign(TO, "")).await.unwrap_err();
        assert!(err.code() == Code::InvalidArgument && err.message().starts_with("user_id:"));

        for i in 0..5 {
            admin.call(|c, r| Box::pin(c.assign_number(r)), assign(&format!("+1415555020{i}"), "bob")).await.unwrap();
        }
        let list = |user: &str, token: &str| pb::ListNumbersRequest { user_id: user.into(), page_size: 2, page_token: token.into() };
        let p1 = admin.call(|c, r| Box::pin(c.list_numbers(r)), list("bob", "")).await.unwrap();
        let p2 = admin.call(|c, r| Box::pin(c.list_numbers(r)), list("bob", &p1.next_page_token)).await.unwrap();
        let p3 = admin.call(|c, r| Box::pin(c.list_numbers(r)), list("bob", &p2.next_page_token)).await.unwrap();
        let all: Vec<_> = [p1, p2, p3].into_iter().flat_map(|p| p.numbers).map(|n| n.number).collect();
        assert_eq!(all, ["+14155550200", "+14155550201", "+14155550202", "+14155550203", "+14155550204"]);

        let released = admin
            .call(|c, r| Box::pin(c.release_number(r)), pb::ReleaseNumberRequest { number: FROM.into() })
            .await
            .unwrap();
        assert_eq!(released.released.unwrap().user_id, "alice");
        let err = admin
            .call(|c, r| Box::pin(c.release_number(r)), pb::ReleaseNumberRequest { number: FROM.into() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        // Released numbers can no longer send.
        let err = server.user("alice").await.send(FROM, TO, "hi").await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        server.stop().await;
    }
}
