//! OTLP trace export, end to end: a REST call through the real gateway into the real
//! core, with the spans exported to a fake OpenTelemetry collector (an OTLP/gRPC
//! TraceService on loopback). Its own test binary: the tracer is process-global.

#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use commpro_telemetry::{OtlpSettings, Telemetry};
use messaging_grpc::{App, Config, Mode, auth::JwtIssuer};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
    trace::v1::Span,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "otlp-test-secret-that-is-at-least-32-bytes";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// What the fake collector received: (service.name, span).
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    seen.push((service.clone(), span));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_call_is_one_trace_from_the_caller_through_gateway_and_core() {
    // The collector.
    let collector = Collector::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                stop.cancelled(),
            )
            .await
    });
    let telemetry = Telemetry::init(&OtlpSettings {
        endpoint: Some(format!("http://{collector_addr}")),
        service_name: "otlp-test".into(),
    })
    .unwrap();
    assert!(telemetry.is_exporting());

    // Core and gateway.
    let dir = tempfile::tempdir().unwrap();
    let vars: HashMap<String, String> = HashMap::from([
        (
            "MESSAGING_DATA_DIR".into(),
            dir.path().display().to_string(),
        ),
        (
            "DATABASE_URL".into(),
            format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display()),
        ),
        (
            "MESSAGING_MASTER_KEYS".into(),
            "t1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".into(),
        ),
        ("JWT_HS256_SECRET".into(), SECRET.into()),
    ]);
    let config = Config::from_vars(&vars, Mode::Serve).unwrap();
    let app = App::build(&config).await.unwrap();
    app.admin
        .assign_number("test", "+33123456789", "alice")
        .await
        .unwrap();
    let core_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let core_addr = core_listener.local_addr().unwrap();
    tokio::spawn(messaging_grpc::serve(app, core_listener, shutdown.clone()));
    let gw_vars: HashMap<&str, String> = HashMap::from([
        ("MESSAGING_CORE_URL", format!("http://{core_addr}")),
        (
            "TWILIO_ACCOUNT_SID",
            "AC00000000000000000000000000000000".into(),
        ),
        ("TWILIO_AUTH_TOKEN", "otlp".into()),
        ("JWT_HS256_SECRET", SECRET.into()),
    ]);
    let gw_config =
        webhook_gateway::GatewayConfig::from_vars(&|k| gw_vars.get(k).cloned()).unwrap();
    let gw_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_addr = gw_listener.local_addr().unwrap();
    tokio::spawn(webhook_gateway::serve(
        gw_config,
        gw_listener,
        shutdown.clone(),
    ));

    // The caller's request, inside the caller's trace.
    let token = JwtIssuer::hs256(SECRET.as_bytes(), "commpro-auth", "commpro-messaging")
        .issue("alice", &[], Duration::from_secs(600))
        .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{gw_addr}/api/messages/send"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&serde_json::json!({
            "from": "+33123456789",
            "to": "+33987654321",
            "body": "Secret dinner plans"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // The batch goes out on flush; the collector may take a moment.
    let mut spans = Vec::new();
    for _ in 0..100 {
        telemetry.flush();
        spans = collector.0.lock().unwrap().clone();
        let core_seen = spans.iter().any(|(_, s)| s.name.ends_with("/SendSms"));
        let gateway_seen = spans
            .iter()
            .any(|(_, s)| s.name == "POST /api/messages/send");
        if core_seen && gateway_seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
    let gateway = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "POST /api/messages/send")
        .unwrap_or_else(|| panic!("no gateway span named after the route: {names:?}"));
    let core = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "commpro.messaging.v1.MessagingService/SendSms")
        .unwrap_or_else(|| panic!("no core span: {names:?}"));

    // One trace: the caller's, then the gateway's span, then the core's under it.
    assert_eq!(hex(&gateway.trace_id), TRACE_ID);
    assert_eq!(hex(&gateway.parent_span_id), CALLER_SPAN);
    assert_eq!(hex(&core.trace_id), TRACE_ID);
    assert_eq!(core.parent_span_id, gateway.span_id);
    assert!(spans.iter().all(|(service, _)| service == "otlp-test"));

    // Nothing private in what leaves the process.
    for (_, span) in &spans {
        for kv in &span.attributes {
            let value = format!("{:?}", kv.value);
            for private in ["Secret dinner", "+33987654321", "+33123456789", &token] {
                assert!(
                    !value.contains(private) && !span.name.contains(private),
                    "span {} carries private data in {}: {value}",
                    span.name,
                    kv.key
                );
            }
        }
    }
    shutdown.cancel();
    telemetry.shutdown();
}
