//! CORS for the configured origins only, and the security headers on every answer.

use super::*;

async fn preflight(rest: &Rest, origin: &str) -> Answer {
    rest.call_with(
        Method::OPTIONS,
        "/api/messages/send",
        None,
        Body::None,
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_for_configured_origins_and_security_headers_everywhere() {
    let (server, gw, rest) = stack(
        &Backend::Sqlite,
        &[(
            "GATEWAY_CORS_ALLOWED_ORIGINS",
            "https://app.commpro.example",
        )],
    )
    .await;
    let alice = server.token("alice");
    let ok = preflight(&rest, "https://app.commpro.example").await;
    assert!(ok.status < 300, "{}", ok.status);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.commpro.example")
    );
    let allowed = ok
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert!(
        ok.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );

    let evil = preflight(&rest, "https://evil.example").await;
    assert_eq!(evil.header("access-control-allow-origin"), None);

    let a = rest
        .call_with(
            Method::GET,
            "/api/messages/conversations",
            Some(&alice),
            Body::None,
            &[("origin", "https://app.commpro.example")],
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://app.commpro.example")
    );
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        assert_eq!(a.header(name), Some(value), "{name}");
    }
    assert!(
        a.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(a.header("strict-transport-security").is_some());

    // The Twilio side gets them too.
    let health = gw
        .http
        .get(format!("http://{}/healthz", gw.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");

    // Without configured origins there are no CORS headers at all.
    let (_s2, _gw2, plain) = stack(&Backend::Sqlite, &[]).await;
    let none = plain
        .call_with(
            Method::GET,
            "/api/messages/conversations",
            Some(&alice),
            Body::None,
            &[("origin", "https://app.commpro.example")],
        )
        .await;
    assert_eq!(none.header("access-control-allow-origin"), None);
}
