//! Contact numbers at rest: sealed in the database (no digits in clear after sends,
//! inbound messages and blocks), still found by number on both backends (across a
//! user key rotation too), unreadable after ShredUser, and rows stored in clear by
//! the previous version sealed at start-up.

use std::collections::HashMap;

use commpro_messaging_api::v1 as pb;
use messaging_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};

use crate::{backend_tests, helpers::*};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";
const CAROL: &str = "+14155550101";
const DAVE: &str = "+442071838750";

/// Calls one MessagingService RPC as `user`.
macro_rules! call {
    ($client:expr, $rpc:ident, $req:expr) => {{
        let c: &mut UserClient = &mut $client;
        c.client
            .$rpc(authed($req, &c.token))
            .await
            .map(|r| r.into_inner())
    }};
}

/// The digits of a number, which is what a leak would show (with or without `+`).
fn digits(number: &str) -> &str {
    number.trim_start_matches('+')
}

/// Every file of the SQLite database (main file, WAL, shared memory), as bytes.
fn database_files(server: &TestServer) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(server.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("m.db"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[track_caller]
fn assert_absent(files: &[(String, Vec<u8>)], numbers: &[&str]) {
    assert!(
        files.iter().map(|(_, b)| b.len()).sum::<usize>() > 0,
        "nothing scanned"
    );
    for (path, bytes) in files {
        for n in numbers {
            let d = digits(n).as_bytes();
            assert!(
                !bytes.windows(d.len()).any(|w| w == d),
                "{n} found in clear in {path}"
            );
        }
    }
}

async fn blocked_numbers(c: &mut UserClient) -> Vec<String> {
    call!(
        *c,
        list_blocked_numbers,
        pb::ListBlockedNumbersRequest::default()
    )
    .unwrap()
    .blocked_numbers
    .into_iter()
    .map(|b| b.number)
    .collect()
}

async fn search(c: &mut UserClient, query: &str) -> Vec<pb::Message> {
    call!(
        *c,
        search_messages,
        pb::SearchMessagesRequest {
            query: query.into(),
            ..Default::default()
        }
    )
    .unwrap()
    .messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_holds_no_plaintext_contact_number() {
    let server = TestServer::start(&Backend::Sqlite).await;
    server.assign(OWN, "alice").await;
    let mut alice = server.user("alice").await;
    let sent = alice.send(OWN, BOB, "hello bob").await.unwrap();
    server
        .inbound("SM00000000000000000000000000000001", CAROL, OWN, "hi alice")
        .await;
    call!(
        alice,
        block_number,
        pb::BlockNumberRequest {
            number: DAVE.into()
        }
    )
    .unwrap();
    server
        .inbound("SM00000000000000000000000000000002", DAVE, OWN, "let me in")
        .await;
    // Handed to the (console) provider: the dispatcher opened the number to send.
    alice.wait_status(&sent, pb::MessageStatus::Sent, 10).await;

    // Everything still reads back with its number.
    let list = alice.list(10, "").await.unwrap();
    let mut shown: Vec<&str> = list
        .conversations
        .iter()
        .map(|c| c.contact_number.as_str())
        .collect();
    shown.sort_unstable();
    assert_eq!(
        shown,
        [BOB, CAROL],
        "the blocked number's message is not in conversations"
    );
    let page = alice.get(&sent.contact_id, 10, "").await.unwrap();
    assert_eq!(page.contact_number, BOB);
    assert_eq!(page.messages[0].contact_number, BOB);
    assert_eq!(blocked_numbers(&mut alice).await, [DAVE]);

    assert_absent(&database_files(&server), &[BOB, CAROL, DAVE]);
    // Our own number is not personal data: it stays in clear (and proves the scan reads).
    let own = database_files(&server);
    assert!(
        own.iter()
            .any(|(_, b)| b.windows(11).any(|w| w == digits(OWN).as_bytes()))
    );
    server.stop().await;
}

backend_tests! {
    async fn numbers_are_found_by_their_blind_index_across_key_versions(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let first = alice.send(OWN, BOB, "before rotation").await.unwrap();

        // A new key version: new contacts are indexed under it, old ones still match.
        let mut admin = server.admin().await;
        let rotated = admin.call(|c, r| Box::pin(c.rotate_user_key(r)),
            pb::RotateUserKeyRequest { user_id: "alice".into() }).await.unwrap();
        assert_eq!(rotated.key_version, 2);
        let second = alice.send(OWN, BOB, "after rotation").await.unwrap();
        assert_eq!(second.contact_id, first.contact_id, "the same contact, found by number");
        let inbound = server.inbound("SM00000000000000000000000000000003", BOB, OWN, "pizza tonight").await;
        assert_eq!(inbound.contact_id, first.contact_id, "inbound routed to the same contact");
        let carol = alice.send(OWN, CAROL, "new contact").await.unwrap();
        assert_ne!(carol.contact_id, first.contact_id);
        assert_eq!(alice.list(10, "").await.unwrap().conversations.len(), 2);

        // Search by number: exact (index) and without the country code (opened).
        for q in [BOB, "415 555 0100", "(415) 555-0100"] {
            let found = search(&mut alice, q).await;
            assert_eq!(found.len(), 3, "{q}");
            assert!(found.iter().all(|m| m.contact_number == BOB));
        }
        assert!(search(&mut alice, "+14155550199").await.is_empty());

        // Block and unblock by number, under either key version's index.
        call!(alice, block_number, pb::BlockNumberRequest { number: BOB.into() }).unwrap();
        let err = alice.send(OWN, BOB, "refused").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
        assert_eq!(blocked_numbers(&mut alice).await, [BOB]);
        let done = call!(alice, unblock_number, pb::UnblockNumberRequest { number: BOB.into() }).unwrap();
        assert_eq!((done.number.as_str(), done.contact_id.as_str()), (BOB, first.contact_id.as_str()));
        alice.send(OWN, BOB, "allowed again").await.unwrap();

        // Another user's index of the same number is another value: no shared contact.
        server.assign("+15005550007", "bob-the-user").await;
        let mut other = server.user("bob-the-user").await;
        let theirs = other.send("+15005550007", BOB, "hi").await.unwrap();
        assert_ne!(theirs.contact_id, first.contact_id);

        // Nothing in clear in the columns the previous version used.
        let db = server.store().await;
        for sql in ["SELECT COUNT(*) AS n FROM contacts WHERE e164 <> '' OR number_ct IS NULL OR number_index IS NULL",
                    "SELECT COUNT(*) AS n FROM messages WHERE contact_e164 <> '' OR contact_number_ct IS NULL"] {
            let row = db.conn().query_one_raw(Statement::from_string(db.backend(), sql)).await.unwrap().unwrap();
            assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0, "{sql}");
        }
        server.stop().await;
    }

    async fn shredding_leaves_contact_numbers_unreadable(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let sent = alice.send(OWN, BOB, "hello").await.unwrap();
        call!(alice, block_number, pb::BlockNumberRequest { number: CAROL.into() }).unwrap();
        let mut admin = server.admin().await;
        admin.call(|c, r| Box::pin(c.shred_user(r)), pb::ShredUserRequest {
            user_id: "alice".into(), confirm_user_id: "alice".into() }).await.unwrap();

        let list = alice.list(10, "").await.unwrap();
        assert_eq!(list.conversations.len(), 1);
        assert_eq!(list.conversations[0].contact_number, "", "the number went with the keys");
        let page = alice.get(&sent.contact_id, 10, "").await.unwrap();
        assert_eq!(page.contact_number, "");
        assert!(page.messages.iter().all(|m| m.contact_number.is_empty()));
        assert_eq!(blocked_numbers(&mut alice).await, [""]);
        assert!(search(&mut alice, BOB).await.is_empty(), "no index of hers can be computed");

        // With a new key the same number is a stranger: the old contact cannot be found.
        admin.call(|c, r| Box::pin(c.rotate_user_key(r)),
            pb::RotateUserKeyRequest { user_id: "alice".into() }).await.unwrap();
        let again = call!(alice, block_number, pb::BlockNumberRequest { number: BOB.into() }).unwrap();
        assert_ne!(again.contact_id, sent.contact_id);
        assert_eq!(again.number, BOB);
        server.stop().await;
    }

    async fn numbers_stored_in_clear_are_sealed_at_start_up(backend: Backend) {
        let mut server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let to_bob = alice.send(OWN, BOB, "to bob").await.unwrap();
        let from_carol = server.inbound("SM00000000000000000000000000000004", CAROL, OWN, "from carol").await;
        call!(alice, block_number, pb::BlockNumberRequest { number: DAVE.into() }).unwrap();
        server.halt().await;

        // The previous version's layout and rows: numbers in clear, no sealed columns.
        let db = server.store().await;
        let exec = |sql: String| {
            let db = &db;
            async move { db.conn().execute_raw(Statement::from_string(db.backend(), sql)).await.unwrap() }
        };
        exec("UPDATE contacts SET e164 = id".into()).await;
        for (contact_id, number) in [(&to_bob.contact_id, BOB), (&from_carol.contact_id, CAROL)] {
            exec(format!("UPDATE contacts SET e164 = '{number}' WHERE id = '{contact_id}'")).await;
            exec(format!("UPDATE messages SET contact_e164 = '{number}' WHERE contact_id = '{contact_id}'")).await;
        }
        exec(format!("UPDATE contacts SET e164 = '{DAVE}' WHERE blocked_at IS NOT NULL")).await;
        // Down to before the sealing migration (and every one after it).
        let names: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
        let sealing = names.iter().position(|n| n.contains("sealed_contact_numbers")).unwrap();
        Migrator::down(db.conn(), Some((names.len() - sealing) as u32)).await.unwrap();
        let columns = match backend {
            Backend::Sqlite => "SELECT COUNT(*) AS n FROM pragma_table_info('contacts') WHERE name = 'number_ct'",
            Backend::Postgres(_) => "SELECT COUNT(*) AS n FROM information_schema.columns WHERE table_name = 'contacts' AND column_name = 'number_ct'",
        };
        let row = db.conn().query_one_raw(Statement::from_string(db.backend(), columns)).await.unwrap().unwrap();
        assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0, "the old layout");
        db.close().await.unwrap();

        // Start-up: migrations, then every number sealed before serving.
        let server = server.restart(HashMap::new(), |_| {}).await;
        let db = server.store().await;
        let sealed_sql = "SELECT id, number_ct FROM contacts ORDER BY id";
        let sealed = |db: sea_orm::DatabaseConnection| async move {
            let backend = db.get_database_backend();
            db.query_all_raw(Statement::from_string(backend, sealed_sql)).await.unwrap()
                .iter().map(|r| r.try_get::<Option<Vec<u8>>>("", "number_ct").unwrap().expect("sealed"))
                .collect::<Vec<_>>()
        };
        let first = sealed(db.conn().clone()).await;
        assert_eq!(first.len(), 3);
        for sql in ["SELECT COUNT(*) AS n FROM contacts WHERE e164 <> ''",
                    "SELECT COUNT(*) AS n FROM messages WHERE contact_e164 <> '' OR contact_number_ct IS NULL"] {
            let row = db.conn().query_one_raw(Statement::from_string(db.backend(), sql)).await.unwrap().unwrap();
            assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0, "{sql}");
        }
        if matches!(backend, Backend::Sqlite) {
            assert_absent(&database_files(&server), &[BOB, CAROL, DAVE]);
        }

        // Reads and lookups work on the converted rows.
        let mut alice = server.user("alice").await;
        let page = alice.get(&to_bob.contact_id, 10, "").await.unwrap();
        assert_eq!((page.contact_number.as_str(), page.messages[0].contact_number.as_str()), (BOB, BOB));
        let again = alice.send(OWN, BOB, "after the upgrade").await.unwrap();
        assert_eq!(again.contact_id, to_bob.contact_id, "found by the new index");
        let reply = server.inbound("SM00000000000000000000000000000005", CAROL, OWN, "still me").await;
        assert_eq!(reply.contact_id, from_carol.contact_id);
        assert_eq!(blocked_numbers(&mut alice).await, [DAVE]);
        let err = alice.send(OWN, DAVE, "blocked still").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);

        // Idempotent: another start seals nothing again.
        let server = server.restart(HashMap::new(), |_| {}).await;
        assert_eq!(sealed(server.store().await.conn().clone()).await, first);
        server.stop().await;
    }
}
