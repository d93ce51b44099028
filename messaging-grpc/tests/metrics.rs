#![allow(clippy::unwrap_used)]

//! Prometheus metrics of the core and the gateway, scraped over HTTP from their admin
//! addresses and parsed with a Prometheus text parser; the values are checked against
//! what this test did. Its own process, since the metrics recorder is global.

#[allow(dead_code, unused_imports, unused_macros)]
#[path = "it/helpers/mod.rs"]
mod helpers;

use std::{collections::HashMap, sync::Arc, time::Duration};

use commpro_messaging_api::v1::{self as pb, MessageStatus};
use helpers::*;
use prometheus_parse::{Scrape, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use twilio_fake::FakeTwilio;

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";
/// Twilio's magic "invalid number" recipient: a permanent 21211.
const INVALID: &str = "+15005550001";
const PUBLIC_URL: &str = "https://gateway.example.test";

async fn scrape(addr: std::net::SocketAddr) -> (String, Scrape) {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (text, parsed)
}

/// The value of the sample named `name` whose labels include `labels` (0 when absent).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

fn signed(form: &mut [(String, String)], path: &str) -> String {
    form.sort();
    webhook_gateway::signature::compute(
        twilio_fake::AUTH_TOKEN.as_bytes(),
        &format!("{PUBLIC_URL}{path}"),
        form,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_endpoints_report_what_happened() {
    let fake = FakeTwilio::start().await.unwrap();
    let mut vars = twilio_vars(&fake);
    vars.insert("GATEWAY_PUBLIC_URL", PUBLIC_URL.to_owned());
    let probes = Arc::new(std::sync::Mutex::new(None));
    let grab = probes.clone();
    let server = TestServer::start_custom(&Backend::Sqlite, vars, move |app| {
        *grab.lock().unwrap() = Some(app.probes());
    })
    .await;
    let shutdown = CancellationToken::new();

    // The core's endpoint, as `messaging serve` starts it.
    commpro_telemetry::metrics::recorder().unwrap();
    let core_metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let core_metrics_addr = core_metrics.local_addr().unwrap();
    let core_probes = probes.lock().unwrap().take().unwrap();
    tokio::spawn(commpro_telemetry::metrics::serve(
        core_metrics,
        messaging_grpc::metrics::PREFIX,
        core_probes,
        shutdown.clone(),
    ));

    // The gateway and its endpoint, as `webhook-gateway` starts them.
    let gw_vars: HashMap<&str, String> = HashMap::from([
        ("MESSAGING_CORE_URL", format!("http://{}", server.addr)),
        ("GATEWAY_PUBLIC_URL", PUBLIC_URL.to_owned()),
        ("TWILIO_ACCOUNT_SID", twilio_fake::ACCOUNT_SID.to_owned()),
        ("TWILIO_AUTH_TOKEN", twilio_fake::AUTH_TOKEN.to_owned()),
        ("JWT_HS256_SECRET", SECRET.to_owned()),
        ("MEDIA_URL_SECRET", MEDIA_SECRET.to_owned()),
    ]);
    let gw_config =
        webhook_gateway::GatewayConfig::from_vars(&|k| gw_vars.get(k).cloned()).unwrap();
    let gw_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gw_listener.local_addr().unwrap();
    let gw_metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_metrics_addr = gw_metrics.local_addr().unwrap();
    tokio::spawn(
        webhook_gateway::metrics_endpoint(&gw_config, gw_metrics, shutdown.clone()).unwrap(),
    );
    tokio::spawn(webhook_gateway::serve(
        gw_config,
        gw_listener,
        shutdown.clone(),
    ));

    // What the test does: one number, 3 good sends, 1 to an invalid number, 1 refused.
    server.assign(OWN, "alice").await;
    let mut alice = server.user("alice").await;
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(alice.send(OWN, BOB, &format!("hello {i}")).await.unwrap());
    }
    let bad = alice.send(OWN, INVALID, "to nowhere").await.unwrap();
    assert!(alice.send(OWN, "not-a-number", "x").await.is_err());
    for m in &sent {
        alice.wait_status(m, MessageStatus::Sent, 10).await;
    }
    alice.wait_status(&bad, MessageStatus::Failed, 10).await;
    // A WatchEvents stream held open.
    let mut watcher =
        pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    let _stream = watcher
        .watch_events(authed(
            pb::WatchEventsRequest { since_cursor: None },
            &server.token("alice"),
        ))
        .await
        .unwrap()
        .into_inner();

    // Webhooks: one signed inbound, one forged; REST: one listing, one without a token.
    let http = reqwest::Client::new();
    let mut form: Vec<(String, String)> = [
        ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
        ("AccountSid", twilio_fake::ACCOUNT_SID),
        ("From", BOB),
        ("To", OWN),
        ("Body", "hi back"),
        ("NumMedia", "0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let sig = signed(&mut form, "/webhook/sms");
    let ok = http
        .post(format!("http://{gw}/webhook/sms"))
        .header("X-Twilio-Signature", sig)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let forged = http
        .post(format!("http://{gw}/webhook/sms"))
        .header("X-Twilio-Signature", "Zm9yZ2Vk")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // A status callback for a SENT message with another SID: a second message at
    // Twilio for one of ours (a double send), counted once.
    let mut second: Vec<(String, String)> = [
        ("MessageSid", "SMffffffffffffffffffffffffffffffff"),
        ("AccountSid", twilio_fake::ACCOUNT_SID),
        ("MessageStatus", "sent"),
        ("SmsStatus", "sent"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let path = format!("/webhook/status?mid={}", sent[0].id);
    let sig = signed(&mut second, &path);
    let double = http
        .post(format!("http://{gw}{path}"))
        .header("X-Twilio-Signature", sig)
        .form(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(double.status(), 200);
    let listed = http
        .get(format!("http://{gw}/api/messages/conversations"))
        .bearer_auth(server.token("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let anonymous = http
        .get(format!("http://{gw}/api/messages/conversations"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let (core_text, core) = scrape(core_metrics_addr).await;
    let send_sms = [("method", "commpro.messaging.v1.MessagingService/SendSms")];
    assert_eq!(
        value(
            &core,
            "messaging_grpc_requests_total",
            &[send_sms[0], ("code", "Ok")]
        ),
        4.0,
        "{core_text}"
    );
    assert_eq!(
        value(
            &core,
            "messaging_grpc_requests_total",
            &[send_sms[0], ("code", "InvalidArgument")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &core,
            "messaging_grpc_request_seconds_count",
            &[send_sms[0], ("code", "Ok")]
        ),
        4.0,
        "latency observed per call"
    );
    assert_eq!(
        value(
            &core,
            "messaging_dispatch_total",
            &[("outcome", "accepted")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &core,
            "messaging_dispatch_total",
            &[("outcome", "permanent"), ("error_code", "21211")]
        ),
        1.0
    );
    assert_eq!(value(&core, "messaging_dispatch_seconds_count", &[]), 4.0);
    assert_eq!(
        value(
            &core,
            "messaging_sends_final_total",
            &[("status", "failed"), ("error_code", "21211")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &core,
            "messaging_status_changes_total",
            &[("status", "sent")]
        ),
        3.0
    );
    assert_eq!(
        value(&core, "messaging_duplicate_sends_total", &[]),
        1.0,
        "the double send counted"
    );
    assert_eq!(value(&core, "messaging_outbox_depth", &[]), 0.0);
    assert_eq!(
        value(&core, "messaging_outbox_oldest_due_age_seconds", &[]),
        0.0
    );
    assert_eq!(value(&core, "messaging_watch_streams_open", &[]), 1.0);
    // 4 sends and 1 inbound message written, each through the write pipeline (so
    // were the dispatcher's claims and outcomes: at least that many writes, in no
    // more batches than writes).
    let writes = value(&core, "messaging_write_batch_size_sum", &[]);
    let batches = value(&core, "messaging_write_commit_seconds_count", &[]);
    assert!(writes >= 5.0, "{writes} writes");
    assert!((1.0..=writes).contains(&batches), "{batches} batches");
    assert_eq!(
        value(&core, "messaging_key_cache_total", &[("result", "miss")]),
        1.0,
        "one user, one key, unwrapped once"
    );
    assert!(value(&core, "messaging_key_cache_total", &[("result", "hit")]) >= 4.0);
    assert!(value(&core, "messaging_db_pool_max_connections", &[]) >= 1.0);
    assert!(
        core.samples
            .iter()
            .any(|s| s.metric == "messaging_db_pool_connections")
    );
    assert!(
        !core_text.contains("gateway_"),
        "the core's endpoint shows only its metrics"
    );
    for secret in ["hello", "hi back", BOB, OWN, "alice"] {
        assert!(!core_text.contains(secret), "{secret} in the metrics");
    }

    let (gw_text, gateway) = scrape(gw_metrics_addr).await;
    assert_eq!(
        value(
            &gateway,
            "gateway_webhooks_total",
            &[("route", "sms"), ("outcome", "accepted")]
        ),
        1.0,
        "{gw_text}"
    );
    assert_eq!(
        value(
            &gateway,
            "gateway_webhooks_total",
            &[("route", "sms"), ("outcome", "forbidden")]
        ),
        1.0
    );
    let route = ("route", "/api/messages/conversations");
    assert_eq!(
        value(
            &gateway,
            "gateway_http_requests_total",
            &[route, ("method", "GET"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &gateway,
            "gateway_http_requests_total",
            &[route, ("method", "GET"), ("status", "401")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &gateway,
            "gateway_http_request_seconds_count",
            &[route, ("status", "200")]
        ),
        1.0
    );
    assert!(
        !gw_text.contains("messaging_"),
        "the gateway's endpoint shows only its metrics"
    );

    // Readiness and liveness on the admin addresses.
    for addr in [core_metrics_addr, gw_metrics_addr] {
        for path in ["/healthz", "/readyz"] {
            let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
            assert_eq!(r.status(), 200, "{addr}{path}");
        }
    }
    // The inbound message went through the core too.
    assert_eq!(
        value(
            &scrape(core_metrics_addr).await.1,
            "messaging_grpc_requests_total",
            &[
                (
                    "method",
                    "commpro.messaging.v1.MessagingIngest/RecordInbound"
                ),
                ("code", "Ok")
            ]
        ),
        1.0
    );
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.stop().await;
}
