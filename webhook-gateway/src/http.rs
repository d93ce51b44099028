//! The hyper 1 server: routing, limits, and the two webhooks.

use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
    time::Duration,
};

use axum::{body::Body, response::IntoResponse};
use commpro_messaging_api::v1 as pb;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header::{self, HeaderValue},
    service::service_fn,
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::Instrument;

use crate::{
    GatewayConfig,
    api::{self, ApiError},
    core::{Core, CoreError},
    signature::{self, Payload},
    trace::TraceParent,
    webhook::{InboundWebhook, StatusWebhook},
};

const TWIML_OK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

type Resp = Response<Full<Bytes>>;

pub(crate) struct Gateway {
    pub config: GatewayConfig,
    pub core: Core,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    api: axum::Router,
}

impl Gateway {
    pub fn new(config: GatewayConfig, core: Core, shutdown: CancellationToken) -> Self {
        let per_sec = NonZeroU32::new(config.rate_limit_per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = per_sec.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        let limiter = RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst));
        let api = api::router(
            Arc::new(api::Api::new(
                core.clone(),
                config.max_body_bytes,
                config.read_timeout,
                shutdown,
            )),
            &config.cors_allowed_origins,
        );
        Self {
            config,
            core,
            limiter,
            api,
        }
    }

    /// The address the per-source rate limit counts this request against.
    fn client_ip(&self, peer: SocketAddr, headers: &hyper::HeaderMap) -> IpAddr {
        crate::client_ip::client_ip(peer.ip(), headers, &self.config.trusted_proxies)
    }
}

