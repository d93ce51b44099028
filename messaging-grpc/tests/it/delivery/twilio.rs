//! Twilio's answers through the fake on loopback: success, retries, permanent errors,
//! an outage, dropped connections, timeouts and crashes (reconciled, never resent),
//! answers lost while Twilio holds the message, and the credentials used.

use super::*;

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
        // Twilio has it, and we only know that it may: SENDING. (Read before the
        // restart: the next process settles it at once, so after it this would race.)
        let store = server.store().await;
        let row = messaging_grpc::store::messages::find(store.conn(), "alice", &m.id).await.unwrap().unwrap();
        assert_eq!(row.status, "sending");
        store.close().await.unwrap();

        // "Kill" the process: the dispatcher abandons the hung send without writing.
        let server = server.restart(HashMap::new(), |_| {}).await;
        let mut alice = server.user("alice").await;
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
        // Refused for our credentials every time: certainly not sent, each an attempt.
        let refused = || Scripted::Error { status: 401, code: 20003, message: "Authenticate".into() };
        fake.script((0..10).map(|_| refused()));
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "never").await.unwrap();
        let failed = alice.wait_status(&m, MessageStatus::Failed, 15).await;
        assert!(failed.error_message.contains("gave up after 3 attempts"), "{}", failed.error_message);
        assert_eq!(fake.create_requests().len(), 3);
        server.stop().await;
    }

    async fn too_many_requests_are_not_attempts(backend: Backend) {
        // Twilio never processed a request it answered 429: with three attempts
        // allowed, five 429s in a row still end in one SMS.
        let (fake, server) = setup(&backend, &[("OUTBOX_MAX_ATTEMPTS", "3")]).await;
        fake.script((0..5).map(|_| Scripted::TooManyRequests { retry_after: None }));
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "busy, then sent").await.unwrap();
        alice.wait_status(&m, MessageStatus::Sent, 15).await;
        assert_eq!(fake.create_requests().len(), 6);
        assert_eq!(fake.created_count(), 1);
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
}
