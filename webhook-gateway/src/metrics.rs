//! The gateway's metrics: webhooks accepted or refused by reason, REST calls by route,
//! method and status with their latency, media fetches by status; and its metrics
//! endpoint (GATEWAY_METRICS_ADDR), ready while the core answers. Labels are routes,
//! methods, statuses and reasons: never paths with ids, tokens or numbers.

use std::{future::Future, pin::Pin, sync::Arc, time::Instant};

use axum::{extract::Request, middleware::Next, response::Response};
use commpro_telemetry::metrics::Probes;
use hyper::StatusCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{config::GatewayConfig, core::Core};

/// Prefix of every metric of the gateway (its endpoint shows only these).
pub const PREFIX: &str = "gateway_";

/// The REST route that answered, as the API's router matched it; put on its answer.
#[derive(Clone, Debug)]
pub(crate) struct ApiRoute(pub String);

/// Observes every answer of the gateway (outermost layer: rate-limited and refused
/// requests are counted too).
pub(crate) async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method()).to_owned();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    match path.as_str() {
        "/webhook/sms" | "/webhook/status" => {
            let route = path.trim_start_matches("/webhook/").to_owned();
            metrics::counter!("gateway_webhooks_total", "route" => route, "outcome" => webhook_outcome(status))
                .increment(1);
        }
        p if p.starts_with("/media/") => {
            metrics::counter!("gateway_media_requests_total", "status" => status.as_u16().to_string())
                .increment(1);
        }
        p if p == "/api" || p.starts_with("/api/") => {
            let route = resp
                .extensions()
                .get::<ApiRoute>()
                .map_or_else(|| "unmatched".to_owned(), |r| r.0.clone());
            let labels = [
                ("route", route),
                ("method", method),
                ("status", status.as_u16().to_string()),
            ];
            metrics::counter!("gateway_http_requests_total", &labels).increment(1);
            metrics::histogram!("gateway_http_request_seconds", &labels)
                .record(started.elapsed().as_secs_f64());
        }
        _ => {}
    }
    resp
}

/// The request's method as a label: HTTP allows any token as a method (`FOO`,
/// `X1`, …), so only the standard ones are named and the label set stays bounded.
fn method_label(method: &hyper::Method) -> &'static str {
    use hyper::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Why a webhook was answered as it was.
fn webhook_outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "accepted",
        400 => "bad_request",
        403 => "forbidden",
        405 => "method_not_allowed",
        408 => "timeout",
        413 => "too_large",
        415 => "unsupported_media_type",
        429 => "rate_limited",
        503 => "core_unavailable",
        _ => "other",
    }
}

/// Readiness of the gateway: the core answers its health check.
struct GatewayProbes {
    core: Core,
}

impl Probes for GatewayProbes {
    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }

    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(self.core.is_ready())
    }
}

/// The gateway's `/metrics`, `/healthz` and `/readyz` on `listener` (bound to
/// GATEWAY_METRICS_ADDR, never the public port), served until `shutdown` by the
/// returned future. The recorder is installed here, before any request is counted.
pub fn metrics_endpoint(
    config: &GatewayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    commpro_telemetry::metrics::recorder().map_err(anyhow::Error::msg)?;
    let core = Core::from_config(config)?;
    let probes = Arc::new(GatewayProbes { core });
    Ok(commpro_telemetry::metrics::serve(
        listener, PREFIX, probes, shutdown,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&hyper::Method::GET), "GET");
        for m in ["FOO", "BAR1", "PROPFIND", "CONNECT"] {
            let m = hyper::Method::from_bytes(m.as_bytes()).unwrap();
            assert_eq!(method_label(&m), "other", "{m}");
        }
    }

    #[test]
    fn outcomes_name_the_reason() {
        assert_eq!(webhook_outcome(StatusCode::OK), "accepted");
        assert_eq!(webhook_outcome(StatusCode::FORBIDDEN), "forbidden");
        assert_eq!(
            webhook_outcome(StatusCode::TOO_MANY_REQUESTS),
            "rate_limited"
        );
        assert_eq!(webhook_outcome(StatusCode::IM_A_TEAPOT), "other");
    }
}
