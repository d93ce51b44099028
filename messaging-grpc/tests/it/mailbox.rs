//! The mailbox over gRPC, on SQLite and PostgreSQL: scheduled sends (sent once at
//! their time, across a restart, canceled before but not during), search over the
//! blind index, archive, mute, block, delete and contact names, with every refusal.

use std::{collections::HashMap, time::Duration};

use chrono::Utc;
use commpro_messaging_api::v1::{self as pb, EventKind, MessageStatus};
use sea_orm::{ConnectionTrait, Statement};
use tokio_stream::StreamExt;
use tonic::{Code, Streaming};
use tonic_types::StatusExt;
use twilio_fake::{FakeTwilio, Scripted};

use crate::{backend_tests, helpers::*};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";
const CAROL: &str = "+14155550101";

fn ts(t: chrono::DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn in_secs(secs: i64) -> prost_types::Timestamp {
    ts(Utc::now() + chrono::Duration::seconds(secs))
}

fn sms_at(to: &str, body: &str, send_at: Option<prost_types::Timestamp>) -> pb::SendSmsRequest {
    pb::SendSmsRequest {
        from: OWN.into(),
        to: to.into(),
        body: body.into(),
        idempotency_key: String::new(),
        send_at,
    }
}

/// The field a refusal names (google.rpc.BadRequest), and its code.
#[track_caller]
fn refused(status: &tonic::Status, code: Code, field: Option<&str>) {
    assert_eq!(status.code(), code, "{}", status.message());
    let named = status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()));
    assert_eq!(named.as_deref(), field, "{}", status.message());
}

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

async fn search(
    c: &mut UserClient,
    query: &str,
    contact_id: &str,
) -> Result<Vec<pb::Message>, tonic::Status> {
    call!(
        *c,
        search_messages,
        pb::SearchMessagesRequest {
            query: query.into(),
            contact_id: contact_id.into(),
            page_size: 0,
            page_token: String::new(),
        }
    )
    .map(|r| r.messages)
}

