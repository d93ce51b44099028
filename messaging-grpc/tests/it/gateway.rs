//! The webhook gateway end to end: signed HTTP posts → gateway → MessagingIngest on
//! the real core → what GetConversation shows.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use commpro_messaging_api::v1::MessageStatus;
use messaging_grpc::provider::{Outgoing, ProviderMessage, SendError, SmsProvider};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use twilio_fake::FakeTwilio;
use webhook_gateway::{GatewayConfig, signature};

use crate::{backend_tests, helpers::*};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";
const PUBLIC_URL: &str = "https://hooks.commpro.example";
const ACCOUNT: &str = twilio_fake::ACCOUNT_SID;
const TOKEN: &str = twilio_fake::AUTH_TOKEN;

pub(crate) struct Gateway {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    pub http: reqwest::Client,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn gateway(core: &str, extra: &[(&str, &str)]) -> Gateway {
    gateway_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), core, extra).await
}

/// A gateway on an already bound listener (so the core can be told its URL first).
pub(crate) async fn gateway_on(
    listener: TcpListener,
    core: &str,
    extra: &[(&str, &str)],
) -> Gateway {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("MESSAGING_CORE_URL".into(), core.to_owned()),
        ("GATEWAY_PUBLIC_URL".into(), PUBLIC_URL.into()),
        ("TWILIO_ACCOUNT_SID".into(), ACCOUNT.into()),
        ("TWILIO_AUTH_TOKEN".into(), TOKEN.into()),
        ("JWT_HS256_SECRET".into(), SECRET.into()),
        ("MEDIA_URL_SECRET".into(), MEDIA_SECRET.into()),
    ]);
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = GatewayConfig::from_vars(&|k| vars.get(k).cloned()).unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(webhook_gateway::serve(config, listener, shutdown.clone()));
    Gateway {
        addr,
        shutdown,
        http: reqwest::Client::new(),
    }
}

pub(crate) fn inbound_form(sid: &str, from: &str, to: &str, body: &str) -> Vec<(String, String)> {
    [
        ("MessageSid", sid),
        ("SmsMessageSid", sid),
        ("AccountSid", ACCOUNT),
        ("From", from),
        ("To", to),
        ("Body", body),
        ("NumMedia", "0"),
        ("ApiVersion", "2010-04-01"),
        ("ToCountry", "US"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub(crate) fn status_form(
    sid: &str,
    status: &str,
    error_code: Option<&str>,
) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = [
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT),
        ("MessageStatus", status),
        ("SmsStatus", status),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(code) = error_code {
        f.push(("ErrorCode".into(), code.into()));
    }
    f
}

impl Gateway {
    /// POSTs `form` signed as Twilio would for PUBLIC_URL + `path`.
    pub async fn post(&self, path: &str, form: &[(String, String)]) -> (u16, String, String) {
        let sig = signature::compute(TOKEN.as_bytes(), &format!("{PUBLIC_URL}{path}"), form);
        self.post_raw(path, form, Some(&sig)).await
    }

    async fn post_raw(
        &self,
        path: &str,
        form: &[(String, String)],
        sig: Option<&str>,
    ) -> (u16, String, String) {
        let mut req = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .form(form);
        if let Some(sig) = sig {
            req = req.header("X-Twilio-Signature", sig);
        }
        let resp = req.send().await.unwrap();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (resp.status().as_u16(), ct, resp.text().await.unwrap())
    }
}

/// A form as sent: name/value pairs.
type Form = [(String, String)];

const TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

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

#[tokio::test]
async fn http_limits_methods_and_paths() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let gw = gateway(
        &format!("http://{}", server.addr),
        &[("GATEWAY_MAX_BODY_BYTES", "65536")],
    )
    .await;
    let big = inbound_form(
        "SM0000000000000000000000000000ab01",
        BOB,
        OWN,
        &"x".repeat(70 * 1024),
    );
    assert_eq!(gw.post("/webhook/sms", &big).await.0, 413);
    let url = |p: &str| format!("http://{}{p}", gw.addr);
    let status =
        |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().status().as_u16() };
    assert_eq!(status(gw.http.get(url("/webhook/sms"))).await, 405);
    assert_eq!(status(gw.http.post(url("/nope"))).await, 404);
    assert_eq!(status(gw.http.get(url("/healthz"))).await, 200);
    assert_eq!(status(gw.http.get(url("/readyz"))).await, 200);
    let json = gw
        .http
        .post(url("/webhook/sms"))
        .header("content-type", "application/json")
        .header("X-Twilio-Signature", "AAAA")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json.status().as_u16(),
        403,
        "a JSON body without a valid bodySHA256 signature"
    );
    server.stop().await;
}

