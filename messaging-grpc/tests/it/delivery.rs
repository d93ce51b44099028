//! Outbound delivery through a fake Twilio on loopback: the real dispatcher, real
//! HTTP, Twilio's wire format.

use std::{collections::HashMap, sync::Arc, time::Duration};

use commpro_messaging_api::v1::{self as pb, MessageStatus};
use messaging_grpc::provider::{Outgoing, ProviderMessage, SendError, SmsProvider};
use tonic::Code;
use twilio_fake::{FakeTwilio, Scripted};

use crate::{backend_tests, helpers::*};

const FROM: &str = "+15005550006";
const TO: &str = "+14155550100";
const FROM2: &str = "+15005550009";

async fn setup(backend: &Backend, extra: &[(&'static str, &str)]) -> (FakeTwilio, TestServer) {
    let fake = FakeTwilio::start().await.unwrap();
    let mut vars = twilio_vars(&fake);
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let server = TestServer::start_with(backend, vars).await;
    server.assign(FROM, "alice").await;
    (fake, server)
}

backend_tests! {
    async fn happy_path_stores_sid_and_sent(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        let mut alice = server.user("alice").await;
        let body = "Hello from CommPro! ".repeat(9); // 180 chars: 2 segments
        let queued = alice.send(FROM, TO, &body).await.unwrap();
        let sent = alice.wait_status(&queued, MessageStatus::Sent, 10).await;

        let posts = fake.create_requests();
        assert_eq!(posts.len(), 1);
        let post = &posts[0];
        assert!(post.authorized, "Basic auth with the account SID and auth token");
        assert_eq!(post.path, format!("/2010-04-01/Accounts/{}/Messages.json", twilio_fake::ACCOUNT_SID));
        assert_eq!((post.field("To"), post.field("From"), post.field("Body")), (Some(TO), Some(FROM), Some(body.as_str())));
        let callback = format!("https://gateway.example.test/webhook/status?mid={}", queued.id);
        assert_eq!(post.field("StatusCallback"), Some(callback.as_str()), "our id rides in the signed URL");
        assert!(post.field("ValidityPeriod").is_some_and(|v| v.parse::<u32>().is_ok_and(|s| s > 0 && s <= 36_000)));
        assert!(post.fields("MediaUrl").is_empty());

        let created = &fake.messages()[0];
        assert_eq!(sent.provider_sid, created.sid);
        assert_eq!(sent.segments, 2);
        assert!(sent.sent_at.is_some());
        assert_eq!(sent.error_code, 0);
        server.stop().await;
    }

    async fn retries_429_then_succeeds(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        fake.script([
            Scripted::TooManyRequests { retry_after: None },
            Scripted::TooManyRequests { retry_after: Some(1) },
        ]);
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "rate limited").await.unwrap();
        alice.wait_status(&m, MessageStatus::Sent, 15).await;
        assert_eq!(fake.create_requests().len(), 3);
        assert_eq!(fake.messages().len(), 1);
        // A 429 says the message was not created: no reconciliation lookups needed.
        assert!(fake.requests().iter().all(|r| r.method == "POST"));
        let gap = fake.create_requests()[2].at - fake.create_requests()[1].at;
        assert!(gap >= Duration::from_millis(950), "Retry-After: 1 honoured, waited {gap:?}");
        server.stop().await;
    }

    async fn server_errors_three_times_then_succeeds_once(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        fake.script([Scripted::ServerError(500), Scripted::ServerError(503), Scripted::ServerError(502)]);
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "flaky twilio").await.unwrap();
        let sent = alice.wait_status(&m, MessageStatus::Sent, 15).await;
        assert_eq!(fake.create_requests().len(), 4);
        assert_eq!(fake.messages().len(), 1, "one SMS went out");
        assert_eq!(sent.provider_sid, fake.messages()[0].sid);
        // A 5xx leaves the outcome unknown: each retry first looked the message up,
        // twice (one early look misses a create Twilio is still finishing).
        let lookups = fake.requests().iter().filter(|r| r.method == "GET").count();
        assert_eq!(lookups, 6);
        server.stop().await;
    }

    async fn permanent_error_fails_at_once_with_code(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, "+15005550001", "to an invalid number").await.unwrap();
        let failed = alice.wait_status(&m, MessageStatus::Failed, 10).await;
        assert_eq!(failed.error_code, 21211);
        assert!(failed.error_message.contains("not a valid phone number"), "{}", failed.error_message);
        assert_eq!(fake.create_requests().len(), 1, "no retry of a permanent error");
        server.stop().await;
    }

    async fn unsubscribed_recipient_is_opted_out(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, "+15005550004", "hello?").await.unwrap();
        let failed = alice.wait_status(&m, MessageStatus::Failed, 10).await;
        assert_eq!(failed.error_code, 21610);
        let err = alice.send(FROM, "+15005550004", "again").await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().starts_with("to:") && err.message().contains("opted out"), "{}", err.message());
        assert_eq!(fake.create_requests().len(), 1, "the refused send never reached Twilio");
        assert_eq!(alice.get(&m.contact_id, 10, "").await.unwrap().messages.len(), 1);
        server.stop().await;
    }

    async fn twilio_down_then_back_delivers_everything_once(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        fake.go_down();
        let mut alice = server.user("alice").await;
        let mut sent = Vec::new();
        for i in 0..5 {
            sent.push(alice.send(FROM, TO, &format!("while down {i}")).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for m in &sent {
            // Between attempts a message is QUEUED; during one it is briefly SENDING.
            let status = alice.message(&m.contact_id, &m.id).await.status;
            assert!([MessageStatus::Queued as i32, MessageStatus::Sending as i32].contains(&status));
        }
        assert!(fake.messages().is_empty());
        fake.come_back().await.unwrap();
        for m in &sent {
            alice.wait_status(m, MessageStatus::Sent, 15).await;
        }
        let mut bodies: Vec<_> = fake.messages().into_iter().map(|m| m.body).collect();
        bodies.sort();
        assert_eq!(bodies, (0..5).map(|i| format!("while down {i}")).collect::<Vec<_>>());
        server.stop().await;
    }

    async fn dropped_connection_after_create_is_reconciled_not_resent(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        fake.script([Scripted::CreateThenDrop]);
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "did it go?").await.unwrap();
        let sent = alice.wait_status(&m, MessageStatus::Sent, 15).await;
        assert_eq!(fake.messages().len(), 1, "no duplicate SMS");
        assert_eq!(fake.create_requests().len(), 1);
        assert_eq!(sent.provider_sid, fake.messages()[0].sid, "Twilio's record was adopted");
        server.stop().await;
    }

    async fn dropped_connection_before_create_is_resent(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        fake.script([Scripted::Drop]);
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "lost on the way").await.unwrap();
        alice.wait_status(&m, MessageStatus::Sent, 15).await;
        assert_eq!(fake.create_requests().len(), 2);
        assert_eq!(fake.messages().len(), 1);
        server.stop().await;
    }

    async fn slow_twilio_times_out_and_is_reconciled(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        // Longer than TWILIO_TIMEOUT_SECS=2: we give up waiting, Twilio still sends it.
        fake.script([Scripted::Slow(Duration::from_secs(3))]);
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "slow").await.unwrap();
        let sent = alice.wait_status(&m, MessageStatus::Sent, 20).await;
        assert_eq!(fake.messages().len(), 1, "exactly one SMS");
        assert_eq!(sent.provider_sid, fake.messages()[0].sid);
        server.stop().await;
    }

    async fn crash_between_twilio_answer_and_our_write_is_reconciled(backend: Backend) {
        let fake = FakeTwilio::start().await.unwrap();
        let hung = Arc::new(tokio::sync::Notify::new());
        let signal = hung.clone();
        let server = TestServer::start_custom(&backend, twilio_vars(&fake), move |app| {
            app.provider = Arc::new(HangAfterSend { inner: app.provider.clone(), hung: signal });
        })
        .await;
        server.assign(FROM, "alice").await;
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "crash test").await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), hung.notified()).await.expect("send reached Twilio");
        assert_eq!(fake.messages().len(), 1);

        // "Kill" the process: the dispatcher abandons the hung send without writing.
        let server = server.restart(HashMap::new(), |_| {}).await;
        let mut alice = server.user("alice").await;
        assert_eq!(alice.message(&m.contact_id, &m.id).await.status, MessageStatus::Sending as i32);
        let sent = alice.wait_status(&m, MessageStatus::Sent, 20).await;
        assert_eq!(fake.messages().len(), 1, "reconciliation adopted Twilio's record: no duplicate SMS");
        assert_eq!(fake.create_requests().len(), 1);
        assert_eq!(sent.provider_sid, fake.messages()[0].sid);
        server.stop().await;
    }

    async fn reconciliation_job_applies_statuses_callbacks_missed(backend: Backend) {
        let (fake, server) = setup(&backend, &[("RECONCILE_AFTER_SECS", "1"), ("RECONCILE_INTERVAL_MS", "100")]).await;
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "was it delivered?").await.unwrap();
        let sent = alice.wait_status(&m, MessageStatus::Sent, 10).await;
        fake.set_status(&sent.provider_sid, "delivered");
        let delivered = alice.wait_status(&m, MessageStatus::Delivered, 15).await;
        assert!(delivered.delivered_at.is_some());
        let fetches = fake
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(&format!("/Messages/{}.json", sent.provider_sid)))
            .count();
        assert!(fetches >= 1);
        server.stop().await;
    }

    async fn message_past_its_validity_fails_clearly(backend: Backend) {
        let (fake, server) = setup(&backend, &[("MESSAGE_VALIDITY_SECS", "1")]).await;
        fake.go_down();
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "too late").await.unwrap();
        let failed = alice.wait_status(&m, MessageStatus::Failed, 15).await;
        assert!(failed.error_message.contains("validity window"), "{}", failed.error_message);
        fake.come_back().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(fake.messages().is_empty(), "an expired message never goes out late");
        server.stop().await;
    }

    async fn gives_up_after_bounded_attempts(backend: Backend) {
        let (fake, server) = setup(&backend, &[("OUTBOX_MAX_ATTEMPTS", "3")]).await;
        fake.script((0..10).map(|_| Scripted::TooManyRequests { retry_after: None }));
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "never").await.unwrap();
        let failed = alice.wait_status(&m, MessageStatus::Failed, 15).await;
        assert!(failed.error_message.contains("gave up after 3 attempts"), "{}", failed.error_message);
        assert_eq!(fake.create_requests().len(), 3);
        server.stop().await;
    }

    async fn api_key_credentials_are_used_when_configured(backend: Backend) {
        let (fake, server) = setup(
            &backend,
            &[("TWILIO_API_KEY_SID", twilio_fake::API_KEY_SID), ("TWILIO_API_KEY_SECRET", twilio_fake::API_KEY_SECRET)],
        )
        .await;
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "with an API key").await.unwrap();
        alice.wait_status(&m, MessageStatus::Sent, 10).await;
        assert!(fake.create_requests()[0].authorized);
        server.stop().await;
    }

    async fn a_status_callback_adopts_a_message_whose_answer_was_lost(backend: Backend) {
        // Twilio takes the message but its answer never arrives; no retry before the
        // callback comes (a long backoff), and then the dispatcher is stopped.
        let overrides = [("OUTBOX_RETRY_BASE_MS", "60000"), ("GATEWAY_CONNECTION_OVERRIDES", "rc=3&rp=all")];
        let (fake, server) = setup(&backend, &overrides).await;
        fake.script([Scripted::CreateThenDrop]);
        let m = server.user("alice").await.send(FROM, TO, "answer lost").await.unwrap();
        wait_until("the attempt to fail", 10, || async {
            server.user("alice").await.message(&m.contact_id, &m.id).await.status == MessageStatus::Sending as i32
        })
        .await;
        let server = server.restart(HashMap::new(), |app| app.dispatch.enabled = false).await;
        let sid = fake.messages()[0].sid.clone();
        let callback = fake.create_requests()[0].field("StatusCallback").unwrap().to_owned();
        let path = format!("/webhook/status?mid={}", m.id);
        let expected = format!("https://gateway.example.test{path}#rc=3&rp=all");
        assert_eq!(callback, expected, "our id rides in the signed URL, Twilio's retries in its fragment");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw = crate::gateway::gateway_on(listener, &format!("http://{}", server.addr), &[]).await;
        let (status, _, _) = gw.post(&path, &crate::gateway::status_form(&sid, "sent", None)).await;
        assert_eq!(status, 200);
        let adopted = server.user("alice").await.message(&m.contact_id, &m.id).await;
        assert_eq!((adopted.status, adopted.provider_sid.as_str()), (MessageStatus::Sent as i32, sid.as_str()));
        let store = server.store().await;
        assert_eq!(messaging_grpc::store::outbox::pending_any(store.conn()).await.unwrap(), 0, "job settled");
        // With the dispatcher back, nothing is sent again.
        let server = server.restart(HashMap::new(), |_| {}).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(fake.create_requests().len(), 1);
        drop(gw);
        server.stop().await;
    }

    async fn a_lost_answer_while_twilio_holds_the_message_queued_is_sent_once(backend: Backend) {
        // Twilio accepted the message but keeps it queued (date_sent null, so any
        // DateSent filter misses it), and its answer never reached us.
        let (fake, server) = setup(&backend, &[]).await;
        fake.hold_queued(true);
        fake.script([Scripted::CreateThenDrop]);
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "held in the sender queue").await.unwrap();
        let sent = alice.wait_status(&m, MessageStatus::Sent, 10).await;
        assert_eq!(fake.create_requests().len(), 1, "reconciled, not sent twice");
        assert_eq!(sent.provider_sid, fake.messages()[0].sid);
        assert!(fake.list_requests().iter().all(|r| r.param("DateSent>").is_none() && r.param("DateSent").is_none()));
        server.stop().await;
    }

    async fn a_lost_answer_behind_older_messages_of_the_pair_is_still_found(backend: Backend) {
        // 60 older messages of the same pair, and Twilio lists unsent messages last:
        // the held one is on the second page, behind messages older than our send.
        let (fake, server) = setup(&backend, &[]).await;
        let mut alice = server.user("alice").await;
        let mut earlier = Vec::new();
        for i in 0..60 {
            earlier.push(alice.send(FROM, TO, &format!("earlier {i}")).await.unwrap());
        }
        for m in &earlier {
            alice.wait_status(m, MessageStatus::Sent, 20).await;
        }
        let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
        for m in fake.messages() {
            fake.set_dates(&m.sid, hour_ago, Some(hour_ago));
        }
        fake.hold_queued(true);
        fake.list_unsent_last(true);
        fake.script([Scripted::CreateThenDrop]);
        let m = alice.send(FROM, TO, "held, listed last").await.unwrap();
        alice.wait_status(&m, MessageStatus::Sent, 10).await;
        assert_eq!(fake.create_requests().len(), 61, "reconciled, not sent twice");
        server.stop().await;
    }

    async fn a_stop_to_one_number_leaves_the_users_other_numbers_open(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        server.assign(FROM2, "alice").await;
        server.inbound("SM00000000000000000000000000stop01", TO, FROM, "STOP").await;
        let mut alice = server.user("alice").await;
        let err = alice.send(FROM, TO, "from the number they stopped").await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        assert!(err.message().starts_with("to:") && err.message().contains("opted out"), "{}", err.message());
        let other = alice.send(FROM2, TO, "from another number of alice").await.unwrap();
        alice.wait_status(&other, MessageStatus::Sent, 10).await;
        assert_eq!(fake.create_requests().len(), 1);
        // START to the stopped number opens it again.
        server.inbound("SM0000000000000000000000000start01", TO, FROM, "START").await;
        let again = alice.send(FROM, TO, "welcome back").await.unwrap();
        alice.wait_status(&again, MessageStatus::Sent, 10).await;
        server.stop().await;
    }

    async fn a_released_number_does_not_send_its_queued_messages(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        let server = server.restart(HashMap::new(), |app| app.dispatch.enabled = false).await;
        let mut alice = server.user("alice").await;
        let mut queued = Vec::new();
        for i in 0..3 {
            queued.push(alice.send(FROM, TO, &format!("queued {i}")).await.unwrap());
        }
        server
            .admin()
            .await
            .call(|c, r| Box::pin(c.release_number(r)), pb::ReleaseNumberRequest { number: FROM.into() })
            .await
            .unwrap();
        server.assign(FROM, "bob").await;
        let server = server.restart(HashMap::new(), |_| {}).await;
        let mut alice = server.user("alice").await;
        for m in &queued {
            let failed = alice.wait_status(m, MessageStatus::Failed, 10).await;
            assert!(failed.error_message.contains("no longer assigned"), "{}", failed.error_message);
        }
        assert!(fake.create_requests().is_empty(), "nothing went out from bob's number");
        server.stop().await;
    }

    async fn an_outcome_that_cannot_be_confirmed_ends_with_the_validity_window(backend: Backend) {
        // The answer is lost and every lookup is refused (a key that may create but
        // not list): the message must not stay SENDING forever.
        let (fake, server) = setup(&backend, &[("MESSAGE_VALIDITY_SECS", "3")]).await;
        fake.script([Scripted::CreateThenDrop]);
        let refused = || Scripted::Error { status: 403, code: 20003, message: "Permission denied".into() };
        fake.script_list((0..200).map(|_| refused()));
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "outcome unknown").await.unwrap();
        let failed = alice.wait_status(&m, MessageStatus::Failed, 15).await;
        assert!(failed.error_message.starts_with("outcome unknown"), "{}", failed.error_message);
        assert_eq!(fake.create_requests().len(), 1, "never sent blindly again");
        server.stop().await;
    }

    async fn an_expired_claim_can_no_longer_settle_its_job(backend: Backend) {
        use messaging_grpc::store::outbox;
        let (_fake, server) = setup(&backend, &[]).await;
        let server = server.restart(HashMap::new(), |app| app.dispatch.enabled = false).await;
        server.user("alice").await.send(FROM, TO, "one job").await.unwrap();
        let store = server.store().await;
        let db = store.conn();
        let short = Duration::from_millis(300);
        let first = outbox::claim_any(db, short, 10, &[]).await.unwrap().remove(0);
        assert!(outbox::claim_any(db, short, 10, &[]).await.unwrap().is_empty(), "held");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let second = outbox::claim_any(db, Duration::from_secs(60), 10, &[]).await.unwrap().remove(0);
        assert_eq!(second.message_id, first.message_id);
        assert!(!outbox::renew_held(db, &first, short).await.unwrap(), "the old holder cannot renew");
        assert!(!outbox::reschedule_held(db, &first, 1, messaging_grpc::store::now(), Some("x")).await.unwrap());
        assert!(!outbox::remove_held(db, &first).await.unwrap());
        assert!(!outbox::release_held(db, &first).await.unwrap());
        assert_eq!(outbox::pending_any(db).await.unwrap(), 1, "the job is intact");
        assert!(outbox::renew_held(db, &second, short).await.unwrap(), "the new holder can");
        assert!(outbox::remove_held(db, &second).await.unwrap());
        server.stop().await;
    }

    async fn a_status_parked_while_others_are_applied_is_kept(backend: Backend) {
        use messaging_grpc::store::ingest;
        let server = TestServer::start(&backend).await;
        let store = server.store().await;
        let db = store.conn();
        let sid = "SM000000000000000000000000park0001";
        ingest::park_any(db, sid, "sent", None, None).await.unwrap();
        let read: Vec<String> = ingest::parked_for_any(db, sid).await.unwrap().into_iter().map(|p| p.status).collect();
        ingest::park_any(db, sid, "delivered", None, None).await.unwrap(); // lands after the read
        ingest::unpark_any(db, sid, read).await.unwrap();
        let left: Vec<String> = ingest::parked_for_any(db, sid).await.unwrap().into_iter().map(|p| p.status).collect();
        assert_eq!(left, ["delivered"], "not lost with the ones applied");
        server.stop().await;
    }

    async fn comma_listed_auth_tokens_sign_requests_with_the_first(backend: Backend) {
        // TWILIO_AUTH_TOKEN lists tokens during a rotation; REST calls use the first.
        let tokens = format!("{},an-older-token-being-rotated-out", twilio_fake::AUTH_TOKEN);
        let (fake, server) = setup(&backend, &[("TWILIO_AUTH_TOKEN", tokens.as_str())]).await;
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "during a token rotation").await.unwrap();
        alice.wait_status(&m, MessageStatus::Sent, 10).await;
        assert!(fake.create_requests()[0].authorized);
        server.stop().await;
    }

    async fn a_missing_master_key_is_retryable_not_data_loss(backend: Backend) {
        let (fake, server) = setup(&backend, &[]).await;
        let server = server.restart(HashMap::new(), |app| app.dispatch.enabled = false).await;
        let m = server.user("alice").await.send(FROM, TO, "queued under key t1").await.unwrap();
        // An operator drops the master key that wraps alice's data key from the config.
        let other = format!("t2:{}", base64_key(9));
        let server = server.restart(HashMap::from([("MESSAGING_MASTER_KEYS", other)]), |_| {}).await;
        let mut alice = server.user("alice").await;
        let err = alice.get(&m.contact_id, 10, "").await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
        // The dispatcher tries (and logs loudly) but the message is neither sent nor failed.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let row = messaging_grpc::store::messages::find(server.store().await.conn(), "alice", &m.id).await.unwrap().unwrap();
        assert_eq!(row.status, "queued");
        assert!(fake.create_requests().is_empty());
        // With the key back (first: still active), it goes out.
        let both = format!("{},t2:{}", master_keys_spec(), base64_key(9));
        let server = server
            .restart(HashMap::from([("MESSAGING_MASTER_KEYS", both)]), |_| {})
            .await;
        server.user("alice").await.wait_status(&m, MessageStatus::Sent, 15).await;
        assert_eq!(fake.create_requests().len(), 1);
        server.stop().await;
    }
}

