//! The gateway's HTTP limits: methods, paths and sizes, the per-source rate limit
//! (never refusing a signed Twilio webhook), and slow clients cut off.

use super::*;

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