#[tokio::test]
async fn per_source_rate_limit() {
    let server = TestServer::start(&Backend::Sqlite).await;
    server.assign(OWN, "alice").await;
    let gw = gateway(
        &format!("http://{}", server.addr),
        &[("GATEWAY_RATE_LIMIT_PER_SEC", "2")],
    )
    .await;
    // A flood of forged webhooks (a signature, but not with our token), fired together
    // so the outcome does not depend on how fast each request is.
    let gw = std::sync::Arc::new(gw);
    let posts: Vec<_> = (0..12)
        .map(|i| {
            let gw = gw.clone();
            tokio::spawn(async move {
                let form = inbound_form(
                    &format!("SM00000000000000000000000000a1{i:04}"),
                    BOB,
                    OWN,
                    "burst",
                );
                let sig = signature::compute(
                    b"not-our-token",
                    &format!("{PUBLIC_URL}/webhook/sms"),
                    &form,
                );
                gw.post_raw("/webhook/sms", &form, Some(&sig)).await.0
            })
        })
        .collect();
    let mut codes = Vec::new();
    for p in posts {
        codes.push(p.await.unwrap());
    }
    assert!(
        codes.iter().filter(|&&c| c == 403).count() >= 4,
        "the burst allowance is refused for its signature: {codes:?}"
    );
    assert!(codes.contains(&429), "a flood is refused: {codes:?}");
    assert!(codes.iter().all(|c| [403, 429].contains(c)), "{codes:?}");
    let mut alice = server.user("alice").await;
    assert!(
        alice.list(10, "").await.unwrap().conversations.is_empty(),
        "nothing reached the core"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_twilio_signed_webhook_is_never_refused_by_the_rate_limit() {
    let server = TestServer::start(&Backend::Sqlite).await;
    server.assign(OWN, "alice").await;
    // 1 a second, bursts of 2, for this one address (127.0.0.1).
    let gw = gateway(
        &format!("http://{}", server.addr),
        &[("GATEWAY_RATE_LIMIT_PER_SEC", "1")],
    )
    .await;
    let forged = |i: usize| {
        let form = inbound_form(
            &format!("SM00000000000000000000000000f6{i:04}"),
            BOB,
            OWN,
            "forged",
        );
        let sig = signature::compute(
            b"not-our-token",
            &format!("{PUBLIC_URL}/webhook/sms"),
            &form,
        );
        (form, sig)
    };
    // Exhaust the address's budget with forged webhooks: 403, then 429.
    let mut codes = Vec::new();
    for i in 0..20 {
        let (form, sig) = forged(i);
        let code = gw.post_raw("/webhook/sms", &form, Some(&sig)).await.0;
        codes.push(code);
        if code == 429 {
            break;
        }
    }
    assert_eq!((codes[0], codes.last()), (403, Some(&429)), "{codes:?}");
    // Twilio's own webhooks from the same address, more than the whole burst: each is
    // answered with TwiML and stored.
    for i in 0..6 {
        let form = inbound_form(
            &format!("SM000000000000000000000000000c{i:04}"),
            BOB,
            OWN,
            &format!("signed {i}"),
        );
        let (status, ct, body) = gw.post("/webhook/sms", &form).await;
        assert_eq!(
            (status, ct.as_str(), body.as_str()),
            (200, "text/xml", TWIML),
            "signed {i}"
        );
    }
    // Forged and unsigned ones are still refused (a second may have refilled a unit or
    // two; never more than the burst).
    let mut codes = Vec::new();
    for i in 20..25 {
        let (form, sig) = forged(i);
        codes.push(gw.post_raw("/webhook/sms", &form, Some(&sig)).await.0);
        codes.push(gw.post_raw("/webhook/sms", &form, None).await.0);
    }
    assert!(codes.contains(&429), "{codes:?}");
    assert!(codes.iter().all(|c| [403, 429].contains(c)), "{codes:?}");

    let mut alice = server.user("alice").await;
    let list = alice.list(10, "").await.unwrap();
    assert_eq!(list.conversations.len(), 1);
    assert_eq!(
        list.conversations[0].unread_count, 6,
        "the signed ones, and only them"
    );
    let page = alice
        .get(&list.conversations[0].contact_id, 20, "")
        .await
        .unwrap();
    assert!(page.messages.iter().all(|m| m.body.starts_with("signed ")));
    server.stop().await;
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

#[tokio::test]
async fn a_slow_client_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(&Backend::Sqlite).await;
    let gw = gateway(
        &format!("http://{}", server.addr),
        &[("GATEWAY_READ_TIMEOUT_SECS", "1")],
    )
    .await;
    let mut conn = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    // Headers announce a body that then trickles in slower than the timeout allows.
    conn.write_all(
        b"POST /webhook/sms HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: AAAA\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nFrom=",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if conn.write_all(b"1").await.is_err() {
                break;
            }
        }
        let _ = conn.read_to_end(&mut answer).await;
    })
    .await;
    assert!(read.is_ok(), "the gateway did not cut the slow client off");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "expected 408, got {text:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(&Backend::Sqlite).await;
    let gw = gateway(
        &format!("http://{}", server.addr),
        &[("GATEWAY_READ_TIMEOUT_SECS", "1")],
    )
    .await;
    let mut conn = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(b"POST /webhook/sms HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stayed open");
    server.stop().await;
}
