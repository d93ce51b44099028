//! Outbox drain: how fast a queued backlog reaches Twilio (the Rust `twilio-fake` on
//! loopback, answering each create after Twilio's latency).
//!
//! cargo run --release -p messaging-grpc --example drain -- [--messages N] [--senders N]
//!     [--latency-ms 150|100-300] [--pacing open|default] [--max-in-flight N]
//!     [--twilio-concurrency N] [--database-url URL] [--writers N] 2>/dev/null
//!
//! Defaults: 10,000 messages over 100 senders (one user each), a create latency of
//! 150 ms, pacing opened wide (PACING_SENDER_SPS / PACING_ACCOUNT_SPS at 100,000, so
//! the figure is the dispatcher's), the production in-flight cap, a temporary SQLite
//! file with synchronous=FULL. `--pacing default` keeps the production pacing (1 MPS
//! per long code, 100 for the account): 100 senders should then run at 100 MPS.
//! `--twilio-concurrency N` gives the fake Twilio's per-account concurrency limit
//! (creates beyond N in progress answer 429 / 20429; default none). The
//! backlog is queued first through the real send path (encrypted, committed), then the
//! server starts with its dispatcher and the clock runs until the fake holds every
//! message.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use messaging_grpc::{App, Config, Mode, messaging::SendSms};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use twilio_fake::{FakeTwilio, Latency};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let number = |name: &str, default: usize| -> anyhow::Result<usize> {
        flag(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| anyhow::anyhow!("{name}: not a number: {v}"))
        })
    };
    let (count, senders) = (number("--messages", 10_000)?, number("--senders", 100)?);
    let latency_spec = flag("--latency-ms").unwrap_or_else(|| "150".into());
    let latency = Latency::parse_millis(&latency_spec)
        .ok_or_else(|| anyhow::anyhow!("--latency-ms: 150 or 100-300, not {latency_spec}"))?;
    let pacing = flag("--pacing").unwrap_or_else(|| "open".into());
    let max_in_flight = flag("--max-in-flight");
    let concurrency = flag("--twilio-concurrency")
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("--twilio-concurrency: not a number: {v}"))
        })
        .transpose()?;
    let dir = tempfile::tempdir()?;
    let database_url = flag("--database-url").unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("drain.db").display()
        )
    });
    messaging_grpc::telemetry::init().map_err(anyhow::Error::msg)?;

    let fake = FakeTwilio::start().await?;
    fake.set_create_latency(latency);
    fake.set_max_open_creates(concurrency);
    let vars: HashMap<String, String> = [
        ("DATABASE_URL", database_url.as_str()),
        ("MESSAGING_DATA_DIR", &dir.path().display().to_string()),
        (
            "JWT_HS256_SECRET",
            "drain-secret-that-is-at-least-32-bytes-long",
        ),
        ("SMS_PROVIDER", "twilio"),
        ("TWILIO_ACCOUNT_SID", twilio_fake::ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", twilio_fake::AUTH_TOKEN),
        ("TWILIO_API_BASE", &fake.base_url()),
        (
            "MEDIA_URL_SECRET",
            "drain-media-url-secret-at-least-32-characters",
        ),
        ("GATEWAY_PUBLIC_URL", "https://gateway.example.test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut vars = vars;
    match pacing.as_str() {
        "open" => {
            vars.insert("PACING_SENDER_SPS".into(), "100000".into());
            vars.insert("PACING_ACCOUNT_SPS".into(), "100000".into());
        }
        "default" => {}
        other => anyhow::bail!("--pacing: open or default, not {other}"),
    }
    // PostgreSQL's write connections (DATABASE_WRITERS), for A/B runs.
    if let Some(writers) = flag("--writers") {
        vars.insert("DATABASE_WRITERS".into(), writers);
    }
    if let Some(cap) = &max_in_flight {
        vars.insert("OUTBOX_MAX_IN_FLIGHT".into(), cap.clone());
    }
    vars.insert(
        "MESSAGING_MASTER_KEYS".into(),
        format!("d1:{}", base64_key()),
    );
    let config = Config::from_vars(&vars, Mode::Serve)?;
    let app = App::build(&config).await?;

    // The backlog, through the real send path.
    let queue_start = Instant::now();
    for s in 0..senders {
        let number = format!("+1500555{s:04}");
        app.admin
            .assign_number("drain", &number, &format!("user-{s}"))
            .await?;
    }
    for i in 0..count {
        let s = i % senders;
        let send = SendSms {
            from: format!("+1500555{s:04}"),
            to: format!("+1415555{:04}", i % 10_000),
            body: format!("backlog message {i}"),
            idempotency_key: String::new(),
            send_at: None,
        };
        app.messaging.send_sms(&format!("user-{s}"), send).await?;
    }
    let queued_in = queue_start.elapsed();

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let server = tokio::spawn(messaging_grpc::serve(app, listener, shutdown.clone()));
    // Counted, not listed: `messages()` clones (and advances) every message, which at
    // a poll every 5 ms spent ~20 % of the machine in the loader's own memmove.
    while fake.created_count() < count {
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!(
                "only {} of {count} reached Twilio in 600 s",
                fake.created_count()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained_in = start.elapsed();
    shutdown.cancel();
    server.await??;
    let creates = fake.create_requests().len();
    let (created, refused) = (fake.created_count(), fake.refused_busy());
    println!(
        "drain: {count} messages over {senders} senders, create latency {latency_spec} ms, pacing {pacing}, max in flight {cap}, Twilio concurrency {limit}, {backend}",
        cap = max_in_flight.as_deref().unwrap_or("default"),
        limit = concurrency.map_or("unlimited".to_owned(), |n| n.to_string()),
        backend = database_url.split(':').next().unwrap_or("?")
    );
    println!(
        "  queued in {:.2} s ({:.0} msg/s through the send path)",
        queued_in.as_secs_f64(),
        count as f64 / queued_in.as_secs_f64()
    );
    println!(
        "  drained in {:.2} s: {:.0} msg/s reached Twilio; {creates} create requests, {refused} refused 429 (duplicates: {})",
        drained_in.as_secs_f64(),
        count as f64 / drained_in.as_secs_f64(),
        created.saturating_sub(count)
    );
    Ok(())
}

fn base64_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}
