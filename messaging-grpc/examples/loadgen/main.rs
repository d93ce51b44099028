//! Load generator: every figure next to the floor of the same machine, measured in the
//! same run with the same concurrency.
//!
//! Floors: a bare tonic echo server (`echo_floor`) and a bare hyper 1 server answering
//! 200 (`hyper_floor`). Then the real `messaging serve` and `webhook-gateway` binaries:
//! SendSms from one user and from as many users as callers, ListConversations and
//! GetConversation pages of 50, REST sends and Twilio-signed inbound webhooks through
//! the gateway. Every server is its own process (its CPU and memory are its own; RSS is
//! read from /proc), gRPC callers share a few HTTP/2 connections round-robin, HTTP
//! callers each keep one HTTP/1.1 connection, and every request, token and webhook
//! signature is built before the clock runs.
//!
//! cargo build --release -p messaging-grpc --examples --bins
//! ./target/release/examples/loadgen [--secs 10] [--concurrency 64] [--database-url URL] [--read-only]

#[path = "../common/bench_env.rs"]
mod bench_env;
mod driver;
#[path = "../common/echo.rs"]
mod echo;
mod grpc;
mod http;
mod procs;
mod report;
mod setup;

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use hyper::{Method, StatusCode, body::Bytes};

use crate::{
    driver::Measured,
    grpc::{EchoCaller, ServiceCaller},
    http::{HttpCaller, Pool, Prebuilt, Requests},
    procs::Server,
    report::{Floor, Report, Row, Target},
};
use commpro_messaging_api::v1 as pb;

#[derive(Parser)]
#[command(about = "Load generator: floors and scenarios in one run")]
struct Args {
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Unmeasured seconds before each scenario (connections and caches warm up).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Concurrent callers, the same for floors and scenarios.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the gRPC callers share round-robin.
    #[arg(long, default_value_t = 4)]
    channels: usize,
    /// The core's database (`sqlite://…` or an existing `postgres://…` database);
    /// default: a new SQLite file in a temporary folder.
    #[arg(long)]
    database_url: Option<String>,
    /// Only the floors and the page reads, on a database the `dataset` example filled
    /// (nothing is written, so its size stays what it was).
    #[arg(long)]
    read_only: bool,
    /// Where `messaging`, `webhook-gateway` and `examples/` are (default: the build
    /// folder this loader was built into).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Pre-signed webhooks (each MessageSid is sent once); default 15,000 per second of
    /// the scenario.
    #[arg(long)]
    webhook_pool: Option<usize>,
    /// Keep the servers' logs in this folder (default: a temporary one, removed).
    #[arg(long)]
    logs: Option<PathBuf>,
    /// Exit 1 on any error or a scenario without answers (CI smoke run).
    #[arg(long)]
    fail_on_error: bool,
}

struct Run {
    args: Args,
    report: Report,
}

fn mib(m: (f64, f64)) -> String {
    format!("{:.0} MB", m.0)
}

impl Run {
    fn durations(&self) -> (Duration, Duration) {
        (
            Duration::from_secs(self.args.warmup),
            Duration::from_secs(self.args.secs),
        )
    }

    async fn measure<C: driver::Call>(&self, name: &str, callers: Vec<C>) -> Measured {
        let (warmup, secs) = self.durations();
        eprintln!("loadgen: {name} …");
        driver::run(callers, warmup, secs).await
    }

