//! Keyset pagination with opaque tokens.

use std::collections::HashSet;

use tonic::Code;

use crate::{backend_tests, helpers::*};

const FROM: &str = "+15005550006";

backend_tests! {
    async fn conversation_pages_cover_everything_once_newest_first(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(FROM, "alice").await;
        let mut alice = server.user("alice").await;
        let mut sent = Vec::new();
        for i in 0..7 {
            sent.push(alice.send(FROM, "+14155550100", &format!("message {i}")).await.unwrap().id);
        }
        let contact = alice.list(1, "").await.unwrap().conversations[0].contact_id.clone();

        let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
        loop {
            let page = alice.get(&contact, 3, &token).await.unwrap();
            assert!(page.messages.len() <= 3);
            seen.extend(page.messages.into_iter().map(|m| m.id));
            pages += 1;
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(pages, 3);
        sent.reverse();
        assert_eq!(seen, sent, "every message once, newest first");
        server.stop().await;
    }

    async fn conversation_list_pages(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(FROM, "alice").await;
        let mut alice = server.user("alice").await;
        for i in 0..5 {
            alice.send(FROM, &format!("+1415555010{i}"), "hi").await.unwrap();
        }
        let first = alice.list(2, "").await.unwrap();
        let second = alice.list(2, &first.next_page_token).await.unwrap();
        let third = alice.list(2, &second.next_page_token).await.unwrap();
        assert!(third.next_page_token.is_empty());
        let numbers: Vec<_> = [first, second, third]
            .into_iter()
            .flat_map(|p| p.conversations)
            .map(|c| c.contact_number)
            .collect();
        assert_eq!(numbers, ["+14155550104", "+14155550103", "+14155550102", "+14155550101", "+14155550100"]);
        server.stop().await;
    }

    async fn page_size_defaults_and_caps(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(FROM, "alice").await;
        let mut alice = server.user("alice").await;
        let mut contact = String::new();
        for i in 0..205 {
            contact = alice.send(FROM, "+14155550100", &format!("m{i}")).await.unwrap().contact_id;
        }
        let default = alice.get(&contact, 0, "").await.unwrap();
        assert_eq!(default.messages.len(), 50, "default page size");
        let capped = alice.get(&contact, 10_000, "").await.unwrap();
        assert_eq!(capped.messages.len(), 200, "page size is capped, not refused");
        let rest = alice.get(&contact, 10_000, &capped.next_page_token).await.unwrap();
        assert_eq!(rest.messages.len(), 5);
        let ids: HashSet<_> = capped.messages.iter().chain(&rest.messages).map(|m| m.id.clone()).collect();
        assert_eq!(ids.len(), 205);
        server.stop().await;
    }

    async fn malformed_and_foreign_page_tokens_are_invalid_argument(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(FROM, "alice").await;
        let mut alice = server.user("alice").await;
        for i in 0..3 {
            alice.send(FROM, &format!("+1415555010{i}"), "hi").await.unwrap();
        }
        let list_token = alice.list(1, "").await.unwrap().next_page_token;
        let contact = alice.list(1, "").await.unwrap().conversations[0].contact_id.clone();
        for bad in ["garbage!", "AAAAAAAAAAAAAAAAAAAA", list_token.as_str()] {
            let err = alice.get(&contact, 1, bad).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
            assert!(err.message().starts_with("page_token:"), "{}", err.message());
        }
        let err = alice.list(1, "%%%").await.unwrap_err();
        assert_eq!((err.code(), err.message().starts_with("page_token:")), (Code::InvalidArgument, true));
        server.stop().await;
    }
}
