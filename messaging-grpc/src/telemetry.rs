//! Logs and traces of the `messaging` binary (see `commpro-telemetry`): stderr logs
//! that never carry bodies, keys, tokens or full phone numbers (code logs ids and
//! `phone::Masked` numbers only), a span per gRPC call continuing the caller's trace,
//! and OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set.

use std::sync::Mutex;

use commpro_telemetry::{OtlpSettings, Telemetry};

/// The process's tracer provider, kept to flush it at exit.
static INSTALLED: Mutex<Option<Telemetry>> = Mutex::new(None);

/// `service.name` when OTEL_SERVICE_NAME is not set.
pub const SERVICE_NAME: &str = "commpro-messaging";

/// Initialises logging and tracing once per process (later calls, as in tests that
/// start several servers, keep the first set-up). Needs a Tokio runtime.
pub fn init() -> Result<(), String> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if installed.is_none() {
        let settings = OtlpSettings::from_env(SERVICE_NAME)?;
        let telemetry = Telemetry::init(&settings)?;
        if let Some(endpoint) = &settings.endpoint {
            // Credentials belong in OTEL_EXPORTER_OTLP_HEADERS, but never log any put in
            // the URL.
            let endpoint = match endpoint.split_once("://") {
                Some((scheme, rest)) => match rest.split_once('@') {
                    Some((_, host)) => format!("{scheme}://…@{host}"),
                    None => endpoint.clone(),
                },
                None => endpoint.clone(),
            };
            tracing::info!(%endpoint, service = %settings.service_name, "exporting traces over OTLP");
        }
        *installed = Some(telemetry);
    }
    Ok(())
}

/// Flushes and stops the exporter at exit.
pub fn shutdown() {
    if let Some(t) = INSTALLED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        t.shutdown();
    }
}