    fn push(&mut self, name: &str, floor: Option<Floor>, target: Option<Target>, m: Measured, rss: String) {
        self.report.rows.push(Row {
            name: name.into(),
            floor,
            target,
            m,
            rss,
        });
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let logs = args.logs.clone().unwrap_or_else(|| tmp.path().join("logs"));
    std::fs::create_dir_all(&logs)?;
    let bin_dir = procs::bin_dir(args.bin_dir.clone())?;
    let conc = args.concurrency.max(1);
    let load_before = load_average();
    let mut run = Run {
        args,
        report: Report { rows: Vec::new() },
    };

    // Floors first, each alone on the machine with its own server process.
    {
        let server = procs::start_floor(&bin_dir, "echo_floor", &logs)?;
        let channels = grpc::channels(server.addr, run.args.channels).await?;
        let callers = (0..conc)
            .map(|i| EchoCaller::new(channels[i % channels.len()].clone()))
            .collect();
        let m = run.measure("floor: tonic echo", callers).await;
        run.push("floor: tonic echo", None, None, m, mib(server.memory()));
    }
    {
        let server = procs::start_floor(&bin_dir, "hyper_floor", &logs)?;
        let body = Bytes::from(vec![b'x'; 300]);
        let mut callers = Vec::with_capacity(conc);
        for _ in 0..conc {
            let req = Prebuilt::new(Method::POST, server.addr, "/", body.clone());
            callers.push(HttpCaller::new(server.addr, Requests::Ring(vec![req], 0), StatusCode::OK).await?);
        }
        let m = run.measure("floor: hyper 200", callers).await;
        run.push("floor: hyper 200", None, None, m, mib(server.memory()));
    }

    // The real servers.
    let data_dir = tmp.path().join("core");
    let database_url = run.args.database_url.clone().unwrap_or_else(|| {
        format!("sqlite://{}?mode=rwc", data_dir.join("bench.db").display())
    });
    let backend = if database_url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite (WAL, synchronous=FULL)"
    };
    let core_addr = procs::free_addr()?;
    let mut core_vars = bench_env::core_vars(&database_url, &data_dir.display().to_string());
    core_vars.push(("MESSAGING_GRPC_ADDR".into(), core_addr.to_string()));
    let mut core = procs::start_binary(&bin_dir, "messaging", &["serve"], core_addr, &core_vars, &logs).await?;
    let channels = grpc::channels(core.addr, run.args.channels).await?;
    let tokens = setup::Tokens::new();
    let mut gateway: Option<Server> = None;

    if !run.args.read_only {
        eprintln!("loadgen: assigning numbers and seeding the readers …");
        let (one, many) = setup::senders(&channels[0], &tokens, conc).await?;
        setup::seed_readers(&channels[0], &tokens).await?;

        let callers = (0..conc)
            .map(|i| ServiceCaller::new(channels[i % channels.len()].clone(), &one.token, setup::sms_sends(&one, i)))
            .collect();
        let m = run.measure("SendSms, one user", callers).await;
        run.push("SendSms, one user", Some(Floor::Tonic), Some(Target { ratio: 0.30, p99_ms: 20.0 }), m, mib(core.memory()));

        let callers = (0..conc)
            .map(|i| {
                let s = &many[i % many.len()];
                ServiceCaller::new(channels[i % channels.len()].clone(), &s.token, setup::sms_sends(s, i))
            })
            .collect();
        let name = format!("SendSms, {} users", many.len());
        let m = run.measure(&name, callers).await;
        run.push(&name, Some(Floor::Tonic), Some(Target { ratio: 0.30, p99_ms: 20.0 }), m, mib(core.memory()));
    }

    // Page reads: the readers' first pages (50 conversations, 50 messages).
    let mut readers = Vec::new();
    for r in 0..bench_env::READERS {
        readers.push(setup::reader(&channels[0], &tokens, r).await?);
    }
    let page = Target { ratio: 0.30, p99_ms: 5.0 };
    let callers = (0..conc)
        .map(|i| {
            let (token, _) = &readers[i % readers.len()];
            let req = pb::ListConversationsRequest { page_size: 50, ..Default::default() };
            ServiceCaller::new(channels[i % channels.len()].clone(), token, vec![req])
        })
        .collect();
    let m = run.measure("ListConversations, page of 50", callers).await;
    run.push("ListConversations, page of 50", Some(Floor::Tonic), Some(page), m, mib(core.memory()));
    let callers = (0..conc)
        .map(|i| {
            let (token, contact) = &readers[i % readers.len()];
            let req = pb::GetConversationRequest {
                contact_id: contact.clone(),
                page_size: 50,
                page_token: String::new(),
            };
            ServiceCaller::new(channels[i % channels.len()].clone(), token, vec![req])
        })
        .collect();
    let m = run.measure("GetConversation, page of 50", callers).await;
    run.push("GetConversation, page of 50", Some(Floor::Tonic), Some(page), m, mib(core.memory()));

