//! gRPC calls by method and status code, with their latency: a tower layer around
//! every service of the server.

use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::LazyLock,
    task::{Context, Poll},
    time::Instant,
};

use prost::Message as _;
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
            let method = method_label(&path);
            let code = format!("{code:?}");
            metrics::counter!("messaging_grpc_requests_total", "method" => method.clone(), "code" => code.clone())
                .increment(1);
            metrics::histogram!("messaging_grpc_request_seconds", "method" => method, "code" => code)
                .record(started.elapsed().as_secs_f64());
            Ok(resp)
        })
    }
}

/// Every method the server serves, as `package.Service/Method`, read from the
/// descriptor sets it registers (ours and health's) plus the two reflection services.
static KNOWN_METHODS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut known: HashSet<String> = [
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for set in [
        commpro_messaging_api::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
            continue;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let name = service.name.unwrap_or_default();
                for method in service.method {
                    let method = method.name.unwrap_or_default();
                    known.insert(format!("{package}.{name}/{method}"));
                }
            }
        }
    }
    known
});

/// `service/Method` for a method the server serves, `unknown` for any other path,
/// whatever the answer: the interceptor refuses a call (UNAUTHENTICATED) before the
/// router knows whether the method exists, so the code cannot tell. Callers cannot
/// grow the label set.
fn method_label(path: &str) -> String {
    let path = path.trim_start_matches('/');
    if KNOWN_METHODS.contains(path) {
        path.to_owned()
    } else {
        "unknown".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(
            method_label("/commpro.messaging.v1.MessagingService/SendSms"),
            "commpro.messaging.v1.MessagingService/SendSms"
        );
        assert_eq!(
            method_label("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        assert_eq!(
            method_label("/commpro.messaging.v1.MessagingIngest/ServeMedia"),
            "commpro.messaging.v1.MessagingIngest/ServeMedia"
        );
        // A made-up method under a real service is refused before routing.
        assert_eq!(
            method_label("/commpro.messaging.v1.MessagingService/Nope123"),
            "unknown"
        );
        assert_eq!(method_label("/commpro.messaging.v1.X/Nope"), "unknown");
        assert_eq!(method_label("/evil/path"), "unknown");
    }
}
