//! SearchMessages over the blind index: folded words and numbers, only in one's own
//! messages, older messages backfilled; the SQLite file holds no word or name in clear.

use super::*;

backend_tests! {
    async fn the_indexer_moves_new_terms_into_the_index_and_search_still_finds_them(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        alice.send(OWN, BOB, "Pizza tonight at eight").await.unwrap();
        server.inbound("SMi1", BOB, OWN, "pizza sounds great").await;
        // Found at once, whether the indexer ran yet or not.
        assert_eq!(search(&mut alice, "pizza", "").await.unwrap().len(), 2);
        let s = &server;
        wait_until("the indexer emptied search_pending", 10, || async move {
            count(s, "SELECT COUNT(*) AS n FROM search_pending").await == 0
        })
        .await;
        assert!(count(&server, "SELECT COUNT(*) AS n FROM search_terms WHERE user_id = 'alice'").await >= 7);
        assert_eq!(bodies(&search(&mut alice, "PIZZA tonight", "").await.unwrap()), ["Pizza tonight at eight"]);
        assert_eq!(search(&mut alice, "pizza", "").await.unwrap().len(), 2);
        server.stop().await;
    }

    async fn search_finds_folded_words_and_numbers_only_in_own_messages(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        server.assign("+15005550007", "bob").await;
        let mut alice = server.user("alice").await;
        let first = alice.send(OWN, BOB, "Crème brûlée at Café Rouge tonight?").await.unwrap();
        let reply = server.inbound("SMs1", BOB, OWN, "The CAFE is closed, sorry").await;
        alice.send(OWN, CAROL, "brulee recipe, as promised").await.unwrap();
        let mut bob = server.user("bob").await;
        bob.send("+15005550007", BOB, "my own creme brulee").await.unwrap();

        assert_eq!(bodies(&search(&mut alice, "creme BRULEE", "").await.unwrap()), ["Crème brûlée at Café Rouge tonight?"]);
        assert_eq!(bodies(&search(&mut alice, "  café ", "").await.unwrap()), ["The CAFE is closed, sorry", "Crème brûlée at Café Rouge tonight?"], "newest first");
        assert_eq!(search(&mut alice, "brûlée", "").await.unwrap().len(), 2);
        assert_eq!(bodies(&search(&mut alice, "brulee", &first.contact_id).await.unwrap()), ["Crème brûlée at Café Rouge tonight?"], "within one conversation");
        assert!(search(&mut alice, "café closed tonight", "").await.unwrap().is_empty(), "every word must match");
        assert!(search(&mut alice, "caf", "").await.unwrap().is_empty(), "whole words");
        // A phone number finds the conversation with it, typed either way.
        for q in [BOB, "(415) 555-0100", "415.555.0100"] {
            let found = search(&mut alice, q, "").await.unwrap();
            assert_eq!(bodies(&found), ["The CAFE is closed, sorry", "Crème brûlée at Café Rouge tonight?"], "{q}");
        }
        // Only the caller's own messages.
        assert_eq!(bodies(&search(&mut bob, "brulee", "").await.unwrap()), ["my own creme brulee"]);
        let found = search(&mut alice, "closed", "").await.unwrap();
        assert_eq!((found[0].id.as_str(), found[0].contact_number.as_str()), (reply.id.as_str(), BOB));

        // Pages.
        let page = call!(alice, search_messages, pb::SearchMessagesRequest { query: "brulee".into(), page_size: 1, ..Default::default() }).unwrap();
        assert_eq!(page.messages.len(), 1);
        let rest = call!(alice, search_messages, pb::SearchMessagesRequest { query: "brulee".into(), page_size: 1, page_token: page.next_page_token.clone(), ..Default::default() }).unwrap();
        assert_eq!(rest.messages.len(), 1);
        assert_ne!(rest.messages[0].id, page.messages[0].id);
        assert!(rest.next_page_token.is_empty());

        // Refusals.
        for q in ["", "   ", "?!…", &"x".repeat(201), "a b c d e f g h i j k"] {
            let err = search(&mut alice, q, "").await.unwrap_err();
            refused(&err, Code::InvalidArgument, Some("query"));
        }
        let err = search(&mut bob, "brulee", &first.contact_id).await.unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "contact_id not found"));
        let err = call!(alice, search_messages, pb::SearchMessagesRequest { query: "x".into(), page_token: "garbage".into(), ..Default::default() }).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("page_token"));

        // Shredding the user's keys makes the index useless: nothing matches any more.
        let store = server.store().await;
        let sql = "UPDATE user_keys SET wrapped_dek = NULL WHERE user_id = 'alice'";
        store.conn().execute_raw(Statement::from_string(store.backend(), sql)).await.unwrap();
        store.close().await.unwrap();
        assert!(search(&mut alice, "brulee", "").await.unwrap().is_empty());
        server.stop().await;
    }

    async fn messages_older_than_the_index_are_backfilled(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        alice.send(OWN, BOB, "an ancient aardvark").await.unwrap();
        server.inbound("SMo1", BOB, OWN, "ancient reply").await;
        // As they would be had they been stored before the index existed.
        // Pending terms first: the indexer may be moving them into search_terms meanwhile.
        exec(&server, "DELETE FROM search_pending").await;
        exec(&server, "DELETE FROM search_terms").await;
        exec(&server, "UPDATE messages SET search_indexed = false").await;
        assert!(search(&mut alice, "ancient", "").await.unwrap().is_empty());

        let server = server.restart(HashMap::new(), |_| {}).await;
        let s = &server;
        wait_until("the backfill indexed both", 10, || async move {
            let mut alice = s.user("alice").await;
            search(&mut alice, "ANCIENT", "").await.unwrap().len() == 2
        })
        .await;
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM messages WHERE NOT search_indexed").await, 0);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_file_holds_no_plaintext_word_or_name() {
    let server = TestServer::start(&Backend::Sqlite).await;
    server.assign(OWN, "alice").await;
    let mut alice = server.user("alice").await;
    let sent = alice
        .send(OWN, BOB, "Zanzibarique quokkafest tomorrow")
        .await
        .unwrap();
    server
        .inbound("SMp1", BOB, OWN, "Xylophonist marmaladequeen")
        .await;
    call!(
        alice,
        set_contact_name,
        pb::SetContactNameRequest {
            contact_id: sent.contact_id.clone(),
            name: "Bartholomew Quixotic".into()
        }
    )
    .unwrap();
    // Indexed and searchable…
    assert_eq!(search(&mut alice, "QUOKKAFEST", "").await.unwrap().len(), 1);
    assert_eq!(
        search(&mut alice, "marmaladequeen", "")
            .await
            .unwrap()
            .len(),
        1
    );
    // …yet no word (folded or not) nor the name is anywhere in the database files.
    let mut scanned = 0;
    for entry in std::fs::read_dir(server.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("m.db")
        {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        scanned += bytes.len();
        for word in [
            "Zanzibarique",
            "zanzibarique",
            "quokkafest",
            "Xylophonist",
            "xylophonist",
            "marmaladequeen",
            "Bartholomew",
            "Quixotic",
        ] {
            assert!(
                !bytes.windows(word.len()).any(|w| w == word.as_bytes()),
                "{word:?} found in clear in {}",
                path.display()
            );
        }
    }
    assert!(scanned > 0);
    server.stop().await;
}
