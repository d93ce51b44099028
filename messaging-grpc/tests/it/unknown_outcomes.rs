//! Sends whose outcome is unknown (no answer, a timeout, a 5xx) against a fake Twilio
//! that behaves like Twilio: a create finishes although we hung up, its list shows a
//! new message only after a lag. None of them may reach Twilio twice.

use std::{collections::HashMap, time::Duration};

use commpro_messaging_api::v1::MessageStatus;
use twilio_fake::{FakeTwilio, Latency, Scripted};

use crate::{backend_tests, helpers::*};

const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";

async fn setup(backend: &Backend, extra: &[(&'static str, &str)]) -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start().await.unwrap();
    let mut vars = twilio_vars(&fake);
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let server = TestServer::start_with(backend, vars).await;
    server.assign(FROM, "alice").await;
    (fake, server)
}

/// Signs and posts a status callback for `sid` to our `/webhook/status?mid=<id>`
/// through a real gateway, as Twilio would.
async fn callback(server: &TestServer, message_id: &str, sid: &str) {
    callback_with(server, message_id, sid, "sent").await;
}

async fn callback_with(server: &TestServer, message_id: &str, sid: &str, status: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = crate::gateway::gateway_on(listener, &format!("http://{}", server.addr), &[]).await;
    let path = format!("/webhook/status?mid={message_id}");
    let (code, _, _) = gw
        .post(&path, &crate::gateway::status_form(sid, status, None))
        .await;
    assert_eq!(code, 200);
}

backend_tests! {
    async fn a_create_twilio_finishes_after_our_timeout_is_not_sent_twice(backend: Backend) {
        // We stop waiting after TWILIO_TIMEOUT_SECS=2; Twilio finishes the create 5 s
        // in and lists it 1 s later. Before, the look-up ran once, ~1 s after the
        // timeout, found nothing and sent again: two messages at Twilio. The settle
        // time (the setting under test) covers Twilio's processing and its list lag.
        let (fake, server) = setup(&backend, &[("OUTBOX_UNKNOWN_SETTLE_SECS", "8")]).await;
        fake.set_list_lag(Duration::from_secs(1));
        fake.script([Scripted::Slow(Duration::from_secs(5))]);
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "slow twilio").await.unwrap();
        let sent = alice.wait_status(&m, MessageStatus::Sent, 30).await;
        assert_eq!(fake.created_count(), 1, "one SendSms, one message at Twilio");
        assert_eq!(fake.create_requests().len(), 1);
        assert_eq!(sent.provider_sid, fake.messages()[0].sid, "the late create was adopted");
        let lookups = fake.list_requests().len();
        assert!(lookups >= 2, "looked up more than once before deciding: {lookups}");
        server.stop().await;
    }

    async fn a_resend_refused_as_busy_does_not_wait_the_settle_again(backend: Backend) {
        // The first create's answer is lost (nothing created): outcome unknown. After
        // the settle time and two empty look-ups the message is sent again — and that
        // create is refused with a 429 (never processed). Before, the refused create
        // restarted the settle and the look-up count: two more look-ups and another
        // settle time for a create that never was. Now the next attempt looks up once
        // (as every attempt after an unknown outcome does) and sends.
        let (fake, server) = setup(&backend, &[("OUTBOX_UNKNOWN_SETTLE_SECS", "3")]).await;
        fake.script([Scripted::Drop, Scripted::TooManyRequests { retry_after: None }]);
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "lost, then refused").await.unwrap();
        alice.wait_status(&m, MessageStatus::Sent, 30).await;
        assert_eq!(fake.created_count(), 1, "one message at Twilio");
        assert_eq!(fake.create_requests().len(), 3, "lost, refused, sent");
        let lookups = fake.list_requests().len();
        assert_eq!(lookups, 3, "two before the refused resend, one after it");
        server.stop().await;
    }
}

