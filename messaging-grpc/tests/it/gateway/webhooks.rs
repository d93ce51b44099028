//! Twilio's signed webhooks through the gateway into the real core: inbound messages
//! (short codes, duplicates, unowned numbers, STOP/START), forged or altered requests
//! refused, status callbacks out of order or before our send's transaction, and a
//! core that is down (503, nothing lost).

use super::*;

backend_tests! {
    async fn signed_inbound_shows_up_decrypted_with_unread_count(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let gw = gateway(&format!("http://{}", server.addr), &[]).await;
        let (status, ct, body) = gw.post("/webhook/sms", &inbound_form("SM0000000000000000000000000000aa01", BOB, OWN, "Café ✓ 😀")).await;
        assert_eq!((status, ct.as_str(), body.as_str()), (200, "text/xml", TWIML));
        gw.post("/webhook/sms", &inbound_form("SM0000000000000000000000000000aa02", BOB, OWN, "second")).await;

        let mut alice = server.user("alice").await;
        let list = alice.list(10, "").await.unwrap();
        assert_eq!(list.conversations.len(), 1);
        assert_eq!(list.conversations[0].unread_count, 2);
        let page = alice.get(&list.conversations[0].contact_id, 10, "").await.unwrap();
        let bodies: Vec<_> = page.messages.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["second", "Café ✓ 😀"]);
        assert_eq!(page.messages[1].status, MessageStatus::Received as i32);
        assert_eq!(page.messages[1].provider_sid, "SM0000000000000000000000000000aa01");
        server.stop().await;
    }

    async fn inbound_to_a_short_code_is_stored_and_answered_from_it(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign("89821", "alice").await;
        let gw = gateway(&format!("http://{}", server.addr), &[]).await;
        let (status, _, body) = gw.post("/webhook/sms", &inbound_form("SM00000000000000000000000000005c01", BOB, "89821", "JOIN")).await;
        assert_eq!((status, body.as_str()), (200, TWIML));
        let mut alice = server.user("alice").await;
        let list = alice.list(10, "").await.unwrap();
        assert_eq!((list.conversations.len(), list.conversations[0].owner_number.as_str()), (1, "89821"));
        let reply = alice.send("89821", BOB, "Welcome!").await.unwrap();
        assert_eq!(reply.owner_number, "89821");
        server.stop().await;
    }

    async fn a_webhook_redelivered_after_the_number_changed_hands_is_a_duplicate(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let first = server.inbound("SM0000000000000000000000000000bb02", BOB, OWN, "for alice").await;
        server
            .admin()
            .await
            .call(|c, r| Box::pin(c.release_number(r)), commpro_messaging_api::v1::ReleaseNumberRequest { number: OWN.into() })
            .await
            .unwrap();
        server.assign(OWN, "carol").await;
        // Twilio retries the same delivery: stored once, under alice, nothing for carol.
        let again = server.inbound("SM0000000000000000000000000000bb02", BOB, OWN, "for alice").await;
        assert_eq!(again.id, first.id);
        assert!(server.user("carol").await.list(10, "").await.unwrap().conversations.is_empty());
        assert_eq!(server.user("alice").await.list(10, "").await.unwrap().conversations.len(), 1);
        server.stop().await;
    }

    async fn duplicate_message_sid_is_stored_once(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let gw = gateway(&format!("http://{}", server.addr), &[]).await;
        let form = inbound_form("SM0000000000000000000000000000bb01", BOB, OWN, "twice");
        for _ in 0..3 {
            assert_eq!(gw.post("/webhook/sms", &form).await.0, 200);
        }
        // Concurrent duplicates too.
        let posts: Vec<_> = (0..4).map(|_| gw.post("/webhook/sms", &form)).collect();
        for (status, _, _) in futures_join(posts).await {
            assert_eq!(status, 200);
        }
        let mut alice = server.user("alice").await;
        let conv = &alice.list(10, "").await.unwrap().conversations[0];
        assert_eq!(conv.unread_count, 1);
        assert_eq!(alice.get(&conv.contact_id.clone(), 10, "").await.unwrap().messages.len(), 1);
        server.stop().await;
    }

    async fn forged_missing_and_altered_requests_are_refused(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let gw = gateway(&format!("http://{}", server.addr), &[]).await;
        let form = inbound_form("SM0000000000000000000000000000cc01", BOB, OWN, "original");
        let good = signature::compute(TOKEN.as_bytes(), &format!("{PUBLIC_URL}/webhook/sms"), &form);
        let forged = signature::compute(b"not-our-token", &format!("{PUBLIC_URL}/webhook/sms"), &form);
        // Signed for the address the gateway listens on, not the configured public URL.
        let wrong_url = signature::compute(TOKEN.as_bytes(), &format!("http://{}/webhook/sms", gw.addr), &form);
        let altered = inbound_form("SM0000000000000000000000000000cc01", BOB, OWN, "altered in transit");
        let cases: Vec<(&Form, Option<&str>)> = vec![
            (&form, None),
            (&form, Some("")),
            (&form, Some("%%% not base64 %%%")),
            (&form, Some(&forged)),
            (&form, Some(&wrong_url)),
            (&altered, Some(&good)),
        ];
        for (f, sig) in cases {
            let (status, _, _) = gw.post_raw("/webhook/sms", f, sig).await;
            assert_eq!(status, 403, "signature {sig:?}");
        }
        // A valid signature for another Twilio account.
        let mut other = form.clone();
        other[2].1 = "AC99999999999999999999999999999999".into();
        assert_eq!(gw.post("/webhook/sms", &other).await.0, 403);
        assert!(server.user("alice").await.list(10, "").await.unwrap().conversations.is_empty(), "nothing stored");
        // The genuine one still works.
        assert_eq!(gw.post_raw("/webhook/sms", &form, Some(&good)).await.0, 200);
        server.stop().await;
    }

    async fn inbound_to_an_unowned_number_is_recorded_for_operators(backend: Backend) {
        let server = TestServer::start(&backend).await;
        let gw = gateway(&format!("http://{}", server.addr), &[]).await;
        let (status, _, _) = gw.post("/webhook/sms", &inbound_form("SM0000000000000000000000000000dd01", BOB, "+15005550099", "anyone?")).await;
        assert_eq!(status, 200, "Twilio must not retry: it is recorded");
        let store = server.store().await;
        let rows = messaging_grpc::store::ingest::unroutable_any(store.conn(), 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].message_sid.as_str(), rows[0].to_number.as_str()), ("SM0000000000000000000000000000dd01", "+15005550099"));
        // Operators see it through the admin API.
        let mut admin = server.admin().await;
        let listed = admin
            .call(|c, r| Box::pin(c.list_unroutable(r)), commpro_messaging_api::v1::ListUnroutableRequest { limit: 0 })
            .await
            .unwrap();
        assert_eq!(listed.messages.len(), 1);
        // The sender masked (no user key to seal it with), our own number in clear.
        assert_eq!((listed.messages[0].from.as_str(), listed.messages[0].to.as_str()), ("+*******0100", "+15005550099"));
        server.stop().await;
    }

    async fn stop_and_start_keywords_opt_out_and_in(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        let gw = gateway(&format!("http://{}", server.addr), &[]).await;
        let mut alice = server.user("alice").await;
        gw.post("/webhook/sms", &inbound_form("SM0000000000000000000000000000ee01", BOB, OWN, " Stop ")).await;
        let err = alice.send(OWN, BOB, "are you there?").await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        gw.post("/webhook/sms", &inbound_form("SM0000000000000000000000000000ee02", BOB, OWN, "START")).await;
        alice.send(OWN, BOB, "welcome back").await.unwrap();
        server.stop().await;
    }

    async fn status_callbacks_out_of_order_end_in_the_right_state(backend: Backend) {
        let fake = FakeTwilio::start().await.unwrap();
        let server = TestServer::start_with(&backend, twilio_vars(&fake)).await;
        server.assign(OWN, "alice").await;
        let gw = gateway(&format!("http://{}", server.addr), &[]).await;
        let mut alice = server.user("alice").await;
        let m = alice.send(OWN, BOB, "track me").await.unwrap();
        let sid = alice.wait_status(&m, MessageStatus::Sent, 10).await.provider_sid;

        for status in ["delivered", "sent", "sending", "queued"] {
            let (code, _, body) = gw.post("/webhook/status", &status_form(&sid, status, None)).await;
            assert_eq!((code, body.as_str()), (200, TWIML));
        }
        let now = alice.message(&m.contact_id, &m.id).await;
        assert_eq!(now.status, MessageStatus::Delivered as i32, "an older status changed nothing");
        assert!(now.delivered_at.is_some());
        gw.post("/webhook/status", &status_form(&sid, "undelivered", Some("30003"))).await;
        assert_eq!(alice.message(&m.contact_id, &m.id).await.status, MessageStatus::Delivered as i32, "terminal");

        let m2 = alice.send(OWN, BOB, "will bounce").await.unwrap();
        let sid2 = alice.wait_status(&m2, MessageStatus::Sent, 10).await.provider_sid;
        gw.post("/webhook/status", &status_form(&sid2, "undelivered", Some("30003"))).await;
        gw.post("/webhook/status", &status_form(&sid2, "delivered", None)).await;
        let bounced = alice.message(&m2.contact_id, &m2.id).await;
        assert_eq!((bounced.status, bounced.error_code), (MessageStatus::Undelivered as i32, 30003));

        // Extra parameters are fine; a status Twilio never reports is refused by name
        // (a signed form re-split could otherwise make one up), and nothing changes.
        let mut extra = status_form(&sid2, "delivered", None);
        extra.push(("BrandNewTwilioParam".into(), "x".into()));
        assert_eq!(gw.post("/webhook/status", &extra).await.0, 200);
        let (code, _, body) = gw.post("/webhook/status", &status_form(&sid2, "teleported", None)).await;
        assert_eq!(code, 400, "{body}");
        assert!(body.starts_with("MessageStatus:"), "{body}");
        assert_eq!(alice.message(&m2.contact_id, &m2.id).await.status, MessageStatus::Undelivered as i32);
        server.stop().await;
    }

    async fn callback_before_our_send_transaction_is_parked_then_applied(backend: Backend) {
        let fake = FakeTwilio::start().await.unwrap();
        let (sid_tx, mut sid_rx) = tokio::sync::mpsc::channel::<String>(1);
        let release = Arc::new(tokio::sync::Notify::new());
        let gate = release.clone();
        let server = TestServer::start_custom(&backend, twilio_vars(&fake), move |app| {
            app.provider = Arc::new(HoldAnswer { inner: app.provider.clone(), sid: sid_tx, release: gate });
        })
        .await;
        server.assign(OWN, "alice").await;
        let gw = gateway(&format!("http://{}", server.addr), &[]).await;
        let mut alice = server.user("alice").await;
        let m = alice.send(OWN, BOB, "fast carrier").await.unwrap();
        let sid = tokio::time::timeout(Duration::from_secs(10), sid_rx.recv()).await.unwrap().unwrap();
        // Twilio's callback overtakes our own write of the SID.
        let (status, _, _) = gw.post("/webhook/status", &status_form(&sid, "delivered", None)).await;
        assert_eq!(status, 200);
        assert_eq!(alice.message(&m.contact_id, &m.id).await.status, MessageStatus::Sending as i32);
        release.notify_one();
        let delivered = alice.wait_status(&m, MessageStatus::Delivered, 10).await;
        assert_eq!(delivered.provider_sid, sid);
        server.stop().await;
    }
}