fn bodies(messages: &[pb::Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

async fn list(c: &mut UserClient, archived: bool) -> Vec<pb::Conversation> {
    call!(
        *c,
        list_conversations,
        pb::ListConversationsRequest {
            page_size: 100,
            page_token: String::new(),
            archived,
        }
    )
    .unwrap()
    .conversations
}

async fn watch(server: &TestServer, user: &str) -> Streaming<pb::Event> {
    let mut client =
        pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    let req = authed(
        pb::WatchEventsRequest { since_cursor: None },
        &server.token(user),
    );
    let mut stream = client.watch_events(req).await.unwrap().into_inner();
    let hello = stream.next().await.unwrap().unwrap();
    assert_eq!(hello.kind, EventKind::Keepalive as i32);
    stream
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

/// The next event that is not a keep-alive nor a delivery status change (the console
/// provider keeps reporting those for earlier sends).
async fn next_change(stream: &mut Streaming<pb::Event>) -> pb::Event {
    loop {
        let e = next(stream).await;
        if e.kind != EventKind::MessageStatusChanged as i32 {
            return e;
        }
    }
}

/// Events until (and including) the first of `kind`.
async fn until(stream: &mut Streaming<pb::Event>, kind: EventKind) -> (pb::Event, Vec<pb::Event>) {
    let mut before = Vec::new();
    loop {
        let e = next(stream).await;
        if e.kind == kind as i32 {
            return (e, before);
        }
        before.push(e);
    }
}

async fn count(server: &TestServer, sql: &str) -> i64 {
    let store = server.store().await;
    let backend = store.backend();
    let row = store
        .conn()
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    store.close().await.unwrap();
    n
}

async fn exec(server: &TestServer, sql: &str) {
    let store = server.store().await;
    let backend = store.backend();
    store
        .conn()
        .execute_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap();
    store.close().await.unwrap();
}

async fn with_fake(backend: &Backend, extra: &[(&'static str, &str)]) -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start().await.unwrap();
    let mut vars = twilio_vars(&fake);
    vars.insert("SCHEDULE_MIN_LEAD_SECS", "1".into());
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let server = TestServer::start_with(backend, vars).await;
    server.assign(OWN, "alice").await;
    (fake, server)
}

fn sent_to(fake: &FakeTwilio, body: &str) -> usize {
    fake.messages().iter().filter(|m| m.body == body).count()
}

backend_tests! {
    async fn a_scheduled_message_is_sent_once_at_its_time(backend: Backend) {
        // A validity of 1 s: the window opens at send_at, not when the message was written.
        let (fake, server) = with_fake(&backend, &[("MESSAGE_VALIDITY_SECS", "1")]).await;
        let mut alice = server.user("alice").await;
        let mut events = watch(&server, "alice").await;
        let scheduled_at = std::time::Instant::now();
        let send_at = in_secs(2);
        let m = alice.send_req(sms_at(BOB, "at two", Some(send_at))).await.unwrap();
        assert_eq!(m.status, MessageStatus::Scheduled as i32);
        assert_eq!(m.send_at.as_ref().map(|t| t.seconds), Some(send_at.seconds));
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.status), (EventKind::ConversationUpdated as i32, MessageStatus::Scheduled as i32));

        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(sent_to(&fake, "at two"), 0, "not before its time");
        assert_eq!(alice.message(&m.contact_id, &m.id).await.status, MessageStatus::Scheduled as i32);

        let sent = alice.wait_status(&m, MessageStatus::Sent, 10).await;
        assert_eq!(sent_to(&fake, "at two"), 1);
        let post = fake.create_requests().into_iter().find(|r| r.field("Body") == Some("at two")).unwrap();
        assert!(post.at.duration_since(scheduled_at) >= Duration::from_millis(1500), "sent at its time");
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.status), (EventKind::MessageStatusChanged as i32, MessageStatus::Queued as i32));
        assert_eq!(sent.send_at.map(|t| t.seconds), Some(send_at.seconds));

        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(sent_to(&fake, "at two"), 1, "sent once");
        server.stop().await;
    }

    async fn a_scheduled_message_survives_a_restart(backend: Backend) {
        let (fake, server) = with_fake(&backend, &[]).await;
        let mut alice = server.user("alice").await;
        let m = alice.send_req(sms_at(BOB, "after the restart", Some(in_secs(2)))).await.unwrap();
        // Down over its due time (no dispatcher), then back.
        let server = server.restart(HashMap::new(), |app| app.dispatch.enabled = false).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(sent_to(&fake, "after the restart"), 0);
        let server = server.restart(HashMap::new(), |_| {}).await;
        let mut alice = server.user("alice").await;
        alice.wait_status(&m, MessageStatus::Sent, 10).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sent_to(&fake, "after the restart"), 1, "sent exactly once");
        server.stop().await;
    }

    async fn scheduled_messages_cancel_before_but_not_during(backend: Backend) {
        let (fake, server) = with_fake(&backend, &[]).await;
        let mut alice = server.user("alice").await;
        let mut events = watch(&server, "alice").await;

        // Before: canceled, never sent; a retry answers the same.
        let later = alice.send_req(sms_at(BOB, "never", Some(in_secs(2)))).await.unwrap();
        let cancel = |id: &str| pb::CancelScheduledRequest { message_id: id.into() };
        let c = call!(alice, cancel_scheduled, cancel(&later.id)).unwrap();
        assert_eq!(c.status, MessageStatus::Canceled as i32);
        let again = call!(alice, cancel_scheduled, cancel(&later.id)).unwrap();
        assert_eq!(again.status, MessageStatus::Canceled as i32);
        until(&mut events, EventKind::ConversationUpdated).await;
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.status, e.message_id.as_str()), (EventKind::MessageStatusChanged as i32, MessageStatus::Canceled as i32, later.id.as_str()));

        // During: Twilio slow, so the message sits in SENDING.
        fake.script([Scripted::Slow(Duration::from_secs(3))]);
        let soon = alice.send_req(sms_at(BOB, "slowly", Some(in_secs(2)))).await.unwrap();
        alice.wait_status(&soon, MessageStatus::Sending, 10).await;
        let err = call!(alice, cancel_scheduled, cancel(&soon.id)).unwrap_err();
        refused(&err, Code::FailedPrecondition, None);
        assert!(err.message().contains("being sent"), "{}", err.message());
        // Deleting it is refused as well while it is being sent.
        let err = call!(alice, delete_message, pb::DeleteMessageRequest { message_id: soon.id.clone() }).unwrap_err();
        refused(&err, Code::FailedPrecondition, None);
        alice.wait_status(&soon, MessageStatus::Sent, 10).await;
        let err = call!(alice, cancel_scheduled, cancel(&soon.id)).unwrap_err();
        refused(&err, Code::FailedPrecondition, None);

        // Not scheduled at all; someone else's; empty.
        let now = alice.send(OWN, BOB, "right away").await.unwrap();
        let err = call!(alice, cancel_scheduled, cancel(&now.id)).unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().contains("not scheduled"), "{}", err.message());
        let mut mallory = server.user("mallory").await;
        let err = call!(mallory, cancel_scheduled, cancel(&later.id)).unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "message_id not found"));
        let err = call!(alice, cancel_scheduled, cancel("")).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("message_id"));

        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(sent_to(&fake, "never"), 0, "a canceled message never goes out");
        assert_eq!(alice.message(&later.contact_id, &later.id).await.status, MessageStatus::Canceled as i32);
        server.stop().await;
    }

    async fn bad_send_times_are_refused_naming_send_at(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        for (send_at, why) in [
            (in_secs(-60), "in the past"),
            (in_secs(10), "at least 60 s"),
            (in_secs(36 * 86_400), "at most 35 days"),
            (prost_types::Timestamp { seconds: 1, nanos: -5 }, "not a valid time"),
        ] {
            let err = alice.send_req(sms_at(BOB, "when?", Some(send_at))).await.unwrap_err();
            refused(&err, Code::InvalidArgument, Some("send_at"));
            assert!(err.message().contains(why), "{}", err.message());
        }
        let mms = pb::SendMmsRequest {
            from: OWN.into(),
            to: BOB.into(),
            media_urls: vec!["https://example.com/a.png".into()],
            send_at: Some(in_secs(-1)),
            ..Default::default()
        };
        let err = call!(alice, send_mms, mms.clone()).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("send_at"));
        assert!(list(&mut alice, false).await.is_empty(), "nothing was written");

        // In the window: an hour, and 34 days, ahead; SendMms too. A retry with the
        // same key returns the first; the same key at another time is refused.
        let keyed = |send_at| pb::SendSmsRequest { idempotency_key: "sched-1".into(), ..sms_at(BOB, "keyed", Some(send_at)) };
        let hour = in_secs(3600);
        let first = alice.send_req(keyed(hour)).await.unwrap();
        assert_eq!(alice.send_req(keyed(hour)).await.unwrap().id, first.id);
        let err = alice.send_req(keyed(in_secs(7200))).await.unwrap_err();
        refused(&err, Code::InvalidArgument, Some("idempotency_key"));
        let far = alice.send_req(sms_at(BOB, "far", Some(in_secs(34 * 86_400)))).await.unwrap();
        assert_eq!(far.status, MessageStatus::Scheduled as i32);
        let m = call!(alice, send_mms, pb::SendMmsRequest { send_at: Some(in_secs(120)), ..mms }).unwrap();
        assert_eq!(m.status, MessageStatus::Scheduled as i32);
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

    async fn archive_unarchive_and_an_inbound_message_brings_it_back(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let bob = alice.send(OWN, BOB, "hi bob").await.unwrap();
        alice.send(OWN, CAROL, "hi carol").await.unwrap();
        let mut events = watch(&server, "alice").await;
        let archive = |id: &str| pb::ArchiveConversationRequest { contact_id: id.into() };

        let conv = call!(alice, archive_conversation, archive(&bob.contact_id)).unwrap();
        assert!(conv.archived);
        let e = next_change(&mut events).await;
        assert_eq!((e.kind, e.contact_id.as_str()), (EventKind::ConversationArchived as i32, bob.contact_id.as_str()));
        let inbox: Vec<_> = list(&mut alice, false).await.into_iter().map(|c| c.contact_number).collect();
        assert_eq!(inbox, [CAROL]);
        let archived = list(&mut alice, true).await;
        assert_eq!((archived.len(), archived[0].contact_number.as_str(), archived[0].archived), (1, BOB, true));
        // Archiving again changes nothing and announces nothing; a send keeps it archived.
        call!(alice, archive_conversation, archive(&bob.contact_id)).unwrap();
        alice.send(OWN, BOB, "still archived").await.unwrap();
        let e = next_change(&mut events).await;
        assert_eq!(e.kind, EventKind::ConversationUpdated as i32);
        assert_eq!(list(&mut alice, true).await.len(), 1);

        let conv = call!(alice, unarchive_conversation, pb::UnarchiveConversationRequest { contact_id: bob.contact_id.clone() }).unwrap();
        assert!(!conv.archived);
        let (e, _) = until(&mut events, EventKind::ConversationUnarchived).await;
        assert_eq!(e.contact_id, bob.contact_id);
        assert_eq!(list(&mut alice, false).await.len(), 2);

        // Archived again, then Bob writes: back in the inbox, announced first.
        call!(alice, archive_conversation, archive(&bob.contact_id)).unwrap();
        until(&mut events, EventKind::ConversationArchived).await;
        let inbound = server.inbound("SMa1", BOB, OWN, "are you there?").await;
        let back = next_change(&mut events).await;
        assert_eq!((back.kind, back.contact_id.as_str()), (EventKind::ConversationUnarchived as i32, bob.contact_id.as_str()));
        let received = next_change(&mut events).await;
        assert_eq!((received.kind, received.message_id.as_str()), (EventKind::MessageReceived as i32, inbound.id.as_str()));
        let inbox = list(&mut alice, false).await;
        assert_eq!((inbox[0].contact_number.as_str(), inbox[0].archived, inbox[0].unread_count), (BOB, false, 1));
        assert!(list(&mut alice, true).await.is_empty());

        let mut mallory = server.user("mallory").await;
        let err = call!(mallory, archive_conversation, archive(&bob.contact_id)).unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "contact_id not found"));
        let err = call!(alice, archive_conversation, archive("")).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("contact_id"));
        server.stop().await;
    }

    async fn mute_flags_events_and_unread_still_counts(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let bob = server.inbound("SMm1", BOB, OWN, "one").await;
        let carol = server.inbound("SMm2", CAROL, OWN, "two").await;
        let mut events = watch(&server, "alice").await;
        let mute = |id: &str, until| pb::MuteConversationRequest { contact_id: id.into(), until };

        let conv = call!(alice, mute_conversation, mute(&bob.contact_id, None)).unwrap();
        assert!(conv.muted && conv.muted_until.is_none());
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.muted), (EventKind::ConversationMuted as i32, true));
        server.inbound("SMm3", BOB, OWN, "three").await;
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.muted, e.unread_count), (EventKind::MessageReceived as i32, true, 2), "muted, still counted");
        server.inbound("SMm4", CAROL, OWN, "four").await;
        let e = next(&mut events).await;
        assert_eq!((e.contact_id.as_str(), e.muted), (carol.contact_id.as_str(), false));
        assert_eq!(alice.unread(&bob.contact_id).await, 2);
        let listed = list(&mut alice, false).await;
        assert!(listed.iter().find(|c| c.contact_id == bob.contact_id).unwrap().muted);

        let conv = call!(alice, unmute_conversation, pb::UnmuteConversationRequest { contact_id: bob.contact_id.clone() }).unwrap();
        assert!(!conv.muted);
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.muted), (EventKind::ConversationUnmuted as i32, false));
        server.inbound("SMm5", BOB, OWN, "five").await;
        assert!(!next(&mut events).await.muted);

        // Until a time: muted, then not once it has passed.
        let conv = call!(alice, mute_conversation, mute(&bob.contact_id, Some(in_secs(1)))).unwrap();
        assert!(conv.muted && conv.muted_until.is_some());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let listed = list(&mut alice, false).await;
        assert!(!listed.iter().find(|c| c.contact_id == bob.contact_id).unwrap().muted, "the mute expired");
        server.inbound("SMm6", BOB, OWN, "six").await;
        let (e, _) = until(&mut events, EventKind::MessageReceived).await;
        assert!(!e.muted);

        let err = call!(alice, mute_conversation, mute(&bob.contact_id, Some(in_secs(-5)))).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("until"));
        let mut mallory = server.user("mallory").await;
        let err = call!(mallory, mute_conversation, mute(&bob.contact_id, None)).unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = call!(mallory, unmute_conversation, pb::UnmuteConversationRequest { contact_id: bob.contact_id.clone() }).unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        server.stop().await;
    }

    async fn a_blocked_numbers_inbound_is_stored_but_not_shown(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let carol = server.inbound("SMb1", CAROL, OWN, "hello from carol").await;
        let mut events = watch(&server, "alice").await;

        let blocked = call!(alice, block_number, pb::BlockNumberRequest { number: BOB.into() }).unwrap();
        assert_eq!(blocked.number, BOB);
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.contact_id.as_str()), (EventKind::NumberBlocked as i32, blocked.contact_id.as_str()));
        let again = call!(alice, block_number, pb::BlockNumberRequest { number: BOB.into() }).unwrap();
        assert_eq!((again.contact_id.as_str(), again.blocked_at), (blocked.contact_id.as_str(), blocked.blocked_at), "idempotent");
        call!(alice, block_number, pb::BlockNumberRequest { number: CAROL.into() }).unwrap();
        next(&mut events).await;
        let page = call!(alice, list_blocked_numbers, pb::ListBlockedNumbersRequest::default()).unwrap();
        let numbers: Vec<_> = page.blocked_numbers.iter().map(|b| b.number.as_str()).collect();
        assert_eq!(numbers, [CAROL, BOB], "most recently blocked first");

        // Stored, encrypted, but no conversation, no unread, no event.
        let hidden = server.inbound("SMb2", BOB, OWN, "you cannot ignore me").await;
        let hidden_from_carol = server.inbound("SMb3", CAROL, OWN, "me neither").await;
        assert_eq!(count(&server, &format!("SELECT COUNT(*) AS n FROM messages WHERE id IN ('{}', '{}') AND blocked", hidden.id, hidden_from_carol.id)).await, 2);
        let inbox = list(&mut alice, false).await;
        assert_eq!(inbox.len(), 1);
        assert_eq!((inbox[0].unread_count, inbox[0].last_message.as_ref().unwrap().id.as_str()), (1, carol.id.as_str()));
        let page = alice.get(&carol.contact_id, 50, "").await.unwrap();
        assert_eq!(bodies(&page.messages), ["hello from carol"]);
        assert!(search(&mut alice, "ignore", "").await.unwrap().is_empty());
        assert_eq!(alice.mark_conversation_read(&carol.contact_id, "").await.unwrap(), 0);
        // Sends to a blocked number are refused.
        let err = alice.send(OWN, BOB, "hi").await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().starts_with("to: ") && err.message().contains("blocked") && !err.message().contains(BOB), "{}", err.message());

        let done = call!(alice, unblock_number, pb::UnblockNumberRequest { number: BOB.into() }).unwrap();
        assert_eq!(done.contact_id, blocked.contact_id);
        // The events: CAROL unread read mark, then the unblock. Nothing for the hidden ones.
        let (e, before) = until(&mut events, EventKind::NumberUnblocked).await;
        assert_eq!(e.contact_id, blocked.contact_id);
        assert!(before.iter().all(|e| e.kind != EventKind::MessageReceived as i32), "{before:?}");
        call!(alice, unblock_number, pb::UnblockNumberRequest { number: BOB.into() }).unwrap();
        alice.send(OWN, BOB, "welcome back").await.unwrap();
        server.inbound("SMb4", BOB, OWN, "thanks").await;
        assert_eq!(alice.unread(&blocked.contact_id).await, 1);

        // A scheduled message to a number blocked before it is due is canceled.
        let restarted = server.restart(HashMap::from([("SCHEDULE_MIN_LEAD_SECS", "1".to_owned())]), |_| {}).await;
        let mut alice = restarted.user("alice").await;
        let m = alice.send_req(sms_at(BOB, "later", Some(in_secs(2)))).await.unwrap();
        call!(alice, block_number, pb::BlockNumberRequest { number: BOB.into() }).unwrap();
        alice.wait_status(&m, MessageStatus::Canceled, 10).await;

        for bad in ["", "+1 415", "not a number!"] {
            let err = call!(alice, block_number, pb::BlockNumberRequest { number: bad.into() }).unwrap_err();
            refused(&err, Code::InvalidArgument, Some("number"));
        }
        let err = call!(alice, unblock_number, pb::UnblockNumberRequest { number: "+14155550199".into() }).unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "number not found"));
        let mut mallory = restarted.user("mallory").await;
        assert!(call!(mallory, list_blocked_numbers, pb::ListBlockedNumbersRequest::default()).unwrap().blocked_numbers.is_empty());
        let err = call!(mallory, unblock_number, pb::UnblockNumberRequest { number: BOB.into() }).unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        restarted.stop().await;
    }

    async fn delete_removes_rows_media_and_terms_and_fixes_counts(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let media_dir = server.dir.path().join("media");
        let image = {
            let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
            b.extend(std::iter::repeat_n(7u8, 500));
            b
        };
        let upload = vec![
            pb::UploadMediaRequest { frame: Some(pb::upload_media_request::Frame::Metadata(pb::UploadMediaMetadata { content_type: "image/png".into(), filename: "a.png".into() })) },
            pb::UploadMediaRequest { frame: Some(pb::upload_media_request::Frame::Chunk(image)) },
        ];
        let media = alice.client.upload_media(authed(tokio_stream::iter(upload), &alice.token)).await.unwrap().into_inner();
        let object = media_dir.join("media").join(&media.id);
        assert!(object.exists(), "{}", object.display());
        let mms = call!(alice, send_mms, pb::SendMmsRequest { from: OWN.into(), to: BOB.into(), body: "photo zebra".into(), media_ids: vec![media.id.clone()], ..Default::default() }).unwrap();
        alice.wait_status(&mms, MessageStatus::Delivered, 10).await;
        let one = server.inbound("SMd1", BOB, OWN, "first zebra").await;
        let two = server.inbound("SMd2", BOB, OWN, "second zebra").await;
        let three = server.inbound("SMd3", BOB, OWN, "third zebra").await;
        let contact = one.contact_id.clone();
        assert_eq!(alice.unread(&contact).await, 3);
        let mut events = watch(&server, "alice").await;
        let delete = |id: &str| pb::DeleteMessageRequest { message_id: id.into() };
        let terms_of = |id: &str| format!("SELECT COUNT(*) AS n FROM search_terms WHERE message_id = '{id}'");
        assert!(count(&server, &terms_of(&two.id)).await > 0);

        // An unread one in the middle: gone, counted out.
        let d = call!(alice, delete_message, delete(&two.id)).unwrap();
        assert_eq!((d.contact_id.as_str(), d.unread_count), (contact.as_str(), 2));
        let e = next(&mut events).await;
        assert_eq!((e.kind, e.message_id.as_str(), e.unread_count), (EventKind::MessageDeleted as i32, two.id.as_str(), 2));
        assert_eq!(count(&server, &format!("SELECT COUNT(*) AS n FROM messages WHERE id = '{}'", two.id)).await, 0);
        assert_eq!(count(&server, &terms_of(&two.id)).await, 0);
        assert_eq!(bodies(&search(&mut alice, "zebra", "").await.unwrap()), ["third zebra", "first zebra", "photo zebra"]);
        // The last one: the conversation's last message moves back.
        call!(alice, delete_message, delete(&three.id)).unwrap();
        let conv = list(&mut alice, false).await.remove(0);
        assert_eq!((conv.last_message.unwrap().id, conv.unread_count), (one.id.clone(), 1));
        // The MMS: its media row and encrypted object go too.
        call!(alice, delete_message, delete(&mms.id)).unwrap();
        assert!(!object.exists(), "the media object is deleted");
        assert_eq!(count(&server, &format!("SELECT COUNT(*) AS n FROM media WHERE id = '{}'", media.id)).await, 0);
        assert_eq!(count(&server, &format!("SELECT COUNT(*) AS n FROM message_media WHERE message_id = '{}'", mms.id)).await, 0);
        let err = call!(alice, delete_message, delete(&mms.id)).unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "message_id not found"));
        let mut mallory = server.user("mallory").await;
        let err = call!(mallory, delete_message, delete(&one.id)).unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = call!(mallory, delete_conversation, pb::DeleteConversationRequest { contact_id: contact.clone() }).unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(alice.unread(&contact).await, 1, "nothing changed by another user");

        // A scheduled message deletes, its outbox job with it.
        let restarted_at = count(&server, "SELECT COUNT(*) AS n FROM outbox").await;
        let later = alice
            .send_req(pb::SendSmsRequest { send_at: Some(in_secs(3600)), ..sms_at(BOB, "much later", None) })
            .await
            .unwrap();
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM outbox").await, restarted_at + 1);
        call!(alice, delete_message, delete(&later.id)).unwrap();
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM outbox").await, restarted_at);

        // The whole conversation: rows, terms and the conversation go; the contact stays.
        server.inbound("SMd4", BOB, OWN, "fourth zebra").await;
        let d = call!(alice, delete_conversation, pb::DeleteConversationRequest { contact_id: contact.clone() }).unwrap();
        assert_eq!(d.deleted_messages, 2);
        let (e, _) = until(&mut events, EventKind::ConversationDeleted).await;
        assert_eq!(e.contact_id, contact);
        assert!(list(&mut alice, false).await.is_empty());
        assert!(search(&mut alice, "zebra", "").await.unwrap().is_empty());
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM messages WHERE user_id = 'alice'").await, 0);
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM search_terms WHERE user_id = 'alice'").await, 0);
        assert!(alice.get(&contact, 10, "").await.unwrap().messages.is_empty());
        let d = call!(alice, delete_conversation, pb::DeleteConversationRequest { contact_id: contact.clone() }).unwrap();
        assert_eq!(d.deleted_messages, 0, "a retry finds nothing left");
        // A new message starts a fresh conversation.
        server.inbound("SMd5", BOB, OWN, "hello again").await;
        assert_eq!(alice.unread(&contact).await, 1);
        server.stop().await;
    }

    async fn contact_names_are_sealed_and_shown_everywhere(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let mut alice = server.user("alice").await;
        let sent = alice.send(OWN, BOB, "hello plumber").await.unwrap();
        assert_eq!(sent.contact_name, "");
        let mut events = watch(&server, "alice").await;
        let name = |id: &str, name: &str| pb::SetContactNameRequest { contact_id: id.into(), name: name.into() };

        let contact = call!(alice, set_contact_name, name(&sent.contact_id, "  Bob the Plumber ")).unwrap();
        assert_eq!((contact.id.as_str(), contact.number.as_str(), contact.name.as_str(), contact.blocked), (sent.contact_id.as_str(), BOB, "Bob the Plumber", false));
        let e = next_change(&mut events).await;
        assert_eq!((e.kind, e.contact_id.as_str()), (EventKind::ContactUpdated as i32, sent.contact_id.as_str()));

        let conv = list(&mut alice, false).await.remove(0);
        assert_eq!((conv.contact_name.as_str(), conv.last_message.unwrap().contact_name.as_str()), ("Bob the Plumber", "Bob the Plumber"));
        let page = alice.get(&sent.contact_id, 10, "").await.unwrap();
        assert_eq!(page.contact_name, "Bob the Plumber");
        assert!(page.messages.iter().all(|m| m.contact_name == "Bob the Plumber"));
        assert_eq!(search(&mut alice, "plumber", "").await.unwrap()[0].contact_name, "Bob the Plumber");
        assert_eq!(alice.send(OWN, BOB, "again").await.unwrap().contact_name, "Bob the Plumber");
        let inbound = server.inbound("SMn1", BOB, OWN, "hi").await;
        assert_eq!(alice.mark_read(&inbound.id).await.unwrap().contact_name, "Bob the Plumber");
        // Not in clear in the database.
        assert_eq!(count(&server, "SELECT COUNT(*) AS n FROM contacts WHERE name_ct IS NOT NULL").await, 1);

        let err = call!(alice, set_contact_name, name(&sent.contact_id, &"n".repeat(101))).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("name"));
        let err = call!(alice, set_contact_name, name(&sent.contact_id, "tab\there")).unwrap_err();
        refused(&err, Code::InvalidArgument, Some("name"));
        let mut mallory = server.user("mallory").await;
        let err = call!(mallory, set_contact_name, name(&sent.contact_id, "mine")).unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "contact_id not found"));
        let cleared = call!(alice, set_contact_name, name(&sent.contact_id, "")).unwrap();
        assert_eq!(cleared.name, "");
        assert_eq!(list(&mut alice, false).await[0].contact_name, "");
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
