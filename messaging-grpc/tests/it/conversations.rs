//! The main flow: assign → send → list → get → read, on both backends.

use commpro_messaging_api::v1 as pb;

use crate::{backend_tests, helpers::*};

const ALICE_NUMBER: &str = "+15005550006";
const BOB: &str = "+14155550100";

backend_tests! {
    async fn send_list_get_read_flow(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(ALICE_NUMBER, "alice").await;
        let mut alice = server.user("alice").await;

        let sent = alice.send(ALICE_NUMBER, BOB, "Hello from CommPro!").await.unwrap();
        assert_eq!(sent.status, pb::MessageStatus::Queued as i32);
        assert_eq!(sent.direction, pb::Direction::Outbound as i32);
        assert_eq!((sent.owner_number.as_str(), sent.contact_number.as_str()), (ALICE_NUMBER, BOB));
        assert_eq!(sent.body, "Hello from CommPro!");
        assert_eq!(sent.segments, 1);
        assert!(uuid::Uuid::parse_str(&sent.id).unwrap().get_version_num() == 7);
        assert!(sent.created_at.is_some() && sent.read_at.is_none());

        let reply = server.inbound("SM00000000000000000000000000000001", BOB, ALICE_NUMBER, "Hi back ✓").await;
        assert_eq!(reply.contact_id, sent.contact_id, "one contact per number, either direction");

        let list = alice.list(0, "").await.unwrap();
        assert_eq!(list.conversations.len(), 1);
        let conv = &list.conversations[0];
        assert_eq!(conv.contact_id, sent.contact_id);
        assert_eq!(conv.contact_number, BOB);
        assert_eq!(conv.owner_number, ALICE_NUMBER);
        assert_eq!(conv.unread_count, 1);
        let last = conv.last_message.as_ref().unwrap();
        assert_eq!((last.id.as_str(), last.body.as_str()), (reply.id.as_str(), "Hi back ✓"));
        assert!(list.next_page_token.is_empty());

        let page = alice.get(&sent.contact_id, 0, "").await.unwrap();
        assert_eq!(page.contact_number, BOB);
        let bodies: Vec<_> = page.messages.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["Hi back ✓", "Hello from CommPro!"], "newest first, decrypted");
        assert_eq!(page.messages[0].status, pb::MessageStatus::Received as i32);
        assert_eq!(page.messages[0].provider_sid, "SM00000000000000000000000000000001");
        assert!(page.messages.iter().all(|m| m.content_state == pb::ContentState::Available as i32));

        let read = alice.mark_read(&reply.id).await.unwrap();
        assert!(read.read_at.is_some());
        assert_eq!(alice.unread(&sent.contact_id).await, 0);
        server.stop().await;
    }

    async fn contacts_and_conversations_are_per_number(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(ALICE_NUMBER, "alice").await;
        let mut alice = server.user("alice").await;
        let a = alice.send(ALICE_NUMBER, "+14155550101", "one").await.unwrap();
        let b = alice.send(ALICE_NUMBER, "+14155550102", "two").await.unwrap();
        let a2 = alice.send(ALICE_NUMBER, "+14155550101", "three").await.unwrap();
        assert_ne!(a.contact_id, b.contact_id);
        assert_eq!(a.contact_id, a2.contact_id);

        let list = alice.list(10, "").await.unwrap();
        let order: Vec<_> = list.conversations.iter().map(|c| c.contact_id.as_str()).collect();
        assert_eq!(order, [a.contact_id.as_str(), b.contact_id.as_str()], "most recently active first");
        assert_eq!(list.conversations[0].last_message.as_ref().unwrap().body, "three");
        server.stop().await;
    }

    async fn multi_segment_and_unicode_bodies(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(ALICE_NUMBER, "alice").await;
        let mut alice = server.user("alice").await;
        let long = "a".repeat(161);
        assert_eq!(alice.send(ALICE_NUMBER, BOB, &long).await.unwrap().segments, 2);
        let emoji = "😀".repeat(36);
        let sent = alice.send(ALICE_NUMBER, BOB, &emoji).await.unwrap();
        assert_eq!(sent.segments, 2);
        let max = "é".repeat(1600);
        alice.send(ALICE_NUMBER, BOB, &max).await.unwrap();
        let page = alice.get(&sent.contact_id, 10, "").await.unwrap();
        assert_eq!(page.messages[0].body, max);
        assert_eq!(page.messages[1].body, emoji);
        server.stop().await;
    }
}
