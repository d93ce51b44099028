//! One user never sees, reads or sends as another.

use tonic::Code;

use crate::{backend_tests, helpers::*};

backend_tests! {
    async fn another_users_ids_are_not_found(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign("+15005550006", "alice").await;
        server.assign("+15005550007", "bob").await;
        let mut alice = server.user("alice").await;
        let mut bob = server.user("bob").await;
        let sent = alice.send("+15005550006", "+14155550100", "private").await.unwrap();
        let inbound = server.inbound("SM00000000000000000000000000000009", "+14155550100", "+15005550006", "secret").await;

        assert!(bob.list(100, "").await.unwrap().conversations.is_empty());
        let err = bob.get(&sent.contact_id, 10, "").await.unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "contact_id not found"));
        let err = bob.mark_read(&inbound.id).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = bob.mark_conversation_read(&sent.contact_id, "").await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);

        // The answers are identical to those for ids that do not exist at all.
        let unknown = bob.get(&uuid::Uuid::now_v7().to_string(), 10, "").await.unwrap_err();
        assert_eq!((unknown.code(), unknown.message()), (Code::NotFound, "contact_id not found"));

        let err = bob.send("+15005550006", "+14155550100", "spoof").await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert!(err.message().starts_with("from:") && !err.message().contains("5550006"), "{}", err.message());

        // Alice's state is untouched.
        assert_eq!(alice.unread(&sent.contact_id).await, 1);
        assert_eq!(alice.get(&sent.contact_id, 10, "").await.unwrap().messages.len(), 2);
        server.stop().await;
    }

    async fn same_contact_number_is_separate_per_user(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign("+15005550006", "alice").await;
        server.assign("+15005550007", "bob").await;
        let mut alice = server.user("alice").await;
        let mut bob = server.user("bob").await;
        let a = alice.send("+15005550006", "+14155550100", "from alice").await.unwrap();
        let b = bob.send("+15005550007", "+14155550100", "from bob").await.unwrap();
        assert_ne!(a.contact_id, b.contact_id);
        let page = bob.get(&b.contact_id, 10, "").await.unwrap();
        assert_eq!(page.messages.len(), 1);
        assert_eq!(page.messages[0].body, "from bob");
        server.stop().await;
    }
}
