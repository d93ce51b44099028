//! Unread counts and the read horizon.

use tonic::Code;

use crate::{backend_tests, helpers::*};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";

fn sid(i: usize) -> String {
    format!("SM{i:032}")
}

backend_tests! {
    async fn counts_are_exact_and_uncapped(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let mut contact = String::new();
        for i in 0..130 {
            contact = server.inbound(&sid(i), BOB, OWN, &format!("in {i}")).await.contact_id;
        }
        // Outbound messages never count as unread.
        alice.send(OWN, BOB, "reply").await.unwrap();
        assert_eq!(alice.unread(&contact).await, 130);
        assert_eq!(alice.mark_conversation_read(&contact, "").await.unwrap(), 0);
        assert_eq!(alice.unread(&contact).await, 0);
        server.stop().await;
    }

    async fn mark_read_is_idempotent(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let m = server.inbound(&sid(1), BOB, OWN, "hi").await;
        server.inbound(&sid(2), BOB, OWN, "there").await;
        let first = alice.mark_read(&m.id).await.unwrap();
        let again = alice.mark_read(&m.id).await.unwrap();
        assert_eq!(first.read_at, again.read_at, "the first read_at is kept");
        assert_eq!(alice.unread(&m.contact_id).await, 1);
        server.stop().await;
    }

    async fn read_horizon_only_moves_forward(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let msgs: Vec<_> = futures_seq(&server, 6).await;
        let contact = msgs[0].contact_id.clone();

        // Read up to the 4th message: 4 read, 2 left.
        assert_eq!(alice.mark_conversation_read(&contact, &msgs[3].id).await.unwrap(), 2);
        // A late, older horizon changes nothing.
        assert_eq!(alice.mark_conversation_read(&contact, &msgs[1].id).await.unwrap(), 2);
        let page = alice.get(&contact, 10, "").await.unwrap();
        let read: Vec<bool> = page.messages.iter().rev().map(|m| m.read_at.is_some()).collect();
        assert_eq!(read, [true, true, true, true, false, false]);
        // Marking one newer message leaves the one between unread.
        alice.mark_read(&msgs[5].id).await.unwrap();
        assert_eq!(alice.unread(&contact).await, 1);
        assert_eq!(alice.mark_conversation_read(&contact, &msgs[4].id).await.unwrap(), 0);
        server.stop().await;
    }

    async fn horizon_must_be_a_message_of_that_conversation(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let a = server.inbound(&sid(1), BOB, OWN, "a").await;
        let other = server.inbound(&sid(2), "+14155550199", OWN, "b").await;
        let err = alice.mark_conversation_read(&a.contact_id, &other.id).await.unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "up_to_message_id not found"));
        assert_eq!(alice.unread(&a.contact_id).await, 1, "nothing written");
        server.stop().await;
    }

    async fn concurrent_inbound_and_reads_keep_the_count_exact(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let first = server.inbound(&sid(0), BOB, OWN, "first").await;
        let contact = first.contact_id.clone();
        let ingest = server.ingest.clone();
        let writer = tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 1..40 {
                let stored = ingest
                    .record_inbound(messaging_grpc::ingest::InboundSms {
                        message_sid: sid(i),
                        account_sid: twilio_fake::ACCOUNT_SID.into(),
                        from: BOB.into(),
                        to: OWN.into(),
                        body: "x".into(),
                        media: Vec::new(),
                    })
                    .await
                    .unwrap();
                if let messaging_grpc::ingest::Inbound::Stored(v) = stored { ids.push(v.row.id); }
            }
            ids
        });
        let mut alice = server.user("alice").await;
        for _ in 0..15 {
            alice.mark_conversation_read(&contact, "").await.unwrap();
        }
        let ids = writer.await.unwrap();
        // Whatever interleaving happened, the count equals the unread rows.
        let page = alice.get(&contact, 200, "").await.unwrap();
        let unread_rows = page.messages.iter().filter(|m| m.read_at.is_none()).count() as u64;
        assert_eq!(alice.unread(&contact).await, unread_rows);
        assert_eq!(ids.len(), 39);
        server.stop().await;
    }
}

/// `n` inbound messages from BOB, oldest first.
async fn futures_seq(server: &TestServer, n: usize) -> Vec<commpro_messaging_api::v1::Message> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            server
                .inbound(&sid(100 + i), BOB, OWN, &format!("m{i}"))
                .await,
        );
    }
    out
}
