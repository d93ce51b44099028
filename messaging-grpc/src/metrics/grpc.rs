//! gRPC calls by method and status code, with their latency: a tower layer around
//! every service of the server.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use tonic::codegen::http;
use tower::{Layer, Service};

/// Adds [`GrpcMetrics`] around a service.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// Counts each call (`messaging_grpc_requests_total`) and observes the time to its
/// answer's headers (`messaging_grpc_request_seconds`): the whole call for unary
/// methods, the time to open the stream for streaming ones. The code is the one in the
/// answer's headers (errors are answered "trailers-only"); a call whose headers say
/// nothing succeeded.
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for GrpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The service that was polled ready serves this call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = req.uri().path().to_owned();
        let started = Instant::now();
        Box::pin(async move {
            let resp = inner.call(req).await?;
            let code = resp
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map_or(tonic::Code::Ok, tonic::Code::from_i32);
            let method = method_label(&path, code);
            let code = format!("{code:?}");
            metrics::counter!("messaging_grpc_requests_total", "method" => method.clone(), "code" => code.clone())
                .increment(1);
            metrics::histogram!("messaging_grpc_request_seconds", "method" => method, "code" => code)
                .record(started.elapsed().as_secs_f64());
            Ok(resp)
        })
    }
}

/// `service/Method`, bounded: a path the server does not serve (UNIMPLEMENTED, or
/// outside our packages) is `unknown`, so callers cannot grow the label set.
fn method_label(path: &str, code: tonic::Code) -> String {
    let path = path.trim_start_matches('/');
    let ours = [
        "commpro.messaging.v1.",
        "grpc.health.v1.",
        "grpc.reflection.",
    ]
    .iter()
    .any(|p| path.starts_with(p));
    if !ours || code == tonic::Code::Unimplemented || path.len() > 128 {
        "unknown".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(
            method_label(
                "/commpro.messaging.v1.MessagingService/SendSms",
                tonic::Code::Ok
            ),
            "commpro.messaging.v1.MessagingService/SendSms"
        );
        assert_eq!(
            method_label("/commpro.messaging.v1.X/Nope", tonic::Code::Unimplemented),
            "unknown"
        );
        assert_eq!(method_label("/evil/path", tonic::Code::NotFound), "unknown");
    }
}
