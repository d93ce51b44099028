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
//! cargo build --release -p messaging-grpc -p webhook-gateway --examples --bins
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
mod scenarios;
mod setup;

use std::{path::PathBuf, time::Duration};

use clap::Parser;

use crate::{
    driver::Measured,
    report::{Floor, Report, Row, Target},
};

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
    /// Run the core's outbox dispatcher (console provider: each send's SENDING, SENT
    /// and DELIVERED writes share the writer with the load, as `messaging dev` and
    /// production do). Off by default, so the figures are the request path's alone.
    #[arg(long)]
    dispatcher: bool,
    /// Exit 1 on any error or a scenario without answers (CI smoke run).
    #[arg(long)]
    fail_on_error: bool,
    /// Run only the scenarios whose name contains one of these words (repeatable, e.g.
    /// `--only "64 users"` to profile one); the floors always run.
    #[arg(long)]
    only: Vec<String>,
    /// Words put in front of the core's command line, e.g.
    /// `--core-prefix valgrind --core-prefix --tool=callgrind`.
    #[arg(long, allow_hyphen_values = true)]
    core_prefix: Vec<String>,
}

/// The run's settings and what it measured so far.
pub struct Run {
    args: Args,
    /// Callers, at least one.
    conc: usize,
    report: Report,
}

/// Resident memory as the table shows it.
pub fn mib(m: (f64, f64)) -> String {
    format!("{:.0} MB", m.0)
}

impl Run {
    fn durations(&self) -> (Duration, Duration) {
        (
            Duration::from_secs(self.args.warmup),
            Duration::from_secs(self.args.secs),
        )
    }

    pub fn wants(&self, name: &str) -> bool {
        self.args.only.is_empty() || self.args.only.iter().any(|w| name.contains(w.as_str()))
    }

    pub async fn measure<C: driver::Call>(&self, name: &str, callers: Vec<C>) -> Measured {
        let (warmup, secs) = self.durations();
        eprintln!("loadgen: {name} …");
        driver::run(callers, warmup, secs).await
    }

    pub fn push(
        &mut self,
        name: &str,
        floor: Option<Floor>,
        target: Option<Target>,
        m: Measured,
        rss: String,
    ) {
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
    let load_before = load_average();
    let mut run = Run {
        conc: args.concurrency.max(1),
        args,
        report: Report { rows: Vec::new() },
    };

    // Floors first, each alone on the machine with its own server process.
    scenarios::floors(&mut run, &bin_dir, &logs).await?;

    // The real core.
    let data_dir = tmp.path().join("core");
    let database_url =
        run.args.database_url.clone().unwrap_or_else(|| {
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
    if run.args.dispatcher {
        core_vars.retain(|(k, _)| k != "OUTBOX_DISPATCHER");
    }
    let core = procs::Binary {
        name: "messaging",
        args: &["serve"],
        addr: core_addr,
        vars: &core_vars,
        prefix: &run.args.core_prefix,
    };
    let mut core = procs::start_binary(&bin_dir, core, &logs).await?;
    let channels = grpc::channels(core.addr, run.args.channels.max(1)).await?;
    let tokens = setup::Tokens::hs256();

    let senders = if run.args.read_only {
        None
    } else {
        eprintln!("loadgen: assigning numbers and seeding the readers …");
        let senders = setup::senders(&channels[0], &tokens, run.conc).await?;
        setup::seed_readers(&channels[0], &tokens).await?;
        scenarios::sends(&mut run, &channels, &senders, &core).await;
        Some(senders)
    };
    scenarios::reads(&mut run, &channels, &tokens, &core).await?;
    let gateway = match &senders {
        Some((_, many)) => {
            let gw = scenarios::start_gateway(&bin_dir, core_addr, &logs).await?;
            scenarios::through_gateway(&mut run, &gw, many, &core).await?;
            Some(gw)
        }
        None => None,
    };

    core.check_alive()?;
    println!(
        "\nloadgen: {} s per scenario after {} s of warm-up, {} callers ({} HTTP/2 connections for gRPC, one HTTP/1.1 connection per caller for HTTP), {backend}, dispatcher {}{}; load average before {load_before}, after {}",
        run.args.secs,
        run.args.warmup,
        run.conc,
        run.args.channels,
        if run.args.dispatcher {
            "on (console provider)"
        } else {
            "off"
        },
        if run.args.read_only {
            ", read-only"
        } else {
            ""
        },
        load_average()
    );
    println!(
        "peak RSS (VmHWM): core {:.0} MB (target < 150 MB){}\n",
        core.memory().1,
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
