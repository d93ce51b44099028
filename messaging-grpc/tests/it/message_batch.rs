//! New messages written as a set (`store::message_batch`), on both backends: per-row
//! answers stay exact inside one batch (a taken idempotency key is a conflict for that
//! message alone; messages of one conversation get their own unread counts and
//! consecutive cursors), and when a set statement fails, the batch is written message
//! by message so only the bad one fails. Batches are forced by holding the writer.

use std::time::Duration;

use messaging_grpc::store::{
    self, Store,
    contacts::SealedNumber,
    entities::{media, message},
    message_batch::{MessageOutcome, NewMessage, Refusal},
    now,
    pipeline::SetWrite,
};
use sea_orm::{ConnectionTrait as _, DbErr, Statement};

use crate::helpers::{Backend, PgDatabase};

pub(crate) struct TestStore {
    pub(crate) store: Store,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

pub(crate) async fn open(backend: &Backend) -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display()),
            None,
        ),
        Backend::Postgres(server) => {
            let pg = PgDatabase::create(server).await;
            (pg.url.clone(), Some(pg))
        }
    };
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    TestStore {
        store,
        _dir: dir,
        _pg: pg,
    }
}

/// An inbound message from `contact` (a stand-in sealed number: the store never
/// opens it) to user `user`.
pub(crate) fn inbound(user: &str, contact: &str, key: Option<&str>) -> NewMessage {
    let id = uuid::Uuid::now_v7().to_string();
    let at = now();
    NewMessage {
        row: message::Model {
            id: id.clone(),
            user_id: user.into(),
            contact_id: String::new(),
            direction: "inbound".into(),
            owner_e164: "+15005550006".into(),
            legacy_contact_e164: String::new(),
            body_ct: vec![1, 2, 3],
            key_version: 1,
            status: "received".into(),
            provider_sid: None,
            idempotency_key: key.map(str::to_owned),
            error_code: None,
            error_message: None,
            segments: 1,
            num_media: 0,
            created_at: at,
            updated_at: at,
            sent_at: None,
            delivered_at: None,
            read_at: None,
            send_at: None,
            blocked: false,
            search_indexed: true,
            contact_number_ct: Some(vec![9]),
        },
        new_media: Vec::new(),
        links: Vec::new(),
        unread_delta: 1,
        enqueue: false,
        opt_out: None,
        event_kind: "message_received",
        search_terms: vec![term(contact), term("hello")],
        unarchive: true,
        contact: SealedNumber {
            lookup: vec![contact.as_bytes().to_vec()],
            new_id: uuid::Uuid::now_v7().to_string(),
            ct: vec![7],
            index: contact.as_bytes().to_vec(),
        },
        check_sender: false,
        inherit_block: true,
    }
}

/// A stand-in search term for `word` (terms are 16 bytes, as the crypto layer makes them).
fn term(word: &str) -> Vec<u8> {
    let mut t = word.as_bytes().to_vec();
    t.resize(store::search::TERM_LEN, b'.');
    t
}

/// Terms of these messages in `search_pending` and `search_terms` together.
async fn terms(store: &Store, filter: &str) -> i64 {
    let pending = count(store, &format!(
        "SELECT CAST(COALESCE(SUM(LENGTH(terms)), 0) AS BIGINT) FROM search_pending WHERE {filter}"
    ))
    .await;
    let indexed = count(
        store,
        &format!("SELECT COUNT(*) FROM search_terms WHERE {filter}"),
    )
    .await;
    pending / store::search::TERM_LEN as i64 + indexed
}

/// Writes every message in ONE batch (queued behind a held writer), outcomes in order.
pub(crate) async fn in_one_batch(
    store: &Store,
    writes: Vec<NewMessage>,
) -> Vec<Result<MessageOutcome, DbErr>> {
    in_one_set(store, writes).await
}

