//! Prometheus metrics of both binaries: the `metrics` facade records, one process-wide
//! Prometheus recorder keeps the values, and a small HTTP server on an admin address
//! (never the public port) serves them as Prometheus text at `/metrics`, with the
//! process's liveness and readiness at `/healthz` and `/readyz`.
//!
//! `messaging dev` runs the core and the gateway in one process, hence one recorder:
//! each endpoint shows only its binary's metrics (by name prefix), as two processes
//! would.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, OnceLock},
    time::Duration,
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode, body::Bytes, header, server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Latency buckets in seconds: 1 ms to 30 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Count buckets (rows per batch, keys per page).
const COUNT_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's recorder, installed on first use; later calls share it.
pub fn recorder() -> Result<PrometheusHandle, String> {
    RECORDER
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_size".into()), COUNT_BUCKETS)
                })
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| format!("installing the metrics recorder: {e}"))
        })
        .clone()
}

/// What an endpoint asks its binary at each request.
pub trait Probes: Send + Sync + 'static {
    /// Sets the gauges read from elsewhere (a database count, a pool) just before a
    /// scrape, so they are as fresh as the scrape.
    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// Whether the binary can do its work now (`/readyz`).
    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

/// Serves `/metrics` (the metrics whose names start with `prefix`), `/healthz` and
/// `/readyz` on `listener` until `shutdown`. While shutting down `/readyz` says 503.
pub async fn serve(
    listener: TcpListener,
    prefix: &'static str,
    probes: Arc<dyn Probes>,
    shutdown: CancellationToken,
) {
    let handle = match recorder() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "metrics endpoint not started");
            return;
        }
    };
    let local = listener.local_addr().ok();
    tracing::info!(addr = ?local, "metrics endpoint listening");
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (handle, probes, shutdown) = (handle.clone(), probes.clone(), shutdown.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let (handle, probes, shutdown) = (handle.clone(), probes.clone(), shutdown.clone());
                async move {
                    Ok::<_, Infallible>(answer(&req, &handle, prefix, &*probes, &shutdown).await)
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
    }
}

async fn answer(
    req: &Request<hyper::body::Incoming>,
    handle: &PrometheusHandle,
    prefix: &str,
    probes: &dyn Probes,
    shutdown: &CancellationToken,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match req.uri().path() {
        "/metrics" => {
            probes.refresh().await;
            handle.run_upkeep();
            let body = only_prefixed(&handle.render(), prefix);
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if shutdown.is_cancelled() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
        }
        "/readyz" if probes.ready().await => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}

/// The lines of the Prometheus text that belong to metrics named `prefix…`.
fn only_prefixed(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        if name.starts_with(prefix) || line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Binds an admin address, naming the variable when it cannot.
pub async fn bind(var: &str, addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("{var}: cannot listen on {addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_binarys_metrics() {
        let text =
            "# HELP a_x help\n# TYPE a_x counter\na_x{k=\"v\"} 1\n\n# TYPE b_y gauge\nb_y 2\n";
        assert_eq!(
            only_prefixed(text, "a_"),
            "# HELP a_x help\n# TYPE a_x counter\na_x{k=\"v\"} 1\n\n"
        );
    }
}