fn base64_key(byte: u8) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// A paced-out sender holds no dispatcher slot: one tenant's backlog on a 1 msg/s
/// number does not delay another sender's messages (claims skip senders not due).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_out_sender_does_not_block_others() {
    let (fake, server) = setup(&Backend::Sqlite, &[("PACING_SENDER_SPS", "1")]).await;
    server.assign(FROM2, "bob").await;
    let server = server
        .restart(HashMap::new(), |app| app.dispatch.enabled = false)
        .await;
    let mut alice = server.user("alice").await;
    for i in 0..40 {
        alice.send(FROM, TO, &format!("bulk {i}")).await.unwrap();
    }
    let mut bob = server.user("bob").await;
    for i in 0..5 {
        bob.send(FROM2, TO, &format!("urgent {i}")).await.unwrap();
    }
    let server = server.restart(HashMap::new(), |_| {}).await;
    let from_bob = || {
        fake.create_requests()
            .iter()
            .filter(|r| r.field("From") == Some(FROM2))
            .count()
    };
    // Bob's sender is paced too (1/s): 5 messages take about 4 s, whatever alice queued.
    wait_until("bob's messages to go out", 8, || async { from_bob() == 5 }).await;
    let from_alice = fake
        .create_requests()
        .iter()
        .filter(|r| r.field("From") == Some(FROM))
        .count();
    assert!(from_alice <= 8, "alice's backlog stays paced: {from_alice}");
    server.stop().await;
}

