//! Scheduled sends over gRPC: sent once at their time, across a restart, canceled
//! before but not during, and bad send times refused naming `send_at`.

use super::*;

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
}
