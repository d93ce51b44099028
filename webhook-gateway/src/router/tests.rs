//! The router's answers as clients see them, without a core (its address is closed):
//! which face answers, with which status, headers and body.

use axum::body::Body;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::twilio::signature;

const PUBLIC_URL: &str = "https://hooks.example";
const TOKEN: &str = "12345";
/// Our account and a message of it, in Twilio's formats.
const AC: &str = "AC0123456789abcdef0123456789abcdef";
const SM: &str = "SM00000000000000000000000000000001";

fn app() -> Router {
    app_with(&[])
}

/// The router with `extra` variables on top of the test ones.
fn app_with(extra: &[(&str, &str)]) -> Router {
    app_shutting_down(extra, CancellationToken::new())
}

/// The router with `extra` variables, stopping when `shutdown` is cancelled.
fn app_shutting_down(extra: &[(&str, &str)], shutdown: CancellationToken) -> Router {
    let vars = [
        ("MESSAGING_CORE_URL", "http://127.0.0.1:9"),
        ("GATEWAY_PUBLIC_URL", PUBLIC_URL),
        ("TWILIO_ACCOUNT_SID", AC),
        ("TWILIO_AUTH_TOKEN", TOKEN),
        ("JWT_HS256_SECRET", "secret"),
        ("GATEWAY_MAX_BODY_BYTES", "1024"),
    ];
    let get = |k: &str| {
        extra
            .iter()
            .chain(vars.iter())
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    };
    let config = GatewayConfig::from_vars(&get).unwrap();
    let core = Core::from_config(&config).unwrap();
    router(config, core, shutdown)
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

async fn call(req: hyper::Request<Body>) -> Answer {
    call_on(&app(), req).await
}

/// `req` answered by `app`, which keeps its state (the rate limit) across calls.
async fn call_on(app: &Router, req: hyper::Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn send(method: Method, path: &str) -> Answer {
    call(
        hyper::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

/// A signed webhook post of `form` to `path`.
fn signed(path: &str, form: &[(&str, &str)]) -> hyper::Request<Body> {
    signed_as(TOKEN, &format!("{PUBLIC_URL}{path}"), path, form)
}

/// A webhook post of `form` to `path`, signed with `token` for `url`.
fn signed_as(token: &str, url: &str, path: &str, form: &[(&str, &str)]) -> hyper::Request<Body> {
    let pairs: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let sig = signature::compute(token.as_bytes(), url, &pairs);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    hyper::Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn health_takes_get_only() {
    let ok = send(Method::GET, "/healthz").await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "ok\n"));
    assert_eq!(ok.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(ok.headers["x-frame-options"], "DENY");
    assert!(ok.headers.get("cache-control").is_none());
    for method in [Method::HEAD, Method::POST] {
        let no = send(method, "/readyz").await;
        assert_eq!(
            (no.status, no.headers["allow"].to_str().unwrap()),
            (405, "GET")
        );
    }
    let down = send(Method::GET, "/readyz").await;
    assert_eq!((down.status, down.body.as_str()), (503, "core not ready\n"));
}

#[tokio::test]
async fn unknown_paths_are_plain_off_the_api_and_json_on_it() {
    let plain = send(Method::POST, "/nope").await;
    assert_eq!((plain.status, plain.body.as_str()), (404, "not found\n"));
    for path in ["/api", "/api/", "/api/nope"] {
        let json = send(Method::GET, path).await;
        assert_eq!(json.status, 404, "{path}");
        assert!(json.body.contains("\"code\":\"not_found\""), "{path}");
        assert_eq!(json.headers["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn webhooks_take_post_and_media_only_get() {
    let get = send(Method::GET, "/webhook/sms").await;
    assert_eq!(
        (get.status, get.headers["allow"].to_str().unwrap()),
        (405, "POST")
    );
    assert_eq!(get.body, "method not allowed\n");
    for method in [Method::GET, Method::HEAD, Method::POST] {
        let media = send(method.clone(), "/media/not-a-token").await;
        assert_eq!(media.status, 404, "{method}");
    }
}

#[tokio::test]
async fn webhook_signatures_are_checked_before_anything_else() {
    let form = [("MessageSid", SM), ("AccountSid", AC)];
    let mut unsigned = signed("/webhook/sms", &form);
    unsigned.headers_mut().remove("x-twilio-signature");
    let a = call(unsigned).await;
    assert_eq!((a.status, a.body.as_str()), (403, "missing signature\n"));
    let a = call(signed("/webhook/status", &form).map(|_| Body::from("MessageSid=SM2"))).await;
    assert_eq!((a.status, a.body.as_str()), (403, "invalid signature\n"));
    let big = "x".repeat(2048);
    let a = call(signed("/webhook/sms", &[("Body", &big)])).await;
    assert_eq!((a.status, a.body.as_str()), (413, "body too large\n"));
}

#[tokio::test]
async fn verified_webhooks_answer_by_form_account_and_core() {
    let a = call(signed("/webhook/status", &[("AccountSid", AC)])).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (400, "missing parameter MessageSid\n")
    );
    let form = [
        ("MessageSid", SM),
        ("AccountSid", "ACffffffffffffffffffffffffffffffff"),
        ("MessageStatus", "sent"),
    ];
    let a = call(signed("/webhook/status", &form)).await;
    assert_eq!((a.status, a.body.as_str()), (403, "unknown account\n"));
    let form = [
        ("MessageSid", SM),
        ("AccountSid", AC),
        ("MessageStatus", "sent"),
    ];
    let a = call(signed("/webhook/status", &form)).await;
    assert_eq!(
        (a.status, a.body.as_str()),
        (503, "temporarily unavailable\n")
    );
}

/// Twilio signs names and values joined without a separator, so a signed form can be
/// re-split into another with the same signature. Each re-split below is refused by
/// name (400), after the signature check (a forged one stays 403), and never reaches
/// the core (which is down here: reaching it would be a 503).
#[tokio::test]
async fn re_split_signed_webhooks_are_refused_by_name() {
    let resplit = |path: &str, signed_form: &[(&str, &str)], sent: &[(&str, &str)]| {
        let mut req = signed(path, signed_form);
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(sent)
            .finish();
        *req.body_mut() = Body::from(body);
        req
    };
    let inbound = [
        ("AccountSid", AC),
        ("Body", "hi"),
        ("From", "+14155550100"),
        ("MessageSid", SM),
        ("NumMedia", "0"),
        ("To", "+15005550006"),
    ];
    let moved = format!("{SM}NumMedia0");
    let sent = [
        ("AccountSid", AC),
        ("Body", "hi"),
        ("From", "+14155550100"),
        ("MessageSid", moved.as_str()),
        ("To", "+15005550006"),
    ];
    let a = call(resplit("/webhook/sms", &inbound, &sent)).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.starts_with("MessageSid:"), "{}", a.body);
    // The same split, but signed with another token: still a forgery first.
    let mut forged = resplit("/webhook/sms", &inbound, &sent);
    let other = signature::compute(
        b"not-our-token",
        &format!("{PUBLIC_URL}/webhook/sms"),
        &inbound
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>(),
    );
    forged
        .headers_mut()
        .insert("x-twilio-signature", other.parse().unwrap());
    assert_eq!(call(forged).await.status, 403);

    // A status callback with MessageStatus moved into the SID (SmsStatus left).
    let status = [
        ("AccountSid", AC),
        ("MessageSid", SM),
        ("MessageStatus", "delivered"),
        ("SmsStatus", "delivered"),
    ];
    let moved = format!("{SM}MessageStatusdelivered");
    let sent = [
        ("AccountSid", AC),
        ("MessageSid", moved.as_str()),
        ("SmsStatus", "delivered"),
    ];
    let a = call(resplit("/webhook/status", &status, &sent)).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.starts_with("MessageSid:"), "{}", a.body);

    // Repeated keys and SID aliases that disagree, each signed as sent.
    let sm2 = "SM00000000000000000000000000000002";
    for (form, field) in [
        (
            vec![
                ("AccountSid", AC),
                ("MessageSid", SM),
                ("MessageSid", sm2),
                ("MessageStatus", "sent"),
            ],
            "MessageSid:",
        ),
        (
            vec![
                ("AccountSid", AC),
                ("MessageSid", SM),
                ("SmsSid", sm2),
                ("MessageStatus", "sent"),
            ],
            "SmsSid:",
        ),
        (
            vec![
                ("AccountSid", AC),
                ("MessageSid", SM),
                ("MessageStatus", "teleported"),
            ],
            "MessageStatus:",
        ),
    ] {
        let a = call(signed("/webhook/status", &form)).await;
        assert_eq!(a.status, 400, "{form:?}: {}", a.body);
        assert!(a.body.starts_with(field), "{form:?}: {}", a.body);
    }
}

#[tokio::test]
async fn only_webhooks_not_signed_by_twilio_count_against_the_rate_limit() {
    // 1 a second, bursts of 2; every request here comes from the same (unknown) source.
    let app = app_with(&[("GATEWAY_RATE_LIMIT_PER_SEC", "1")]);
    let form = [
        ("MessageSid", SM),
        ("AccountSid", AC),
        ("MessageStatus", "sent"),
    ];
    let forged = || {
        signed_as(
            "not-our-token",
            &format!("{PUBLIC_URL}/webhook/status"),
            "/webhook/status",
            &form,
        )
    };
    let unsigned = || {
        let mut req = signed("/webhook/status", &form);
        req.headers_mut().remove("x-twilio-signature");
        req
    };
    // Signed webhooks, more than the burst, are never counted (no core here: 503).
    for _ in 0..5 {
        let a = call_on(&app, signed("/webhook/status", &form)).await;
        assert_eq!(a.status, 503);
    }
    // Forged ones are, after their check: 403 within the budget, then 429.
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(call_on(&app, forged()).await.status);
    }
    assert_eq!(codes[..2], [403, 403], "{codes:?}");
    assert!(codes.contains(&429), "{codes:?}");
    let a = call_on(&app, unsigned()).await;
    assert_eq!((a.status, a.body.as_str()), (429, "rate limit exceeded\n"));
    // The source is over its budget, and Twilio's own requests still get through.
    for path in ["/webhook/status", "/webhook/sms"] {
        let a = call_on(&app, signed(path, &form)).await;
        assert_ne!(a.status, 429, "{path}: {}", a.body);
    }
}

#[tokio::test]
async fn signatures_over_the_url_with_its_connection_overrides_are_twilio_s() {
    let overrides = "ct=2000&rt=6000&rc=3&rp=all";
    let app = app_with(&[("GATEWAY_CONNECTION_OVERRIDES", overrides)]);
    // Valid signatures reach the form check (400 here), whichever URL was signed.
    let form = [("AccountSid", AC)];
    let path = "/webhook/status";
    for url in [
        format!("{PUBLIC_URL}{path}#{overrides}"),
        format!("{PUBLIC_URL}{path}"),
    ] {
        let a = call_on(&app, signed_as(TOKEN, &url, path, &form)).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (400, "missing parameter MessageSid\n"),
            "{url}"
        );
    }
    let other = format!("{PUBLIC_URL}{path}#rc=5");
    let a = call_on(&app, signed_as(TOKEN, &other, path, &form)).await;
    assert_eq!(a.status, 403);
    // Without the variable, the URL with overrides is not one we know.
    let url = format!("{PUBLIC_URL}{path}#{overrides}");
    let a = call(signed_as(TOKEN, &url, path, &form)).await;
    assert_eq!(a.status, 403);
}

#[test]
fn helmet_headers_do_not_override_the_handler() {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
    security_headers(&mut h, true);
    assert_eq!(h[header::CACHE_CONTROL], "max-age=5");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
}

#[test]
fn span_names_carry_no_ids() {
    assert_eq!(
        span_name(&Method::GET, "/media/abc.def"),
        "GET /media/{token}"
    );
    assert_eq!(span_name(&Method::PUT, "/api/messages/m1/read"), "PUT /api");
    assert_eq!(span_name(&Method::GET, "/nope"), "GET unknown route");
}

#[tokio::test]
async fn readyz_says_not_ready_while_shutting_down() {
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    let req = hyper::Request::builder()
        .uri("/readyz")
        .body(Body::empty())
        .unwrap();
    let resp = app_shutting_down(&[], shutdown).oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&body).trim(), "shutting down");
}
