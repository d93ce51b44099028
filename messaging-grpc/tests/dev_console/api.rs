//! The console's HTTP face without a browser: where it is served, who may use it, and
//! the phone's round trips through the real gateway and core.

use std::{collections::HashMap, net::IpAddr};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    png,
    stack::{Dev, eventually},
};

const BOB: &str = "+14155550100";

/// Every console path answers the gateway's plain 404 when the gateway runs without
/// the console: `webhook_gateway::serve` is what the standalone `webhook-gateway`
/// binary runs (and `messaging serve` has no HTTP listener at all).
#[tokio::test]
async fn the_gateway_without_messaging_dev_has_no_dev_paths() {
    let vars = HashMap::from([
        ("MESSAGING_CORE_URL", "http://127.0.0.1:9".to_owned()),
        ("GATEWAY_PUBLIC_URL", "https://hooks.example".to_owned()),
        ("TWILIO_ACCOUNT_SID", format!("AC{}", "0".repeat(32))),
        ("TWILIO_AUTH_TOKEN", "token".to_owned()),
        ("JWT_HS256_SECRET", "s".repeat(32)),
        ("MEDIA_URL_SECRET", "m".repeat(32)),
    ]);
    let config = webhook_gateway::GatewayConfig::from_vars(&|k| vars.get(k).cloned()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(webhook_gateway::serve(config, listener, shutdown.clone()));
    let http = reqwest::Client::new();
    for path in [
        "/dev",
        "/dev/",
        "/dev/assets/main.js",
        "/dev/api/phones/%2B14155550100/messages",
        "/dev/phone-media/00",
    ] {
        let resp = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 404, "GET {path}");
        assert_eq!(resp.text().await.unwrap(), "not found\n");
    }
    for path in ["/dev/api/tokens", "/dev/api/phones/%2B14155550100/reply"] {
        let resp = http
            .post(format!("{base}{path}"))
            .json(&json!({"userId": "eve"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "POST {path}");
    }
    shutdown.cancel();
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_a_strict_policy() {
    let dev = Dev::start().await;
    let page = dev.http.get(dev.url("/dev")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        page.headers()["content-type"],
        "text/html; charset=utf-8",
        "{csp}"
    );
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));
    assert!(!csp.contains("unsafe"), "no inline script or style: {csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/dev/assets/main.js">"#));
    for (file, ty) in [
        ("main.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let resp = dev
            .http
            .get(dev.url(&format!("/dev/assets/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{file}");
        assert_eq!(resp.headers()["content-type"], ty, "{file}");
    }
    let missing = dev.http.get(dev.url("/dev/assets/nope.js")).send().await;
    assert_eq!(missing.unwrap().status(), 404);
}

/// A loopback peer is not enough: a tunnel's or proxy's forwarding headers, another
/// host name (DNS rebinding) or another site's page are refused; so is a peer on
/// another address of this machine.
#[tokio::test]
async fn only_this_machine_may_use_the_console() {
    let dev = Dev::start_on("0.0.0.0".parse().unwrap()).await;
    let refused = [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("host", "abc.ngrok.app"),
        ("host", "rebound.example:3003"),
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ];
    for (name, value) in refused {
        let resp = dev
            .http
            .post(dev.url("/dev/api/tokens"))
            .header(name, value)
            .json(&json!({"userId": "eve"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{name}: {value}");
        assert!(!resp.text().await.unwrap().contains("token"));
    }
    // The same gateway from another address of this machine (when it has one).
    if let Some(ip) = non_loopback_ip() {
        let port = dev.base.rsplit(':').next().unwrap();
        let url = format!("http://{ip}:{port}/dev");
        let resp = dev.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{url}");
        let health = dev.http.get(format!("http://{ip}:{port}/healthz")).send();
        assert_eq!(
            health.await.unwrap().status(),
            200,
            "the rest still answers"
        );
    } else {
        eprintln!("no non-loopback address on this machine: that case is not exercised");
    }
    let ok = dev
        .post_dev("/dev/api/tokens", json!({"userId": "eve"}))
        .await;
    assert_eq!(ok.0, 200, "{ok:?}");
}

/// This machine's address on its default route, if it has one.
fn non_loopback_ip() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn bad_requests_name_their_field() {
    let dev = Dev::start().await;
    let cases = [
        ("/dev/api/tokens", json!({"userId": ""}), "userId"),
        (
            "/dev/api/tokens",
            json!({"userId": "a", "role": "admin"}),
            "role",
        ),
        (
            "/dev/api/phones/14155550100/reply",
            json!({"to": "+16285550100", "body": "x"}),
            "number",
        ),
        (
            "/dev/api/phones/%2B14155550100/reply",
            json!({"to": "nope", "body": "x"}),
            "to",
        ),
        (
            "/dev/api/phones/%2B14155550100/reply",
            json!({"to": "+16285550100"}),
            "body",
        ),
        (
            "/dev/api/phones/%2B14155550100/reply",
            json!({"to": "+16285550100", "mediaUrl": "ftp://x/y.png"}),
            "mediaUrl",
        ),
        (
            "/dev/api/phones/%2B14155550100/next-delivery",
            json!({"errorCode": 42}),
            "errorCode",
        ),
    ];
    for (path, body, field) in cases {
        let (status, text) = dev.post_dev(path, body.clone()).await;
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some(field)),
            "{path} {body}: {text}"
        );
    }
    // Not JSON: refused before anything is done (another site's form could not send it).
    let form = dev
        .http
        .post(dev.url("/dev/api/tokens"))
        .header("content-type", "text/plain")
        .body(r#"{"userId":"eve"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
}

/// Send → the phone shows it delivered; reply → the gateway answers TwiML and the
/// inbox counts it unread; an armed 30003 comes back through the status callback as
/// `undelivered` with its code, 21610 as a refused create; an image reply is copied
/// for real from where the phone serves it.
#[tokio::test]
async fn the_phone_round_trips_through_the_real_gateway() {
    let dev = Dev::start().await;
    let (token, own) = dev.user("alice").await;
    assert_eq!(own, "+16285550100", "the first dev number");
    let (_, bobs_user_number) = dev.user("bob").await;
    assert_ne!(
        bobs_user_number, own,
        "each user gets a number of their own"
    );
    let (again, same) = dev.user("alice").await;
    assert_eq!(same, own, "a user keeps their number");
    assert_ne!(again, "");

    let send = |body: &'static str| {
        let (dev, token, own) = (&dev, token.clone(), own.clone());
        async move {
            let resp = dev
                .http
                .post(dev.url("/api/messages/send"))
                .bearer_auth(token)
                .json(&json!({"from": own, "to": BOB, "body": body}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let sent: Value = resp.json().await.unwrap();
            sent["messageId"].as_str().unwrap().to_owned()
        }
    };
    let first = send("Hello Bob").await;
    let delivered = eventually("the phone to show the message delivered", || async {
        let view = dev.phone(BOB).await;
        let m = view["messages"].as_array()?.first()?.clone();
        (m["status"] == "delivered").then_some(m)
    })
    .await;
    assert_eq!(delivered["body"], "Hello Bob");
    assert_eq!(delivered["from"], own.as_str());
    let message = |id: String| {
        let (dev, token) = (&dev, token.clone());
        async move {
            let page = dev.get(&token, "/api/messages/conversations").await;
            let contact = page["conversations"][0]["contactId"].as_str()?.to_owned();
            let thread = dev
                .get(&token, &format!("/api/messages/conversations/{contact}"))
                .await;
            thread["messages"]
                .as_array()?
                .iter()
                .find(|m| m["id"] == id.as_str())
                .cloned()
        }
    };
    // The receipt reached the core as a signed status callback.
    eventually("the core to record the delivery", || {
        let id = first.clone();
        let message = &message;
        async move { message(id).await.filter(|m| m["status"] == "delivered") }
    })
    .await;

    // The reply: Twilio's form, signed, through /webhook/sms.
    let reply_path = format!("/dev/api/phones/{}/reply", BOB.replace('+', "%2B"));
    let resp = dev
        .http
        .post(dev.url(&reply_path))
        .json(&json!({"to": own, "body": "Hi back"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/xml");
    assert!(resp.text().await.unwrap().contains("<Response/>"));
    let page = dev.get(&token, "/api/messages/conversations").await;
    let c = &page["conversations"][0];
    assert_eq!(
        (c["unreadCount"].as_u64(), c["lastMessage"]["body"].as_str()),
        (Some(1), Some("Hi back"))
    );

    // A delivery failure, reported as Twilio reports it.
    let armed = dev
        .post_dev(
            &format!("/dev/api/phones/{}/next-delivery", BOB.replace('+', "%2B")),
            json!({"errorCode": 30003}),
        )
        .await;
    assert_eq!(armed.0, 200, "{armed:?}");
    assert_eq!(dev.phone(BOB).await["nextDeliveryErrorCode"], 30003);
    let failing = send("Are you there?").await;
    let m = eventually("the message to be undelivered", || {
        let id = failing.clone();
        let message = &message;
        async move { message(id).await.filter(|m| m["status"] == "undelivered") }
    })
    .await;
    assert_eq!(m["errorCode"], 30003);
    let view = dev.phone(BOB).await;
    let last = view["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["status"].as_str(), last["errorCode"].as_i64()),
        (Some("undelivered"), Some(30003))
    );
    assert_eq!(view["nextDeliveryErrorCode"], Value::Null, "used once");

    // A refusal at create time never reaches the phone.
    dev.post_dev(
        &format!("/dev/api/phones/{}/next-delivery", BOB.replace('+', "%2B")),
        json!({"errorCode": 21610}),
    )
    .await;
    let refused = send("Unsubscribed?").await;
    let m = eventually("the send to fail", || {
        let id = refused.clone();
        let message = &message;
        async move { message(id).await.filter(|m| m["status"] == "failed") }
    })
    .await;
    assert_eq!(m["errorCode"], 21610);
    assert_eq!(
        dev.phone(BOB).await["messages"].as_array().unwrap().len(),
        2
    );

    // An image from the phone: served by the gateway, copied by the core for real.
    let image = png::striped(32, [200, 30, 30], [255, 255, 255]);
    let uploaded: Value = dev
        .http
        .post(dev.url(&format!(
            "/dev/api/phones/{}/media",
            BOB.replace('+', "%2B")
        )))
        .header("content-type", "image/png")
        .body(image.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = uploaded["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let resp = dev
        .http
        .post(dev.url(&reply_path))
        .json(&json!({"to": own, "body": "a picture", "mediaUrl": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let media_url = eventually("the inbound image to be copied", || async {
        let page = dev.get(&token, "/api/messages/conversations").await;
        let last = &page["conversations"][0]["lastMessage"];
        let media = &last["media"][0];
        (last["body"] == "a picture" && media["state"] == "ready")
            .then(|| media["url"].as_str().unwrap().to_owned())
    })
    .await;
    let copied = dev
        .http
        .get(dev.url(&media_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(copied.headers()["content-type"], "image/png");
    assert_eq!(copied.bytes().await.unwrap().as_ref(), image.as_slice());
}
