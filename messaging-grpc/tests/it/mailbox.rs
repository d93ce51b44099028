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

// After `call!`: a macro is seen by the modules declared below it.
/// A contact's block and name.
mod contacts;
/// Archive, mute and delete: events, unread counts, rows removed.
mod conversation_state;
/// Scheduled sends: once at their time, across a restart, canceled before but not
/// during, bad times refused.
mod scheduled;
/// Search over the blind index (folded words, numbers, only one's own), the backfill,
/// and what the SQLite file holds in clear.
mod search;