/// Writes every one of `writes` (a set kind) in ONE batch, queued in this order behind
/// a held writer (one batch keeps the order it received); outcomes in order.
pub(crate) async fn in_one_set<W: SetWrite>(
    store: &Store,
    writes: Vec<W>,
) -> Vec<Result<W::Outcome, DbErr>> {
    // Every writer the writes take, each held once (a second hold of one writer would
    // queue behind the first).
    let mut lanes = std::collections::BTreeMap::new();
    for w in &writes {
        lanes
            .entry(store.writer_of(w.user_id()))
            .or_insert_with(|| w.user_id().to_owned());
    }
    let mut held = Vec::new();
    for user in lanes.into_values() {
        held.push(crate::pipeline::hold_writer_of(store, &user).await);
    }
    let mut handles = Vec::new();
    for w in writes {
        let s = store.clone();
        handles.push(tokio::spawn(async move { s.write_set(w).await }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (gate, _) in &held {
        gate.add_permits(1);
    }
    for (_, holder) in held {
        holder.await.unwrap();
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

pub(crate) async fn count(store: &Store, sql: &str) -> i64 {
    let row = store
        .conn()
        .query_one_raw(Statement::from_string(store.backend(), sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// A send from `from` of user `user` to `contact`, checked by the writer.
pub(crate) fn send(user: &str, from: &str, contact: &str) -> NewMessage {
    let mut w = inbound(user, contact, None);
    w.row.direction = "outbound".into();
    w.row.status = "queued".into();
    w.row.owner_e164 = from.into();
    w.unread_delta = 0;
    w.enqueue = true;
    w.unarchive = false;
    w.event_kind = "conversation_updated";
    w.check_sender = true;
    w.inherit_block = false;
    w
}

pub(crate) fn committed(outcome: &Result<MessageOutcome, DbErr>) -> (&message::Model, Option<i64>) {
    match outcome {
        Ok(MessageOutcome::Committed { row, cursor, .. }) => (row, *cursor),
        other => panic!("expected a committed write, got {other:?}"),
    }
}

crate::backend_tests! {
    async fn a_taken_key_in_a_batch_is_a_conflict_for_that_message_alone(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let outcomes = in_one_batch(store, vec![
            inbound("u1", "alice", Some("k1")),
            inbound("u1", "alice", Some("k1")),
            inbound("u1", "bob", Some("k2")),
            inbound("u2", "alice", Some("k1")),
        ])
        .await;
        let (first, c1) = committed(&outcomes[0]);
        assert!(matches!(outcomes[1], Ok(MessageOutcome::Conflict)), "{:?}", outcomes[1]);
        let (bob, c2) = committed(&outcomes[2]);
        let (other_user, c3) = committed(&outcomes[3]);
        assert_ne!(first.contact_id, bob.contact_id);
        // Another user's key space and cursors are their own.
        assert_eq!((c1, c2, c3), (Some(1), Some(2), Some(1)));
        assert_ne!(other_user.contact_id, first.contact_id);
        // Nothing of the conflicting message: no row, job, terms or event.
        assert_eq!(count(store, "SELECT COUNT(*) FROM messages").await, 3);
        assert_eq!(terms(store, "TRUE").await, 6);
        assert_eq!(count(store, "SELECT COUNT(*) FROM events").await, 3);
        assert_eq!(count(store, "SELECT COUNT(*) FROM contacts").await, 3);
        assert_eq!(
            count(store, "SELECT CAST(SUM(unread_count) AS BIGINT) FROM conversations WHERE user_id = 'u1'").await,
            2
        );
    }

    async fn messages_of_one_conversation_in_a_batch_count_one_by_one(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let outcomes = in_one_batch(store, vec![
            inbound("u1", "alice", None),
            inbound("u1", "alice", None),
            inbound("u1", "alice", None),
        ])
        .await;
        let rows: Vec<_> = outcomes.iter().map(committed).collect();
        // One contact for the three (created once, by the first), consecutive cursors.
        assert!(rows.iter().all(|(r, _)| r.contact_id == rows[0].0.contact_id));
        assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), [Some(1), Some(2), Some(3)]);
        let unread: Vec<i64> = {
            let sql = "SELECT unread_count FROM events ORDER BY cursor";
            let res = store
                .conn()
                .query_all_raw(Statement::from_string(store.backend(), sql.to_owned()))
                .await
                .unwrap();
            res.iter().map(|r| r.try_get_by_index::<i64>(0).unwrap()).collect()
        };
        assert_eq!(unread, [1, 2, 3], "each event has the count right after its message");
        assert_eq!(count(store, "SELECT unread_count FROM conversations").await, 3);
        // The next batch continues the same conversation and counter.
        let next = in_one_batch(store, vec![inbound("u1", "alice", None)]).await;
        assert_eq!(committed(&next[0]).1, Some(4));
        assert_eq!(count(store, "SELECT unread_count FROM conversations").await, 4);
    }

    async fn a_failing_set_statement_falls_back_to_one_by_one(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        // A media row whose id is taken: the batch's media insert fails as a set.
        let taken = uuid::Uuid::now_v7().to_string();
        let media_row = |id: &str| media::Model {
            id: id.to_owned(),
            user_id: "u1".into(),
            direction: "inbound".into(),
            status: "pending".into(),
            content_type: "image/png".into(),
            size_bytes: 0,
            storage_key: None,
            source_url_ct: None,
            attempts: 0,
            next_attempt_at: now(),
            last_error: None,
            created_at: now(),
        };
        let mut first = inbound("u1", "alice", None);
        first.new_media = vec![media_row(&taken)];
        in_one_batch(store, vec![first]).await[0].as_ref().unwrap();
        let mut bad = inbound("u1", "bob", None);
        bad.new_media = vec![media_row(&taken)];
        let outcomes = in_one_batch(store, vec![
            inbound("u1", "carol", None),
            bad,
            inbound("u1", "dave", None),
        ])
        .await;
        committed(&outcomes[0]);
        assert!(outcomes[1].is_err(), "the bad write fails: {:?}", outcomes[1]);
        committed(&outcomes[2]);
        // Nothing half-written of the bad one: no message, conversation or event.
        assert_eq!(count(store, "SELECT COUNT(*) FROM messages").await, 3);
        assert_eq!(count(store, "SELECT COUNT(*) FROM conversations").await, 3);
        assert_eq!(count(store, "SELECT COUNT(*) FROM events").await, 3);
        assert_eq!(count(store, "SELECT MAX(cursor) FROM events").await, 3, "no gap");
    }

    async fn the_writer_checks_sends_in_the_batch(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let own = "+15005550006";
        store::numbers::assign_any(store.conn(), own, "u1").await.unwrap();
        store::numbers::assign_any(store.conn(), "+15005550007", "u2").await.unwrap();
        // Contacts carol (opted out of `own`) and dave (blocked), made by inbound messages.
        let first = in_one_batch(store, vec![
            inbound("u1", "carol", None),
            inbound("u1", "dave", None),
        ])
        .await;
        let carol = committed(&first[0]).0.contact_id.clone();
        let dave = committed(&first[1]).0.contact_id.clone();
        store::opt_outs::set(store.conn(), "u1", own, &carol, true).await.unwrap();
        store::contacts::set_blocked(store.conn(), "u1", &dave, Some(now())).await.unwrap();
        let outcomes = in_one_batch(store, vec![
            send("u1", "+15005550007", "erin"),
            send("u1", own, "erin"),
            send("u1", own, "carol"),
            send("u1", own, "dave"),
            inbound("u1", "dave", None),
        ])
        .await;
        assert!(matches!(outcomes[0], Ok(MessageOutcome::Refused(Refusal::NotOwner))), "{:?}", outcomes[0]);
        let (sent, cursor) = committed(&outcomes[1]);
        assert_eq!(sent.status, "queued");
        assert!(cursor.is_some());
        assert!(matches!(outcomes[2], Ok(MessageOutcome::Refused(Refusal::OptedOut))), "{:?}", outcomes[2]);
        assert!(matches!(outcomes[3], Ok(MessageOutcome::Refused(Refusal::Blocked))), "{:?}", outcomes[3]);
        // From a blocked number: kept, but not shown, counted, indexed or announced.
        let (kept, cursor) = committed(&outcomes[4]);
        assert!(kept.blocked && cursor.is_none(), "{kept:?}");
        // Refused sends left nothing: one new message and job, erin's contact only.
        assert_eq!(count(store, "SELECT COUNT(*) FROM messages").await, 4);
        assert_eq!(count(store, "SELECT COUNT(*) FROM outbox").await, 1);
        assert_eq!(count(store, "SELECT COUNT(*) FROM contacts").await, 3);
        assert_eq!(terms(store, &format!("message_id = '{}'", kept.id)).await, 0);
        assert_eq!(count(store, "SELECT COUNT(*) FROM events").await, 3);
    }

    async fn pending_terms_are_found_then_moved_into_the_index(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        let mut pizza = inbound("u1", "alice", None);
        pizza.search_terms = vec![term("pizza"), term("tonight")];
        let mut other = inbound("u2", "alice", None);
        other.search_terms = vec![term("pizza")];
        let outcomes = in_one_batch(store, vec![pizza, other, inbound("u1", "bob", None)]).await;
        let (first, _) = committed(&outcomes[0]);
        let (bobs, _) = committed(&outcomes[2]);
        let find = |words: Vec<Vec<Vec<u8>>>| async move {
            let q = store::search::SearchQuery {
                user_id: "u1",
                words: &words,
                contact_ids: &[],
                within: None,
                after: None,
                limit: 10,
            };
            let rows = store::search::search(store.conn(), q).await.unwrap();
            rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
        };
        // Committed, not indexed yet: found through its pending row, every word needed,
        // any of a word's alternatives (key versions) enough, another user's not.
        assert_eq!(count(store, "SELECT COUNT(*) FROM search_terms").await, 0);
        assert_eq!(find(vec![vec![term("pizza")], vec![term("tonight")]]).await, std::slice::from_ref(&first.id));
        assert_eq!(find(vec![vec![term("old"), term("tonight")]]).await, std::slice::from_ref(&first.id));
        assert!(find(vec![vec![term("pizza")], vec![term("never")]]).await.is_empty());
        // Moved in one write, oldest first, up to the limit; the rest on the next pass.
        let moved = store.write(|txn| Box::pin(store::search::index_pending(txn, 2))).await.unwrap();
        assert_eq!(moved, 2);
        assert_eq!(count(store, "SELECT COUNT(*) FROM search_pending").await, 1);
        let moved = store.write(|txn| Box::pin(store::search::index_pending(txn, 2))).await.unwrap();
        assert_eq!(moved, 1);
        assert_eq!(count(store, "SELECT COUNT(*) FROM search_pending").await, 0);
        assert_eq!(count(store, "SELECT COUNT(*) FROM search_terms").await, 5);
        assert_eq!(find(vec![vec![term("pizza")], vec![term("tonight")]]).await, std::slice::from_ref(&first.id));
        assert_eq!(find(vec![vec![term("hello")]]).await, std::slice::from_ref(&bobs.id));
        let moved = store.write(|txn| Box::pin(store::search::index_pending(txn, 2))).await.unwrap();
        assert_eq!(moved, 0);
        // A deleted message leaves no term in either table.
        let mut late = inbound("u1", "carol", None);
        late.search_terms = vec![term("late")];
        let late = committed(&in_one_batch(store, vec![late]).await[0]).0.clone();
        let ids = vec![late.id.clone(), bobs.id.clone()];
        store
            .write(move |txn| Box::pin(async move { store::search::delete_for(txn, "u1", ids).await }))
            .await
            .unwrap();
        assert_eq!(terms(store, &format!("message_id IN ('{}', '{}')", late.id, bobs.id)).await, 0);
        assert_eq!(terms(store, "TRUE").await, 3);
    }

    async fn a_message_deleted_while_the_indexer_runs_leaves_no_terms(backend: Backend) {
        // SQLite has one writer at a time: the indexer and a delete cannot overlap there.
        if matches!(backend, Backend::Sqlite) {
            return;
        }
        use sea_orm::TransactionTrait as _;
        let t = open(&backend).await;
        let store = &t.store;
        let mut doomed = inbound("u1", "alice", None);
        doomed.search_terms = vec![term("doomed")];
        let mut kept = inbound("u1", "bob", None);
        kept.search_terms = vec![term("kept")];
        let outcomes = in_one_batch(store, vec![doomed, kept]).await;
        let doomed = committed(&outcomes[0]).0.id.clone();
        // A delete holds the doomed message's pending row while the indexer runs.
        let txn = store.conn().begin().await.unwrap();
        store::search::delete_for(&txn, "u1", vec![doomed.clone()]).await.unwrap();
        let moved = tokio::time::timeout(
            Duration::from_secs(3),
            store.write(|txn| Box::pin(store::search::index_pending(txn, 10))),
        )
        .await
        .expect("the indexer skips a row a delete holds instead of waiting for it")
        .unwrap();
        assert_eq!(moved, 1, "the other message moved");
        txn.commit().await.unwrap();
        assert_eq!(terms(store, &format!("message_id = '{doomed}'")).await, 0);
        assert_eq!(terms(store, "TRUE").await, 1);
    }
}
