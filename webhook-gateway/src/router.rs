//! The one router of the gateway: health probes, Twilio's routes, and everything
//! under `/api` for the REST API's router (which matches its own routes). The
//! per-source rate limit is a layer on the API and the media URLs, and counts the
//! webhooks whose signature does not check out; every answer gets the request span and
//! the security headers.

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{Request, State},
    middleware::{Next, from_fn, from_fn_with_state},
    response::Response,
    routing::{MethodRouter, any, get},
};
use hyper::{
    HeaderMap, Method, StatusCode,
    header::{self, HeaderName, HeaderValue},
};
use tokio_util::sync::CancellationToken;
use tower::{ServiceBuilder, ServiceExt};
use tracing::Instrument;

use crate::{
    api,
    config::GatewayConfig,
    core::Core,
    error::Face,
    metrics, plain,
    rate_limit::{self, RateLimit},
    trace,
    twilio::{self, Twilio},
};

/// Every route the gateway serves; `shutdown` ends the REST API's event streams.
pub(crate) fn router(config: GatewayConfig, core: Core, shutdown: CancellationToken) -> Router {
    router_with(config, core, shutdown, Router::new())
}

/// [`router`] plus `extra` routes (the dev console's), under the same layers.
pub(crate) fn router_with(
    config: GatewayConfig,
    core: Core,
    shutdown: CancellationToken,
    extra: Router,
) -> Router {
    let limit = Arc::new(RateLimit::new(
        config.rate_limit_per_sec,
        config.trusted_proxies.clone(),
    ));
    let api = api::router(
        Arc::new(api::Api::new(core.clone(), &config, shutdown.clone())),
        &config.cors_allowed_origins,
    );
    Router::new()
        .merge(health(core.clone(), shutdown))
        .merge(extra)
        .merge(twilio::routes(Arc::new(Twilio {
            config,
            core,
            limit: limit.clone(),
        })))
        .fallback_service(rest_or_not_found(api, limit))
        .layer(from_fn(every_answer))
        .layer(from_fn(metrics::observe))
}

/// `/healthz` (the process is up) and `/readyz` (the core answers its health check, and
/// the gateway is not shutting down). GET only, HEAD included in the refusal.
fn health(core: Core, shutdown: CancellationToken) -> Router {
    async fn only_get() -> Response {
        plain::not_allowed("GET")
    }
    Router::new()
        .route(
            "/healthz",
            get(|| async { plain::text(StatusCode::OK, "ok") })
                .head(only_get)
                .fallback(only_get),
        )
        .route("/readyz", get(readyz).head(only_get).fallback(only_get))
        .with_state((core, shutdown))
}

async fn readyz(State((core, shutdown)): State<(Core, CancellationToken)>) -> Response {
    // Draining: the load balancer should stop sending new requests here.
    if shutdown.is_cancelled() {
        return plain::text(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    if !core.token_usable() {
        tracing::error!("GATEWAY_SERVICE_TOKEN expires within the hour: renew it and restart");
        return plain::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "service token expires within the hour",
        );
    }
    if core.is_ready().await {
        plain::text(StatusCode::OK, "ready")
    } else {
        plain::text(StatusCode::SERVICE_UNAVAILABLE, "core not ready")
    }
}

/// Paths no route above matched: those under `/api` go to the REST API's own router,
/// rate limited and logged (it matches its routes itself and answers its own JSON 404
/// and 405, with CORS); any other path is a plain 404.
fn rest_or_not_found(api: Router, limit: Arc<RateLimit>) -> MethodRouter {
    let rest = ServiceBuilder::new()
        .layer(from_fn(log_api_request))
        .layer(from_fn_with_state((limit, Face::Rest), rate_limit::limit))
        .service(api);
    any(move |req: Request| {
        let rest = rest.clone();
        async move {
            if !is_api(req.uri().path()) {
                return plain::not_found();
            }
            match rest.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    })
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// A REST request in the log: without bodies or query strings, and with the numbers
/// a path can carry (`/api/blocked-numbers/%2B1…`) masked.
async fn log_api_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = crate::log_mask::mask_numbers(req.uri().path());
    let resp = next.run(req).await;
    tracing::info!(
        %method,
        %path,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "api request"
    );
    resp
}

/// One span per request, continuing the caller's trace (the core's span for the call
/// it makes is a child of this one); the answer's status on it, and the security
/// headers on the answer.
async fn every_answer(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_api = is_api(path);
    let span = tracing::info_span!(
        "http",
        otel.name = %span_name(req.method(), path),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    commpro_telemetry::continue_trace(&span, trace::incoming(req.headers()));
    if let Some(id) = commpro_telemetry::trace_id(&span) {
        span.record("trace_id", id);
    }
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.record("http.response.status_code", resp.status().as_u16());
    security_headers(resp.headers_mut(), is_api);
    resp
}

/// A low-cardinality span name: the route, never ids or tokens (the API's router
/// renames its span to the matched route).
fn span_name(method: &Method, path: &str) -> String {
    let route = match path {
        "/healthz" | "/readyz" | "/webhook/sms" | "/webhook/status" => path,
        p if p.starts_with("/media/") => "/media/{token}",
        p if p == "/dev" || p.starts_with("/dev/") => "/dev",
        p if is_api(p) => "/api",
        _ => "unknown route",
    };
    format!("{method} {route}")
}

/// The headers helmet sets by default, on every answer of the gateway. Answers are
/// JSON, text or images, never pages: nothing may run, frame them or be sniffed from
/// them.
fn security_headers(headers: &mut HeaderMap, is_api: bool) {
    const FIXED: &[(&str, &str)] = &[
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("origin-agent-cluster", "?1"),
        ("referrer-policy", "no-referrer"),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-dns-prefetch-control", "off"),
        ("x-download-options", "noopen"),
        ("x-frame-options", "DENY"),
        ("x-permitted-cross-domain-policies", "none"),
        ("x-xss-protection", "0"),
    ];
    for (name, value) in FIXED {
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    }
    if is_api {
        // Answers carry one user's messages: no shared cache may keep them.
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests;