#[tokio::test]
async fn look_ups_wait_for_room_under_twilios_concurrency_limit() {
    // Twilio's limit of one request open on the account, creates taking 1 s, and a
    // backlog keeping it full. A message whose first create was lost must be looked up
    // before it is sent again. Before, its look-ups did not wait for room under the
    // ceiling the dispatcher learnt: refused with a 429 whenever a create was open,
    // retried every ~20 ms, over and over for as long as the backlog lasted. Now a
    // look-up waits for room like a create: two look-ups (the settle's), then the resend.
    let (fake, server) = setup(&Backend::Sqlite, &[("OUTBOX_UNKNOWN_SETTLE_SECS", "3")]).await;
    fake.set_max_open_creates(Some(1));
    fake.set_create_latency(Latency::Fixed(Duration::from_secs(1)));
    fake.script([Scripted::Drop]);
    let mut alice = server.user("alice").await;
    let lost = alice.send(FROM, TO, "lost, then looked up").await.unwrap();
    wait_until("the first create", 10, || async {
        !fake.create_requests().is_empty()
    })
    .await;
    let mut backlog = Vec::new();
    for i in 0..6 {
        backlog.push(alice.send(FROM, TO, &format!("backlog {i}")).await.unwrap());
    }
    alice.wait_status(&lost, MessageStatus::Sent, 60).await;
    for m in &backlog {
        alice.wait_status(m, MessageStatus::Sent, 60).await;
    }
    assert_eq!(fake.created_count(), 7, "each message once");
    let lookups = fake.list_requests().len();
    assert!(
        lookups <= 5,
        "{lookups} look-ups for one unknown outcome (two are needed)"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_refused_resend_after_an_unknown_outcome_looks_twilio_up_again() {
    // A 5xx leaves the outcome unknown; after trusted look-ups the resend gets a 429
    // (certainly not created). Before, the 429 put the message back to QUEUED and the
    // next attempt sent without asking Twilio; the unknown outcome must stay until a
    // look-up settles it.
    refused_resend_looks_twilio_up_again(Scripted::TooManyRequests { retry_after: None }).await;
}

#[tokio::test]
async fn a_resend_refused_for_our_credentials_after_an_unknown_outcome_looks_twilio_up_again() {
    // The same with the other "certainly not created" answer: 401 (credentials).
    refused_resend_looks_twilio_up_again(Scripted::Error {
        status: 401,
        code: 20003,
        message: "Authenticate".into(),
    })
    .await;
}

async fn refused_resend_looks_twilio_up_again(refusal: Scripted) {
    let (fake, server) = setup(&Backend::Sqlite, &[]).await;
    fake.script([Scripted::ServerError(500), refusal]);
    let mut alice = server.user("alice").await;
    let m = alice.send(FROM, TO, "unknown, then refused").await.unwrap();
    alice.wait_status(&m, MessageStatus::Sent, 40).await;
    let requests = fake.requests();
    let posts: Vec<_> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.method == "POST")
        .collect();
    assert_eq!(
        posts.len(),
        3,
        "500, the refusal, then the create that went through"
    );
    let (refused, last) = (posts[1].0, posts[2].0);
    let looked = requests[refused..last]
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert!(
        looked >= 1,
        "Twilio was looked up between the refusal and the next create"
    );
    assert_eq!(fake.created_count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_status_callback_with_our_id_adopts_a_queued_message() {
    // Twilio is unreachable for our creates (QUEUED between attempts), yet a callback
    // carrying our id arrives: Twilio has the message (an earlier create's answer was
    // lost). It is adopted from QUEUED and never sent again.
    let (fake, server) = setup(&Backend::Sqlite, &[]).await;
    fake.go_down();
    let mut alice = server.user("alice").await;
    let m = alice.send(FROM, TO, "adopted while queued").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sid = "SM0123456789abcdef0123456789abcdef";
    callback(&server, &m.id, sid).await;
    let adopted = alice.wait_status(&m, MessageStatus::Sent, 10).await;
    assert_eq!(adopted.provider_sid, sid);
    let store = server.store().await;
    assert_eq!(
        messaging_grpc::store::outbox::pending_any(store.conn())
            .await
            .unwrap(),
        0,
        "job settled"
    );
    fake.come_back().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.created_count(), 0, "never sent after the adoption");
    server.stop().await;
}

#[tokio::test]
async fn a_second_create_for_one_message_keeps_its_sid() {
    // A message already SENT with one SID; a callback for it with another SID is a
    // second message at Twilio for one of ours: kept in duplicate_sends, first SID stays.
    let (_fake, server) = setup(&Backend::Sqlite, &[]).await;
    let mut alice = server.user("alice").await;
    let m = alice.send(FROM, TO, "sent once, we hope").await.unwrap();
    let sent = alice.wait_status(&m, MessageStatus::Sent, 10).await;
    let second = "SMffffffffffffffffffffffffffffffff";
    callback(&server, &m.id, second).await;
    callback(&server, &m.id, second).await; // Twilio retries: kept once
    let store = server.store().await;
    let kept = messaging_grpc::store::duplicate_sends::for_message_any(store.conn(), &m.id)
        .await
        .unwrap();
    assert_eq!(kept, vec![second.to_owned()]);
    let now = alice.message(&m.contact_id, &m.id).await;
    assert_eq!(
        now.provider_sid, sent.provider_sid,
        "the first SID stays the message's"
    );
    server.stop().await;
}

#[tokio::test]
async fn creates_in_flight_grow_with_twilios_latency() {
    // Twilio answers each create after 300 ms. Eight sends in flight (the old fixed
    // count) is at most ~27 creates a second; in flight sized by latency keeps far
    // more creates open at once (production cap; pacing open as in every delivery test).
    let fake = FakeTwilio::start().await.unwrap();
    fake.set_create_latency(Latency::Fixed(Duration::from_millis(300)));
    let server = TestServer::start_custom(&Backend::Sqlite, twilio_vars(&fake), |app| {
        app.dispatch.enabled = false;
    })
    .await;
    server.assign(FROM, "alice").await;
    let mut alice = server.user("alice").await;
    let mut queued = Vec::new();
    for i in 0..300 {
        let to = format!("+1415555{:04}", i);
        queued.push(
            alice
                .send(FROM, &to, &format!("backlog {i}"))
                .await
                .unwrap(),
        );
    }
    let server = server.restart(HashMap::new(), |_| {}).await;
    let mut alice = server.user("alice").await;
    for m in &queued {
        alice.wait_status(m, MessageStatus::Sent, 60).await;
    }
    assert_eq!(fake.created_count(), 300);
    // Creates open at once: the most requests that arrived within one latency.
    let mut at: Vec<_> = fake.create_requests().iter().map(|r| r.at).collect();
    at.sort();
    let window = Duration::from_millis(300);
    let open = (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t - at[i] < window).count())
        .max()
        .unwrap();
    assert!(
        open >= 40,
        "at most {open} creates in flight at 300 ms latency"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_delivered_callback_corrects_an_outcome_unknown_failure() {
    // The answer was lost and Twilio could not be asked (403 on every list) within
    // the validity window: FAILED, "outcome unknown". Twilio had it after all, and its
    // callback (carrying our id) says delivered: the message is corrected, not left failed.
    let (fake, server) = setup(&Backend::Sqlite, &[("MESSAGE_VALIDITY_SECS", "3")]).await;
    fake.script([Scripted::CreateThenDrop]);
    let refused = || Scripted::Error {
        status: 403,
        code: 20003,
        message: "Permission denied".into(),
    };
    fake.script_list((0..200).map(|_| refused()));
    let mut alice = server.user("alice").await;
    let m = alice.send(FROM, TO, "did it go?").await.unwrap();
    let failed = alice.wait_status(&m, MessageStatus::Failed, 15).await;
    assert!(
        failed.error_message.starts_with("outcome unknown"),
        "{}",
        failed.error_message
    );
    let sid = fake.messages()[0].sid.clone();
    callback_with(&server, &m.id, &sid, "delivered").await;
    let delivered = alice.wait_status(&m, MessageStatus::Delivered, 10).await;
    assert_eq!(delivered.provider_sid, sid);
    assert!(
        delivered.error_message.is_empty(),
        "{}",
        delivered.error_message
    );
    assert_eq!(fake.created_count(), 1);
    server.stop().await;
}
