//! WatchEvents: live delivery, resume without gap or duplicate, isolation, lag,
//! retention, and fan-out across two servers on one PostgreSQL database.

use std::{collections::HashMap, time::Duration};

use commpro_messaging_api::v1::{self as pb, EventKind, MessageStatus};
use tokio_stream::StreamExt;
use tonic::{Code, Streaming};

use crate::{backend_tests, helpers::*};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";

async fn watch(
    server: &TestServer,
    user: &str,
    since: Option<u64>,
) -> Result<Streaming<pb::Event>, tonic::Status> {
    let mut client =
        pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    let req = authed(
        pb::WatchEventsRequest {
            since_cursor: since,
        },
        &server.token(user),
    );
    Ok(client.watch_events(req).await?.into_inner())
}

/// The next event that is not a keep-alive.
async fn next(stream: &mut Streaming<pb::Event>) -> pb::Event {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("no error");
        if e.kind != EventKind::Keepalive as i32 {
            return e;
        }
    }
}

fn sid(i: usize) -> String {
    format!("SM{i:032}")
}

backend_tests! {
    async fn each_kind_is_delivered_live(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut stream = watch(&server, "alice", None).await.unwrap();
        let hello = stream.next().await.unwrap().unwrap();
        assert_eq!((hello.kind, hello.cursor), (EventKind::Keepalive as i32, 0), "first: where the stream starts");

        let inbound = server.inbound(&sid(1), BOB, OWN, "hello").await;
        let e = next(&mut stream).await;
        assert_eq!((e.kind, e.cursor), (EventKind::MessageReceived as i32, 1));
        assert_eq!((e.message_id.as_str(), e.contact_id.as_str(), e.unread_count), (inbound.id.as_str(), inbound.contact_id.as_str(), 1));

        let mut alice = server.user("alice").await;
        alice.mark_read(&inbound.id).await.unwrap();
        let e = next(&mut stream).await;
        assert_eq!((e.kind, e.message_id.as_str(), e.unread_count), (EventKind::MessagesRead as i32, inbound.id.as_str(), 0));

        // Sent through the console provider: queued, then sending, sent, delivered.
        let sent = alice.send(OWN, BOB, "reply").await.unwrap();
        let e = next(&mut stream).await;
        assert_eq!((e.kind, e.message_id.as_str()), (EventKind::ConversationUpdated as i32, sent.id.as_str()));
        let mut statuses = Vec::new();
        while statuses.last() != Some(&(MessageStatus::Delivered as i32)) {
            let e = next(&mut stream).await;
            assert_eq!((e.kind, e.message_id.as_str()), (EventKind::MessageStatusChanged as i32, sent.id.as_str()));
            statuses.push(e.status);
        }
        assert_eq!(statuses, [MessageStatus::Sending as i32, MessageStatus::Sent as i32, MessageStatus::Delivered as i32]);

        server.inbound(&sid(2), BOB, OWN, "more").await;
        next(&mut stream).await;
        alice.mark_conversation_read(&inbound.contact_id, "").await.unwrap();
        let e = next(&mut stream).await;
        assert_eq!((e.kind, e.message_id.as_str(), e.unread_count), (EventKind::MessagesRead as i32, "", 0));
        server.stop().await;
    }

    async fn resume_after_disconnect_has_no_gap_and_no_duplicate(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let ingest = server.ingest.clone();
        // Writes keep landing while the client disconnects and reconnects.
        let writer = tokio::spawn(async move {
            for i in 0..120 {
                ingest
                    .record_inbound(messaging_grpc::ingest::InboundSms {
                        message_sid: sid(i),
                        account_sid: twilio_fake::ACCOUNT_SID.into(),
                        from: format!("+1415555{:04}", i % 7),
                        to: OWN.into(),
                        body: "x".into(),
                        media: Vec::new(),
                    })
                    .await
                    .unwrap();
            }
        });
        let mut seen: Vec<u64> = Vec::new();
        let mut last = 0;
        while seen.len() < 120 {
            let mut stream = watch(&server, "alice", Some(last)).await.unwrap();
            // Take a few events, then drop the connection mid-stream.
            for _ in 0..17 {
                if seen.len() == 120 {
                    break;
                }
                let e = next(&mut stream).await;
                seen.push(e.cursor);
                last = e.cursor;
            }
        }
        writer.await.unwrap();
        assert_eq!(seen, (1..=120).collect::<Vec<u64>>(), "every event once, in order, across 8 reconnects");
        server.stop().await;
    }

    async fn another_users_events_never_appear(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        server.assign("+15005550007", "bob").await;
        let mut bobs = watch(&server, "bob", Some(0)).await.unwrap();
        for i in 0..5 {
            server.inbound(&sid(i), BOB, OWN, "for alice").await;
        }
        server.inbound(&sid(99), BOB, "+15005550007", "for bob").await;
        let e = next(&mut bobs).await;
        assert_eq!(e.cursor, 1, "bob's own cursor sequence");
        let page = server.user("bob").await.list(10, "").await.unwrap();
        assert_eq!(e.contact_id, page.conversations[0].contact_id);
        // Nothing else arrives for bob.
        let more = tokio::time::timeout(Duration::from_millis(300), next(&mut bobs)).await;
        assert!(more.is_err(), "bob saw an event that was not his");
        server.stop().await;
    }

    async fn pruning_goes_in_small_batches_of_users(backend: Backend) {
        use messaging_grpc::store::{self, events};
        let server = TestServer::start(&backend).await;
        let st = server.store().await;
        for u in 0..250 {
            let txn = st.begin_write().await.unwrap();
            let e = events::NewEvent { kind: "messages_read", ..Default::default() };
            events::append(&txn, &format!("user-{u}"), e).await.unwrap();
            txn.commit().await.unwrap();
        }
        let later = store::now() + chrono::Duration::seconds(1);
        let mut batches = Vec::new();
        loop {
            let (users, deleted) = events::prune_batch_any(st.conn(), later, 100).await.unwrap();
            batches.push((users, deleted));
            if users == 0 {
                break;
            }
        }
        assert_eq!(batches, [(100, 100), (100, 100), (50, 50), (0, 0)]);
        for u in [0, 99, 100, 249] {
            assert_eq!(events::position(st.conn(), &format!("user-{u}")).await.unwrap(), (1, 1), "user-{u}");
        }
        server.stop().await;
    }

    async fn cursor_older_than_retention_must_resync(backend: Backend) {
        let server = TestServer::start_with(
            &backend,
            HashMap::from([("EVENT_RETENTION_SECS", "1".to_owned()), ("EVENT_PRUNE_INTERVAL_MS", "100".to_owned())]),
        )
        .await;
        server.assign(OWN, "alice").await;
        for i in 0..3 {
            server.inbound(&sid(i), BOB, OWN, "old").await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let store = server.store().await;
        wait_until("pruning", 10, || async {
            messaging_grpc::store::events::position(store.conn(), "alice").await.unwrap().1 == 3
        })
        .await;
        let err = watch(&server, "alice", Some(1)).await.unwrap_err();
        assert_eq!(err.code(), Code::OutOfRange);
        assert!(err.message().starts_with("since_cursor:") && err.message().contains("resync"), "{}", err.message());
        let err = watch(&server, "alice", Some(99)).await.unwrap_err();
        assert_eq!(err.code(), Code::OutOfRange, "a cursor from the future");
        // From the pruned horizon or from now is fine.
        let mut s = watch(&server, "alice", Some(3)).await.unwrap();
        server.inbound(&sid(3), BOB, OWN, "new").await;
        assert_eq!(next(&mut s).await.cursor, 4);
        server.stop().await;
    }
}

/// Pruning is no one user's write (it runs on the first of PostgreSQL's writers): it
/// skips a counter row another writer holds instead of waiting for it (a wait could
/// close a cycle with that writer's batch), leaving that user's events for a later pass.
#[tokio::test]
async fn pruning_skips_a_user_whose_counter_a_writer_holds() {
    use messaging_grpc::store::{self, events};
    use sea_orm::{ConnectionTrait as _, Statement, TransactionTrait as _};
    let Some(backend @ Backend::Postgres(_)) = Backend::postgres() else {
        return;
    };
    let server = TestServer::start(&backend).await;
    let st = server.store().await;
    for u in ["held", "free"] {
        let txn = st.begin_write().await.unwrap();
        let e = events::NewEvent {
            kind: "messages_read",
            ..Default::default()
        };
        events::append(&txn, u, e).await.unwrap();
        txn.commit().await.unwrap();
    }
    let writer = st.conn().begin().await.unwrap();
    writer
        .execute_raw(Statement::from_string(
            st.backend(),
            "SELECT 1 FROM user_event_seq WHERE user_id = 'held' FOR UPDATE",
        ))
        .await
        .unwrap();
    let later = store::now() + chrono::Duration::seconds(1);
    let pruned = tokio::time::timeout(
        Duration::from_secs(3),
        events::prune_batch_any(st.conn(), later, 100),
    )
    .await
    .expect("pruning does not wait for the held counter")
    .unwrap();
    assert_eq!(pruned, (1, 1), "only the free user pruned");
    assert_eq!(events::position(st.conn(), "free").await.unwrap(), (1, 1));
    assert_eq!(
        events::position(st.conn(), "held").await.unwrap(),
        (1, 0),
        "nothing marked pruned"
    );
    writer.rollback().await.unwrap();
    assert_eq!(
        events::prune_batch_any(st.conn(), later, 100)
            .await
            .unwrap(),
        (1, 1)
    );
    assert_eq!(events::position(st.conn(), "held").await.unwrap(), (1, 1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_consumer_catches_up_from_the_table() {
    // A tiny wake-up buffer: a stream that does not read falls behind at once.
    let server = TestServer::start_with(
        &Backend::Sqlite,
        HashMap::from([("EVENT_BROADCAST_CAPACITY", "2".to_owned())]),
    )
    .await;
    server.assign(OWN, "alice").await;
    let mut stream = watch(&server, "alice", None).await.unwrap();
    for i in 0..300 {
        server.inbound(&sid(i), BOB, OWN, "burst").await;
    }
    let mut cursors = Vec::new();
    while cursors.len() < 300 {
        cursors.push(next(&mut stream).await.cursor);
    }
    assert_eq!(cursors, (1..=300).collect::<Vec<u64>>());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_flow_and_shutdown_ends_streams() {
    let server = TestServer::start_with(
        &Backend::Sqlite,
        HashMap::from([("WATCH_KEEPALIVE_MS", "50".to_owned())]),
    )
    .await;
    let mut stream = watch(&server, "alice", None).await.unwrap();
    let mut keepalives = 0;
    while keepalives < 3 {
        let e = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(e.kind, EventKind::Keepalive as i32);
        keepalives += 1;
    }
    let stop = tokio::spawn(server.stop());
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(item) = stream.next().await {
            if item.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the stream ended on shutdown");
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("shutdown did not hang on the stream")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stored_through_one_server_reaches_a_stream_on_another() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let a = TestServer::start(&backend).await;
    let b = a.sibling(|_| {}).await;
    a.assign(OWN, "alice").await;
    let mut on_b = watch(&b, "alice", None).await.unwrap();
    let stored = a.inbound(&sid(1), BOB, OWN, "via server A").await;
    let e = next(&mut on_b).await;
    assert_eq!(
        (e.kind, e.message_id.as_str()),
        (EventKind::MessageReceived as i32, stored.id.as_str())
    );
    // And the other way round, through the gRPC API.
    let mut on_a = watch(&a, "alice", Some(e.cursor)).await.unwrap();
    b.user("alice").await.mark_read(&stored.id).await.unwrap();
    assert_eq!(next(&mut on_a).await.kind, EventKind::MessagesRead as i32);
    b.stop().await;
    a.stop().await;
}