/// A backlog drains as fast as sends finish, not one batch per poll: with the
/// production poll (1 s) and 8 slots, 200 queued messages used to take 25 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drains_at_the_speed_of_sends_not_of_the_poll() {
    let (fake, server) = setup(&Backend::Sqlite, &[]).await;
    let server = server
        .restart(HashMap::new(), |app| app.dispatch.enabled = false)
        .await;
    let mut alice = server.user("alice").await;
    for i in 0..200 {
        alice.send(FROM, TO, &format!("backlog {i}")).await.unwrap();
    }
    let production_poll = HashMap::from([("OUTBOX_POLL_MS", "1000".to_owned())]);
    let server = server.restart(production_poll, |_| {}).await;
    wait_until("the backlog to reach Twilio", 10, || async {
        fake.create_requests().len() >= 200
    })
    .await;
    assert_eq!(fake.create_requests().len(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_make_exactly_a_thousand_requests() {
    let (fake, server) = setup(&Backend::Sqlite, &[("OUTBOX_MAX_IN_FLIGHT", "16")]).await;
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let mut client = server.user("alice").await;
        tasks.push(tokio::spawn(async move {
            for i in 0..125 {
                client
                    .send(
                        FROM,
                        &format!("+1415555{worker:02}{i:02}"),
                        &format!("bulk {worker}-{i}"),
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = server.store().await;
    wait_until("the outbox to drain", 60, || async {
        messaging_grpc::store::outbox::pending_any(store.conn())
            .await
            .unwrap()
            == 0
    })
    .await;
    assert_eq!(fake.create_requests().len(), 1000);
    let mut bodies: Vec<_> = fake.messages().into_iter().map(|m| m.body).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 1000, "every message exactly once");
    server.stop().await;
}

/// Arrival times at the fake, for `from`, in seconds since the first.
fn arrivals(fake: &FakeTwilio, from: Option<&str>) -> Vec<f64> {
    let posts: Vec<_> = fake
        .create_requests()
        .into_iter()
        .filter(|r| from.is_none_or(|f| r.field("From") == Some(f)))
        .collect();
    let t0 = posts[0].at;
    posts.iter().map(|r| (r.at - t0).as_secs_f64()).collect()
}

/// Most requests seen in any window of `window` seconds.
fn max_in_window(times: &[f64], window: f64) -> usize {
    times
        .iter()
        .map(|&t| times.iter().filter(|&&u| u >= t && u < t + window).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_spreads_segments_per_sender() {
    let (fake, server) = setup(&Backend::Sqlite, &[("PACING_SENDER_SPS", "4")]).await;
    server.assign("+15005550007", "alice").await;
    let mut alice = server.user("alice").await;
    for i in 0..10 {
        alice.send(FROM, TO, &format!("paced {i}")).await.unwrap();
    }
    // A 3-segment message books three slots of the other sender.
    alice
        .send("+15005550007", TO, &"x".repeat(400))
        .await
        .unwrap();
    alice
        .send("+15005550007", TO, "after the long one")
        .await
        .unwrap();
    let store = server.store().await;
    wait_until("paced sends", 30, || async {
        messaging_grpc::store::outbox::pending_any(store.conn())
            .await
            .unwrap()
            == 0
    })
    .await;

    // Counted at the fake: at most 4 segments in any second per sender, with 25% slack:
    // between its slot and the wire each send commits SENDING (an fsync), whose latency
    // varies a lot when the whole suite runs on two cores (10% failed once there). The
    // burst must still take as long as the rate says; an unpaced one would land within
    // a tenth of a second.
    let a = arrivals(&fake, Some(FROM));
    assert_eq!(a.len(), 10);
    assert!(
        max_in_window(&a, 0.75) <= 4,
        "more than 4/s from one sender: {a:?}"
    );
    assert!(
        a[9] >= 9.0 / 4.0 - 0.2,
        "10 messages at 4/s span at least 2.25 s: {a:?}"
    );
    let b = arrivals(&fake, Some("+15005550007"));
    assert!(
        b[1] >= 0.75 - 0.15,
        "3 segments at 4/s hold the sender 0.75 s: {b:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_cap_applies_across_senders() {
    let (fake, server) = setup(&Backend::Sqlite, &[("PACING_ACCOUNT_SPS", "5")]).await;
    let numbers = ["+15005550007", "+15005550008", "+15005550010"];
    for n in numbers {
        server.assign(n, "alice").await;
    }
    let mut alice = server.user("alice").await;
    for i in 0..12 {
        alice
            .send(numbers[i % 3], TO, &format!("capped {i}"))
            .await
            .unwrap();
    }
    let store = server.store().await;
    wait_until("capped sends", 30, || async {
        messaging_grpc::store::outbox::pending_any(store.conn())
            .await
            .unwrap()
            == 0
    })
    .await;
    let all = arrivals(&fake, None);
    assert_eq!(all.len(), 12);
    // Same 25% slack as per sender (commit latency between slot and wire).
    assert!(
        max_in_window(&all, 0.75) <= 5,
        "account cap of 5/s exceeded: {all:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_postgres_never_send_twice() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    // Short leases (4 s, the shortest the 2 s Twilio timeout allows) and a slow Twilio.
    let (fake, first) = setup(&backend, &[("OUTBOX_MAX_IN_FLIGHT", "4")]).await;
    fake.script((0..40).map(|_| Scripted::Slow(Duration::from_millis(1500))));
    let second = first.sibling(|_| {}).await;
    let mut a = first.user("alice").await;
    let mut b = second.user("alice").await;
    for i in 0..100 {
        a.send(FROM, &format!("+141555{i:04}"), &format!("via first {i}"))
            .await
            .unwrap();
        b.send(FROM, &format!("+141556{i:04}"), &format!("via second {i}"))
            .await
            .unwrap();
    }
    let store = first.store().await;
    wait_until("both dispatchers to drain", 60, || async {
        messaging_grpc::store::outbox::pending_any(store.conn())
            .await
            .unwrap()
            == 0
    })
    .await;
    assert_eq!(
        fake.create_requests().len(),
        200,
        "no message was sent twice"
    );
    let mut bodies: Vec<_> = fake.messages().into_iter().map(|m| m.body).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 200);
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn console_provider_reports_sent_then_delivered() {
    let server = TestServer::start(&Backend::Sqlite).await;
    server.assign(FROM, "alice").await;
    let mut alice = server.user("alice").await;
    let m = alice.send(FROM, TO, "local run").await.unwrap();
    let sent = alice.wait_status(&m, MessageStatus::Sent, 10).await;
    assert!(sent.provider_sid.starts_with("SM"));
    alice.wait_status(&m, MessageStatus::Delivered, 10).await;
    server.stop().await;
}

/// Hands the message to the real provider, then never returns: the process "dies"
/// between Twilio's answer and our write.
pub(crate) struct HangAfterSend {
    pub(crate) inner: Arc<dyn SmsProvider>,
    pub(crate) hung: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl SmsProvider for HangAfterSend {
    fn name(&self) -> &'static str {
        "hang-after-send"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<ProviderMessage, SendError> {
        let _ = self.inner.send(msg).await;
        self.hung.notify_one();
        std::future::pending().await
    }

    async fn fetch(&self, sid: &str) -> Result<Option<ProviderMessage>, SendError> {
        self.inner.fetch(sid).await
    }

    async fn find(
        &self,
        from: &str,
        to: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<ProviderMessage>, SendError> {
        self.inner.find(from, to, since).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_an_in_flight_send_finish() {
    let (fake, server) = setup(&Backend::Sqlite, &[("OUTBOX_SHUTDOWN_GRACE_MS", "5000")]).await;
    fake.script([Scripted::Slow(Duration::from_millis(800))]);
    let mut alice = server.user("alice").await;
    let m = alice.send(FROM, TO, "in flight at shutdown").await.unwrap();
    wait_until("the POST to arrive", 10, || async {
        !fake.create_requests().is_empty()
    })
    .await;
    let server = server
        .restart(HashMap::new(), |app| app.dispatch.enabled = false)
        .await;
    // The first server finished the send before stopping: SENT, nothing left to do.
    let mut alice = server.user("alice").await;
    let sent = alice.message(&m.contact_id, &m.id).await;
    assert_eq!(sent.status, MessageStatus::Sent as i32);
    assert_eq!(sent.provider_sid, fake.messages()[0].sid);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_content_fails_the_message_even_mid_send() {
    use sea_orm::{ConnectionTrait, Statement};
    let (fake, server) = setup(&Backend::Sqlite, &[]).await;
    fake.go_down();
    let mut alice = server.user("alice").await;
    let m = alice.send(FROM, TO, "will be corrupted").await.unwrap();
    // An earlier attempt left it SENDING (outcome unknown); its ciphertext is then damaged.
    let store = server.store().await;
    let sql = format!(
        "UPDATE messages SET status = 'sending', body_ct = substr(body_ct, 1, length(body_ct) - 1) || X'00' WHERE id = '{}'",
        m.id
    );
    store
        .conn()
        .execute_raw(Statement::from_string(store.backend(), sql))
        .await
        .unwrap();
    // The API answers DATA_LOSS for this message, so read its status from the store.
    let row = || async {
        messaging_grpc::store::messages::find(store.conn(), "alice", &m.id)
            .await
            .unwrap()
            .unwrap()
    };
    wait_until("the corrupt message to fail", 15, || async {
        row().await.status == "failed"
    })
    .await;
    assert!(
        row()
            .await
            .error_message
            .unwrap_or_default()
            .contains("integrity")
    );
    assert_eq!(
        messaging_grpc::store::outbox::pending_any(store.conn())
            .await
            .unwrap(),
        0,
        "no job left behind"
    );
    server.stop().await;
}
