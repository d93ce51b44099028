//! What becomes of a queued job besides Twilio's answer: STOP per sender number, a
//! released number, the validity window, an expired claim, a parked callback, a status
//! Twilio added later (kept aside), and a missing master key (retryable, not data loss).

use super::*;

backend_tests! {
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
        assert!(!outbox::reschedule_held(db, &first, 1, outbox::Due::At(messaging_grpc::store::now()), Some("x")).await.unwrap());
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

    async fn a_status_twilio_added_later_is_kept_aside_not_applied(backend: Backend) {
        use messaging_grpc::store::ingest;
        let (_fake, server) = setup(&backend, &[]).await;
        let mut alice = server.user("alice").await;
        let m = alice.send(FROM, TO, "to be reported oddly").await.unwrap();
        alice.wait_status(&m, MessageStatus::Sent, 10).await;
        let store = server.store().await;
        let row = messaging_grpc::store::messages::find(store.conn(), "alice", &m.id).await.unwrap().unwrap();
        let sid = row.provider_sid.clone().unwrap();
        let gateway = server.gateway_token();
        let mut ingest = pb::messaging_ingest_client::MessagingIngestClient::new(server.channel().await);
        let report = |status: &str| {
            authed(pb::RecordStatusRequest { message_sid: sid.clone(), status: status.into(), ..Default::default() }, &gateway)
        };
        let answer = ingest.record_status(report("brand_new")).await.unwrap().into_inner();
        assert_eq!(answer.outcome, pb::StatusOutcome::UnknownStatus as i32);
        // What Twilio would never send is refused, not stored.
        for odd in ["Delivered!", &"x".repeat(33), ""] {
            let err = ingest.record_status(report(odd)).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{odd}");
            assert!(err.message().starts_with("status"), "{}", err.message());
        }
        let kept: Vec<String> = ingest::parked_for_any(store.conn(), &sid).await.unwrap().into_iter().map(|p| p.status).collect();
        assert_eq!(kept, ["brand_new"], "kept aside for an operator");
        let row = messaging_grpc::store::messages::find(store.conn(), "alice", &m.id).await.unwrap().unwrap();
        assert_eq!(row.status, "sent", "not applied");
        // Known statuses still apply, and the odd one stays aside.
        let answer = ingest.record_status(report("delivered")).await.unwrap().into_inner();
        assert_eq!(answer.outcome, pb::StatusOutcome::Applied as i32);
        alice.wait_status(&m, MessageStatus::Delivered, 10).await;
        assert_eq!(ingest::parked_for_any(store.conn(), &sid).await.unwrap().len(), 1);
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
