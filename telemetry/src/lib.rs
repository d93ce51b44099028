//! Logs and traces of both binaries, and the process signals that stop them
//! ([`signals::wait_for_shutdown`]).
//!
//! Logs go to stderr (stdout stays clean for scripts), filtered by `RUST_LOG`. Every
//! request runs in a span that continues the caller's W3C trace (`traceparent`), so the
//! gateway's and the core's log lines carry the same trace id and the id goes on to the
//! next hop. With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! set, those spans are also exported over OTLP/gRPC in batches; without it, span ids
//! are still generated (for propagation and logs) and nothing is sent anywhere.
//!
//! Span names and attributes carry methods, routes and ids only: never bodies, tokens
//! or phone numbers. Prometheus metrics are in [`metrics`].

pub mod metrics;

pub mod signals;

use std::{collections::HashMap, io::IsTerminal};

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt,
};

/// The tracer provider; flush it before the process exits so the last spans are sent.
pub struct Telemetry {
    provider: SdkTracerProvider,
    exporting: bool,
}

/// Where traces go, read from the standard OpenTelemetry variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// OTLP/gRPC endpoint (`http://collector:4317`); `None`: no export.
    pub endpoint: Option<String>,
    pub service_name: String,
}

impl OtlpSettings {
    /// Reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` and
    /// `OTEL_SERVICE_NAME`; `get` returns a trimmed, non-empty value.
    pub fn from_vars(
        get: &impl Fn(&str) -> Option<String>,
        default_service: &str,
    ) -> Result<Self, String> {
        let (var, endpoint) = match get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(e) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Some(e)),
            None => (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                get("OTEL_EXPORTER_OTLP_ENDPOINT"),
            ),
        };
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(format!(
                "configuration: {var}: must be an http:// or https:// URL (OTLP over gRPC, port 4317 usually)"
            ));
        }
        if let Some(protocol) = get("OTEL_EXPORTER_OTLP_PROTOCOL")
            && protocol != "grpc"
        {
            return Err(format!(
                "configuration: OTEL_EXPORTER_OTLP_PROTOCOL: only `grpc` is supported, got `{protocol}`"
            ));
        }
        Ok(Self {
            endpoint,
            service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| default_service.to_owned()),
        })
    }

    pub fn from_env(default_service: &str) -> Result<Self, String> {
        Self::from_vars(
            &|k| {
                std::env::var(k)
                    .ok()
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
            },
            default_service,
        )
    }
}

impl Telemetry {
    /// Sets up logging and tracing for the process. A second call (tests start many
    /// servers in one process) keeps the first subscriber and returns a provider that
    /// is not installed.
    ///
    /// Must run inside a Tokio runtime when exporting (the OTLP client is tonic).
    pub fn init(settings: &OtlpSettings) -> Result<Self, String> {
        let mut builder = SdkTracerProvider::builder().with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        );
        if let Some(endpoint) = &settings.endpoint {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(|e| format!("configuration: OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
            builder = builder.with_batch_exporter(exporter);
        }
        let provider = builder.build();
        let tracer = provider.tracer("commpro-messaging");

        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new("info,sqlx=warn,sea_orm=warn,h2=warn,hyper=warn,tower=warn")
        });
        let logs = fmt::layer()
            .with_target(false)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter);
        // Spans are traced at INFO whatever RUST_LOG says about log lines.
        let traces = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(LevelFilter::INFO);
        let _ = tracing_subscriber::registry()
            .with(logs)
            .with(traces)
            .try_init();
        Ok(Self {
            exporting: settings.endpoint.is_some(),
            provider,
        })
    }

    /// Whether spans leave the process.
    pub fn is_exporting(&self) -> bool {
        self.exporting
    }

    /// Sends what is batched now.
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }

    /// Flushes and stops the exporter (at exit).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "stopping the trace exporter failed");
        }
    }
}

/// One header value as an OpenTelemetry carrier.
struct TraceParentCarrier<'a>(Option<&'a str>);

impl Extractor for TraceParentCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0).flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// Makes `span` continue the trace of an incoming `traceparent` value, when it is a
/// valid one; otherwise the span starts a new trace.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let cx = TraceContextPropagator::new().extract(&TraceParentCarrier(traceparent));
    if cx.span().span_context().is_valid() {
        // Only fails when the span is disabled, and then there is nothing to continue.
        let _ = span.set_parent(cx);
    }
}

/// The `traceparent` identifying `span` (to send to the next hop), or `None` when no
/// tracing layer is installed or the span is disabled.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx: Context = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut MapInjector(&mut carrier));
    carrier.remove("traceparent")
}

/// Renames `span`'s OpenTelemetry span (once its route is known). Recording `otel.name`
/// does not work once the span has started, which continuing a trace does.
pub fn rename(span: &tracing::Span, name: String) {
    span.context().span().update_name(name);
}

/// The trace id of `span` in hex, when it has one.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn settings_from_the_standard_variables() {
        let s = OtlpSettings::from_vars(&vars(&[]), "svc").unwrap();
        assert_eq!(s.endpoint, None);
        assert_eq!(s.service_name, "svc");
        let s = OtlpSettings::from_vars(
            &vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                ("OTEL_SERVICE_NAME", "messaging-eu"),
            ]),
            "svc",
        )
        .unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("http://collector:4317"));
        assert_eq!(s.service_name, "messaging-eu");
        let e = OtlpSettings::from_vars(
            &vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]),
            "svc",
        )
        .unwrap_err();
        assert!(e.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{e}");
        let e = OtlpSettings::from_vars(
            &vars(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]),
            "svc",
        )
        .unwrap_err();
        assert!(e.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{e}");
    }

    #[test]
    fn traces_continue_across_hops() {
        let telemetry = Telemetry::init(&OtlpSettings {
            endpoint: None,
            service_name: "test".into(),
        })
        .unwrap();
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let span = tracing::info_span!("hop");
        continue_trace(&span, Some(incoming));
        assert_eq!(
            trace_id(&span).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let next = traceparent(&span).unwrap();
        assert!(
            next.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{next}"
        );
        assert!(
            !next.contains("00f067aa0ba902b7"),
            "our own span id goes on: {next}"
        );

        // Garbage starts a new trace.
        let fresh = tracing::info_span!("fresh");
        continue_trace(&fresh, Some("00-zz-yy-01"));
        let id = trace_id(&fresh).unwrap();
        assert_eq!(id.len(), 32);
        assert_ne!(id, "4bf92f3577b34da6a3ce929d0e0e4736");
        telemetry.shutdown();
    }
}