pub(crate) async fn serve(
    listener: TcpListener,
    gw: Arc<Gateway>,
    shutdown: CancellationToken,
    drain: Duration,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut prune = tokio::time::interval(Duration::from_secs(60));
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            _ = prune.tick() => {
                // Forget idle sources so the limiter's memory stays bounded.
                gw.limiter.retain_recent();
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Small answers must not wait for delayed ACKs.
        let _ = stream.set_nodelay(true);
        let gw_conn = gw.clone();
        let service = service_fn(move |req| route(req, peer, gw_conn.clone()));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(gw.config.read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("gateway connections still open after the drain deadline; closing");
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Hook {
    Sms,
    Status,
}

async fn route(
    req: Request<Incoming>,
    peer: SocketAddr,
    gw: Arc<Gateway>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let is_api = path == "/api" || path.starts_with("/api/");
    // One span per request, continuing the caller's trace; the core's span for the
    // call it makes is a child of this one.
    let span = tracing::info_span!(
        "http",
        otel.name = %span_name(req.method(), path),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    commpro_telemetry::continue_trace(
        &span,
        req.headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok()),
    );
    if let Some(id) = commpro_telemetry::trace_id(&span) {
        span.record("trace_id", id);
    }
    let mut resp = async {
        if is_api {
            rest(req, peer, &gw).await
        } else {
            twilio_side(req, peer, gw).await.map(Body::new)
        }
    }
    .instrument(span.clone())
    .await;
    span.record("http.response.status_code", resp.status().as_u16());
    api::security_headers(resp.headers_mut(), is_api);
    Ok(resp)
}

/// A low-cardinality span name: the route, never ids or tokens (the API's router
/// renames its span to the matched route).
fn span_name(method: &Method, path: &str) -> String {
    let route = match path {
        "/healthz" | "/readyz" | "/webhook/sms" | "/webhook/status" => path,
        p if p.starts_with("/media/") => "/media/{token}",
        p if p == "/api" || p.starts_with("/api/") => "/api",
        _ => "unknown route",
    };
    format!("{method} {route}")
}

/// A REST API request: rate limited per source address like the webhooks, then
/// handed to the API's router (its handlers forward the request span's trace); logged
/// without bodies or query strings.
async fn rest(req: Request<Incoming>, peer: SocketAddr, gw: &Gateway) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = if gw
        .limiter
        .check_key(&gw.client_ip(peer, req.headers()))
        .is_err()
    {
        ApiError::rate_limited().into_response()
    } else {
        match gw.api.clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        }
    };
    tracing::info!(
        %method,
        %path,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "api request"
    );
    resp
}

/// Twilio's side: health, webhooks and signed media URLs.
async fn twilio_side(req: Request<Incoming>, peer: SocketAddr, gw: Arc<Gateway>) -> Resp {
    let source = gw.client_ip(peer, req.headers());
    match (req.uri().path(), req.method()) {
        ("/healthz", &Method::GET) => text(StatusCode::OK, "ok\n"),
        ("/readyz", &Method::GET) => match gw.core.is_ready().await {
            true => text(StatusCode::OK, "ready\n"),
            false => text(StatusCode::SERVICE_UNAVAILABLE, "core not ready\n"),
        },
        ("/webhook/sms", &Method::POST) => webhook(req, source, &gw, Hook::Sms).await,
        ("/webhook/status", &Method::POST) => webhook(req, source, &gw, Hook::Status).await,
        (path, &Method::GET) if path.starts_with("/media/") => {
            media(&path["/media/".len()..], source, &gw).await
        }
        ("/healthz" | "/readyz", _) => not_allowed("GET"),
        ("/webhook/sms" | "/webhook/status", _) => not_allowed("POST"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn webhook(req: Request<Incoming>, source: IpAddr, gw: &Gateway, hook: Hook) -> Resp {
    if gw.limiter.check_key(&source).is_err() {
        return text(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded\n");
    }
    let limit = gw.config.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
    }
    let signature = req
        .headers()
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default();
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    let trace = TraceParent::current(
        req.headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok()),
    );
    // The URL Twilio signed: our configured public URL, never a forwarded header.
    let url = match req.uri().query() {
        Some(q) => format!("{}{}?{q}", gw.config.public_url, req.uri().path()),
        None => format!("{}{}", gw.config.public_url, req.uri().path()),
    };

    let body = match tokio::time::timeout(
        gw.config.read_timeout,
        Limited::new(req.into_body(), limit).collect(),
    )
    .await
    {
        Err(_) => return text(StatusCode::REQUEST_TIMEOUT, "body not received in time\n"),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
        }
        Ok(Err(_)) => return text(StatusCode::BAD_REQUEST, "could not read the body\n"),
        Ok(Ok(collected)) => collected.to_bytes(),
    };

    if signature.trim().is_empty() {
        tracing::warn!(source = %source, "webhook without X-Twilio-Signature refused");
        return text(StatusCode::FORBIDDEN, "missing signature\n");
    }
    let form: Vec<(String, String)> = if is_json {
        Vec::new()
    } else {
        form_urlencoded::parse(&body).into_owned().collect()
    };
    let payload = if is_json {
        Payload::Body(&body)
    } else {
        Payload::Form(&form)
    };
    let tokens: Vec<&[u8]> = gw
        .config
        .auth_tokens
        .iter()
        .map(|t| t.expose_secret().as_bytes())
        .collect();
    if !signature::validate(&tokens, &url, payload, &signature) {
        tracing::warn!(source = %source, "webhook with an invalid signature refused");
        return text(StatusCode::FORBIDDEN, "invalid signature\n");
    }
    if is_json {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/x-www-form-urlencoded\n",
        );
    }

    let result = match hook {
        Hook::Sms => inbound(gw, &form, &trace).await,
        Hook::Status => status(gw, &form, &trace).await,
    };
    match result {
        Ok(()) => twiml_ok(),
        Err(reject) => text(reject.status, &format!("{}\n", reject.message)),
    }
}

/// Why a verified webhook is not answered with TwiML.
struct Reject {
    status: StatusCode,
    message: String,
}

impl Reject {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// `GET /media/{token}`: the decrypted bytes of an outbound MMS image, for Twilio,
/// only while the signed token is valid. Anything else is a plain 404.
async fn media(token: &str, source: IpAddr, gw: &Gateway) -> Resp {
    if gw.limiter.check_key(&source).is_err() {
        return text(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded\n");
    }
    let not_found = || text(StatusCode::NOT_FOUND, "not found\n");
    let Some(secret) = &gw.config.media_url_secret else {
        return not_found();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let Some(media_id) = crate::media_token::verify(secret.expose_secret().as_bytes(), token, now)
    else {
        return not_found();
    };
    let trace = TraceParent::current(None);
    match gw.core.serve_media(&media_id, &trace).await {
        Ok(Some((content_type, bytes))) => {
            let mut resp = Response::new(Full::new(Bytes::from(bytes)));
            if let Ok(ct) = HeaderValue::from_str(&content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            resp
        }
        Ok(None) => not_found(),
        Err(e) => {
            let reject = core_error(&media_id, e);
            text(reject.status, &format!("{}\n", reject.message))
        }
    }
}

fn account_ok(gw: &Gateway, account_sid: &str) -> Result<(), Reject> {
    if account_sid == gw.config.account_sid {
        Ok(())
    } else {
        tracing::warn!("signed webhook for another Twilio account refused");
        Err(Reject::new(StatusCode::FORBIDDEN, "unknown account"))
    }
}

async fn inbound(
    gw: &Gateway,
    form: &[(String, String)],
    trace: &TraceParent,
) -> Result<(), Reject> {
    let hook = InboundWebhook::parse(form)
        .map_err(|e| Reject::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    account_ok(gw, &hook.account_sid)?;
    let req = pb::RecordInboundRequest {
        message_sid: hook.message_sid.clone(),
        account_sid: hook.account_sid,
        from: hook.from,
        to: hook.to,
        body: hook.body,
        media: hook
            .media
            .into_iter()
            .map(|(url, content_type)| pb::InboundMedia { url, content_type })
            .collect(),
    };
    let resp = gw
        .core
        .record_inbound(req, trace)
        .await
        .map_err(|e| core_error(&hook.message_sid, e))?;
    let outcome =
        pb::InboundOutcome::try_from(resp.outcome).unwrap_or(pb::InboundOutcome::Unspecified);
    tracing::info!(sid = %hook.message_sid, outcome = outcome.as_str_name(), trace_id = %trace.trace_id, "inbound webhook");
    Ok(())
}

async fn status(
    gw: &Gateway,
    form: &[(String, String)],
    trace: &TraceParent,
) -> Result<(), Reject> {
    let hook = StatusWebhook::parse(form)
        .map_err(|e| Reject::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    account_ok(gw, &hook.account_sid)?;
    let req = pb::RecordStatusRequest {
        message_sid: hook.message_sid.clone(),
        status: hook.status,
        error_code: hook.error_code,
        error_message: hook.error_message,
        account_sid: hook.account_sid,
    };
    let resp = gw
        .core
        .record_status(req, trace)
        .await
        .map_err(|e| core_error(&hook.message_sid, e))?;
    let outcome =
        pb::StatusOutcome::try_from(resp.outcome).unwrap_or(pb::StatusOutcome::Unspecified);
    tracing::info!(sid = %hook.message_sid, outcome = outcome.as_str_name(), trace_id = %trace.trace_id, "status webhook");
    Ok(())
}

/// Core trouble is 503, so Twilio's retry or fallback URL can act; refused content
/// is 400 (retrying cannot help).
fn core_error(sid: &str, e: CoreError) -> Reject {
    match e {
        CoreError::Unavailable(reason) => {
            tracing::warn!(%sid, %reason, "core unavailable; answering 503");
            Reject::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable")
        }
        CoreError::Rejected(reason) => {
            tracing::warn!(%sid, %reason, "core refused the webhook");
            Reject::new(StatusCode::BAD_REQUEST, reason)
        }
        CoreError::Failed(reason) => {
            tracing::error!(%sid, %reason, "core failed on a webhook");
            Reject::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

fn twiml_ok() -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from_static(TWIML_OK.as_bytes())));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    resp
}

fn not_allowed(allow: &'static str) -> Resp {
    let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

fn text(status: StatusCode, body: &str) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_owned())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