async fn futures_join<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let handles: Vec<_> = futs.into_iter().map(Box::pin).collect();
    for h in handles {
        out.push(h.await);
    }
    out
}

/// Reports the SID Twilio gave, then holds the answer until released: the callback
/// for that SID arrives before our transaction records it.
struct HoldAnswer {
    inner: Arc<dyn SmsProvider>,
    sid: tokio::sync::mpsc::Sender<String>,
    release: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl SmsProvider for HoldAnswer {
    fn name(&self) -> &'static str {
        "hold-answer"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<ProviderMessage, SendError> {
        let answer = self.inner.send(msg).await?;
        let _ = self.sid.send(answer.sid.clone()).await;
        self.release.notified().await;
        Ok(answer)
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
async fn core_down_answers_503_and_nothing_is_lost_when_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let core_addr = format!("127.0.0.1:{port}");
    let gw = gateway(&format!("http://{core_addr}"), &[]).await;
    let form = inbound_form(
        "SM0000000000000000000000000000ff01",
        BOB,
        OWN,
        "while the core was down",
    );
    let (status, _, _) = gw.post("/webhook/sms", &form).await;
    assert_eq!(status, 503, "Twilio retries or uses its fallback URL");
    let ready = reqwest::get(format!("http://{}/readyz", gw.addr))
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(ready, 503);

    let server = TestServer::start_with(
        &Backend::Sqlite,
        HashMap::from([("TEST_BIND_ADDR", core_addr.clone())]),
    )
    .await;
    server.assign(OWN, "alice").await;
    // Twilio's retry of the same webhook.
    let mut status = 0;
    for _ in 0..50 {
        status = gw.post("/webhook/sms", &form).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    wait_until("readiness", 10, || async {
        reqwest::get(format!("http://{}/readyz", gw.addr))
            .await
            .unwrap()
            .status()
            .as_u16()
            == 200
    })
    .await;
    let mut alice = server.user("alice").await;
    let conv = &alice.list(10, "").await.unwrap().conversations[0];
    assert_eq!(
        conv.last_message.as_ref().unwrap().body,
        "while the core was down"
    );
    server.stop().await;
}
