//! Load generator: drives the real gRPC server over loopback and a bare tonic server
//! (only the standard health service) as the baseline, in the same run, and prints
//! throughput and latency with each workload's ratio to the baseline. The REST API is
//! driven through the real webhook gateway in front of the same core (HTTP/1.1
//! keep-alive, as web clients call it), next to the gateway's bare `GET /healthz`.
//!
//! cargo run --release -p messaging-grpc --example loadgen -- [seconds] [concurrency] [database-url] 2>/dev/null
//!
//! Defaults: 5 s per workload, 16 concurrent clients, a temporary SQLite file
//! (synchronous=FULL: every SendSms waits for its fsync). The dispatcher is off so
//! the API path alone is measured.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use commpro_messaging_api::v1::{self as pb, messaging_service_client::MessagingServiceClient};
use messaging_grpc::{
    App, Config, Mode,
    auth::{JwtIssuer, Role},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const SECRET: &str = "loadgen-secret-that-is-at-least-32-bytes";

struct Outcome {
    name: &'static str,
    ok: usize,
    errors: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Outcome {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies[((self.latencies.len() - 1) as f64 * p) as usize]
    }
}

/// Runs `call` from `concurrency` tasks for `secs` seconds.
async fn run<F, Fut>(name: &'static str, secs: u64, concurrency: usize, call: F) -> Outcome
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut lat, mut i) = (0, 0, Vec::new(), 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                if call(worker, i).await {
                    ok += 1;
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (ok, errors, lat)
        }));
    }
    let mut out = Outcome {
        name,
        ok: 0,
        errors: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (ok, errors, lat) = t.await.expect("worker");
        out.ok += ok;
        out.errors += errors;
        out.latencies.extend(lat);
    }
    out.elapsed = start.elapsed();
    out.latencies.sort();
    out
}

fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    req
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);
    let dir = tempfile::tempdir()?;
    let database_url = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("load.db").display()));
    let shutdown = CancellationToken::new();
    // Logs (to stderr) and spans as the real binary has them: their cost is measured.
    messaging_grpc::telemetry::init().map_err(anyhow::Error::msg)?;

    // Baseline: a bare tonic server with nothing but the health service.
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let base_listener = TcpListener::bind("127.0.0.1:0").await?;
    let base_addr = base_listener.local_addr()?;
    let s = shutdown.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(base_listener),
                s.cancelled(),
            )
            .await
    });

    // The real server.
    let vars: HashMap<String, String> = HashMap::from([
        (
            "MESSAGING_DATA_DIR".into(),
            dir.path().display().to_string(),
        ),
        ("DATABASE_URL".into(), database_url.clone()),
        (
            "MESSAGING_MASTER_KEYS".into(),
            format!("k1:{}", base64_key()),
        ),
        ("JWT_HS256_SECRET".into(), SECRET.into()),
        ("OUTBOX_DISPATCHER".into(), "off".into()),
    ]);
    let config = Config::from_vars(&vars, Mode::Serve)?;
    let app = App::build(&config).await?;
    let admin = app.admin.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(messaging_grpc::serve(app, listener, shutdown.clone()));

    let issuer = JwtIssuer::hs256(SECRET.as_bytes(), "commpro-auth", "commpro-messaging");
    let token = Arc::new(
        issuer
            .issue("load-user", &[Role::Admin], Duration::from_secs(3600))
            .map_err(anyhow::Error::msg)?,
    );
    admin
        .assign_number("loadgen", "+15005550006", "load-user")
        .await?;

    let base_channel = Channel::from_shared(format!("http://{base_addr}"))?
        .connect()
        .await?;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;

    let ch = base_channel.clone();
    let baseline = run(
        "baseline: bare tonic health Check",
        secs,
        concurrency,
        move |_, _| {
            let mut c = HealthClient::new(ch.clone());
            async move {
                c.check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .is_ok()
            }
        },
    )
    .await;

    let (ch, tk) = (channel.clone(), token.clone());
    let send = run(
        "SendSms (encrypt + commit)",
        secs,
        concurrency,
        move |w, i| {
            let (mut c, tk) = (MessagingServiceClient::new(ch.clone()), tk.clone());
            async move {
                let req = pb::SendSmsRequest {
                    from: "+15005550006".into(),
                    to: format!("+1415555{:04}", w % 50),
                    body: format!("Load message {w}-{i}: your code is 123456"),
                    idempotency_key: String::new(),
                    send_at: None,
                };
                c.send_sms(authed(req, &tk)).await.is_ok()
            }
        },
    )
    .await;

    let mut c = MessagingServiceClient::new(channel.clone());
    let list = c
        .list_conversations(authed(pb::ListConversationsRequest::default(), &token))
        .await?
        .into_inner();
    let contact = Arc::new(list.conversations[0].contact_id.clone());
    let (ch, tk, ct) = (channel.clone(), token.clone(), contact.clone());
    let get = run(
        "GetConversation, 50 messages (50 decrypts)",
        secs,
        concurrency,
        move |_, _| {
            let (mut c, tk, ct) = (
                MessagingServiceClient::new(ch.clone()),
                tk.clone(),
                ct.clone(),
            );
            async move {
                let req = pb::GetConversationRequest {
                    contact_id: (*ct).clone(),
                    page_size: 50,
                    page_token: String::new(),
                };
                c.get_conversation(authed(req, &tk)).await.is_ok()
            }
        },
    )
    .await;
    let (ch, tk) = (channel.clone(), token.clone());
    let listc = run(
        "ListConversations, 20 conversations",
        secs,
        concurrency,
        move |_, _| {
            let (mut c, tk) = (MessagingServiceClient::new(ch.clone()), tk.clone());
            async move {
                c.list_conversations(authed(
                    pb::ListConversationsRequest {
                        page_size: 20,
                        page_token: String::new(),
                        archived: false,
                    },
                    &tk,
                ))
                .await
                .is_ok()
            }
        },
    )
    .await;

    // The gateway in front of the same core, for the REST API.
    let gw_listener = TcpListener::bind("127.0.0.1:0").await?;
    let gw_addr = gw_listener.local_addr()?;
    let gw_vars: HashMap<&str, String> = HashMap::from([
        ("MESSAGING_CORE_URL", format!("http://{addr}")),
        (
            "TWILIO_ACCOUNT_SID",
            "AC00000000000000000000000000000000".into(),
        ),
        ("TWILIO_AUTH_TOKEN", "loadgen".into()),
        ("JWT_HS256_SECRET", SECRET.into()),
        ("GATEWAY_RATE_LIMIT_PER_SEC", "1000000".into()),
    ]);
    let gw_config = webhook_gateway::GatewayConfig::from_vars(&|k| gw_vars.get(k).cloned())?;
    tokio::spawn(webhook_gateway::serve(
        gw_config,
        gw_listener,
        shutdown.clone(),
    ));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let gw_base = Arc::new(format!("http://{gw_addr}"));

    let (h, b) = (http.clone(), gw_base.clone());
    let http_base = run(
        "baseline: gateway GET /healthz (HTTP/1.1)",
        secs,
        concurrency,
        move |_, _| {
            let (h, b) = (h.clone(), b.clone());
            async move {
                match h.get(format!("{b}/healthz")).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        },
    )
    .await;
    let (h, b, tk) = (http.clone(), gw_base.clone(), token.clone());
    let rest_send = run(
        "REST POST /api/messages/send",
        secs,
        concurrency,
        move |w, i| {
            let (h, b, tk) = (h.clone(), b.clone(), tk.clone());
            async move {
                let body = serde_json::json!({
                    "from": "+15005550006",
                    "to": format!("+1415555{:04}", w % 50),
                    "body": format!("REST load message {w}-{i}: your code is 123456"),
                });
                match h
                    .post(format!("{b}/api/messages/send"))
                    .bearer_auth(&*tk)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        },
    )
    .await;
    let (h, b, tk, ct) = (
        http.clone(),
        gw_base.clone(),
        token.clone(),
        contact.clone(),
    );
    let rest_get = run(
        "REST GET conversation, 50 messages",
        secs,
        concurrency,
        move |_, _| {
            let (h, b, tk, ct) = (h.clone(), b.clone(), tk.clone(), ct.clone());
            async move {
                match h
                    .get(format!("{b}/api/messages/conversations/{ct}?pageSize=50"))
                    .bearer_auth(&*tk)
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        },
    )
    .await;

    println!(
        "\nloadgen: {secs} s per workload, {concurrency} concurrent clients, loopback, {}",
        if database_url.starts_with("sqlite") {
            "SQLite (WAL, synchronous=FULL)"
        } else {
            "PostgreSQL"
        }
    );
    println!(
        "{:<46} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "workload", "req/s", "p50", "p99", "vs base", "errors"
    );
    let base = baseline.rps();
    for o in [
        &baseline, &send, &get, &listc, &http_base, &rest_send, &rest_get,
    ] {
        println!(
            "{:<46} {:>10.0} {:>8.2}ms {:>8.2}ms {:>8.3}x {:>7}",
            o.name,
            o.rps(),
            o.pct(0.5).as_secs_f64() * 1e3,
            o.pct(0.99).as_secs_f64() * 1e3,
            o.rps() / base,
            o.errors
        );
    }
    println!(
        "\nREST through the gateway vs the same call over gRPC: send {:.2}x, get conversation {:.2}x",
        rest_send.rps() / send.rps(),
        rest_get.rps() / get.rps()
    );
    shutdown.cancel();
    Ok(())
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}