    if !run.args.read_only {
        let gw_addr = procs::free_addr()?;
        let gw_vars: Vec<(String, String)> = [
            ("GATEWAY_HTTP_ADDR", gw_addr.to_string()),
            ("MESSAGING_CORE_URL", format!("http://{core_addr}")),
            ("GATEWAY_PUBLIC_URL", format!("http://{gw_addr}")),
            ("TWILIO_ACCOUNT_SID", bench_env::ACCOUNT_SID.into()),
            ("TWILIO_AUTH_TOKEN", bench_env::AUTH_TOKEN.into()),
            ("JWT_HS256_SECRET", bench_env::JWT_SECRET.into()),
            // Every caller is 127.0.0.1: one per-source budget would measure the limiter.
            ("GATEWAY_RATE_LIMIT_PER_SEC", "1000000".into()),
            ("GATEWAY_METRICS_ADDR", "off".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let gw = procs::start_binary(&bin_dir, "webhook-gateway", &[], gw_addr, &gw_vars, &logs).await?;
        let many: Vec<setup::Sender> = (0..conc)
            .map(|i| {
                let user = format!("load-user-{i}");
                Ok(setup::Sender { number: setup::sender_number(i), token: tokens.user(&user)? })
            })
            .collect::<anyhow::Result<_>>()?;

        let mut callers = Vec::with_capacity(conc);
        for i in 0..conc {
            let reqs = setup::rest_sends(gw.addr, &many[i % many.len()], i);
            callers.push(HttpCaller::new(gw.addr, Requests::Ring(reqs, 0), StatusCode::OK).await?);
        }
        let name = format!("REST send, {} users", many.len());
        let m = run.measure(&name, callers).await;
        let rss = format!("{} + gateway {}", mib(core.memory()), mib(gw.memory()));
        run.push(&name, Some(Floor::Hyper), Some(Target { ratio: 0.10, p99_ms: 25.0 }), m, rss);

        let n = run
            .args
            .webhook_pool
            .unwrap_or(15_000 * (run.args.secs + run.args.warmup) as usize);
        eprintln!("loadgen: pre-signing {n} webhooks …");
        let numbers: Vec<String> = many.iter().map(|s| s.number.clone()).collect();
        let pool = Pool::new(setup::webhooks(gw.addr, &numbers, n));
        let mut callers = Vec::with_capacity(conc);
        for _ in 0..conc {
            callers.push(HttpCaller::new(gw.addr, Requests::Pool(pool.clone()), StatusCode::OK).await?);
        }
        let m = run.measure("signed inbound webhook → stored", callers).await;
        eprintln!("loadgen: {} of {n} pre-signed webhooks sent", pool.used());
        let rss = format!("{} + gateway {}", mib(core.memory()), mib(gw.memory()));
        run.push("signed inbound webhook → stored", Some(Floor::Hyper), Some(Target { ratio: 0.20, p99_ms: 25.0 }), m, rss);
        gateway = Some(gw);
    }

    core.check_alive()?;
    let peak = core.memory().1;
    println!(
        "\nloadgen: {} s per scenario after {} s of warm-up, {conc} callers ({} HTTP/2 connections for gRPC, one HTTP/1.1 connection per caller for HTTP), {backend}{}; load average before {load_before}, after {}",
        run.args.secs,
        run.args.warmup,
        run.args.channels,
        if run.args.read_only { ", read-only" } else { "" },
        load_average()
    );
    println!(
        "peak RSS (VmHWM): core {peak:.0} MB (target < 150 MB){}\n",
        gateway
            .as_ref()
            .map(|g| format!(", gateway {:.0} MB", g.memory().1))
            .unwrap_or_default()
    );
    run.report.print();
    if run.args.logs.is_some() {
        eprintln!("loadgen: server logs in {}", logs.display());
    }
    drop(gateway);
    drop(core);
    if run.args.fail_on_error && !run.report.clean() {
        anyhow::bail!("errors during the run (see the table)");
    }
    Ok(())
}
