//! `messaging`: the core service binary and its operator commands.

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use messaging_grpc::{
    Config, Mode,
    auth::Role,
    cli::{self, keys::KeysCommand, numbers::NumbersCommand, run::dev_token},
    store::Store,
    telemetry,
};

/// jemalloc for the whole process, SQLite's C allocations included (the unprefixed
/// `malloc`/`free` it exports replace glibc's): under load glibc's allocator spent a
/// third of the core's CPU in `malloc`/`free`/`malloc_consolidate`, contended between
/// tokio workers and SQLite's connection threads (BENCHMARKS.md, profiles).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "messaging", version, about = "CommPro Messaging core service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC core (production: explicit keys required).
    Serve,
    /// Run everything locally: core + webhook gateway, SQLite, dev keys, console provider.
    Dev,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a token the dev service accepts (HS256 with the configured or dev secret).
    Token {
        /// The user id (`sub`).
        #[arg(long)]
        user: String,
        /// Roles to grant; repeat for several.
        #[arg(long = "role", value_enum)]
        roles: Vec<RoleArg>,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
    /// Post a Twilio-signed webhook to the local gateway (what Twilio would send).
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Assign or list Twilio numbers through the running core (MessagingAdmin).
    Numbers {
        #[command(flatten)]
        admin: AdminToken,
        #[command(subcommand)]
        command: NumbersCommand,
    },
    /// A user's data export through the running core: JSON lines on stdout, one
    /// message per line, newest first (MessagingAdmin.ExportUser; audited).
    Export {
        #[arg(long)]
        user: String,
        /// Also write the decrypted media files into this folder.
        #[arg(long = "media")]
        media: Option<std::path::PathBuf>,
        #[command(flatten)]
        admin: AdminToken,
    },
    /// Container health check: exit 0 when the core (gRPC health) or the gateway
    /// (an HTTP URL such as /readyz) answers healthy, 1 otherwise.
    Health {
        /// A core's gRPC URL (grpc.health.v1, overall status).
        #[arg(
            long,
            conflicts_with = "http",
            default_value = "http://127.0.0.1:50051"
        )]
        grpc: String,
        /// An HTTP URL that must answer 2xx, e.g. http://127.0.0.1:3003/healthz.
        #[arg(long)]
        http: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
    /// Keys: generate a master key entry; through the running core, key status,
    /// master-key rotation, a user's new key version, crypto-shredding.
    Keys {
        #[command(flatten)]
        admin: AdminToken,
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// The admin credential of the commands that call the running core.
#[derive(Args)]
struct AdminToken {
    /// An admin JWT; without it one is minted from the HS256 secret (dev setups).
    #[arg(
        long,
        env = "MESSAGING_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    token: Option<String>,
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// An inbound SMS/MMS to one of your numbers.
    Inbound {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "")]
        body: String,
        /// `URL` or `URL=content/type`; repeat for several.
        #[arg(long = "media")]
        media: Vec<String>,
    },
    /// A delivery status callback for a message SID.
    Status {
        #[arg(long)]
        sid: String,
        #[arg(long)]
        status: String,
        #[arg(long)]
        error_code: Option<i32>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Gateway,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Gateway => Role::Gateway,
        }
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Token { .. }
            | Command::Keys { .. }
            | Command::Webhook { .. }
            | Command::Numbers { .. }
            | Command::Export { .. }
            | Command::Health { .. }
    );
    if !quiet && let Err(e) = telemetry::init() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let result = run(cli.command).await;
    // The last spans (shutdown included) leave before the process does.
    telemetry::shutdown();
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => cli::run::serve().await,
        Command::Dev => cli::run::dev().await,
        Command::Migrate => {
            let config = Config::from_env(Mode::Dev)?;
            let store = Store::connect_with_writers(&config.database_url, config.database_writers)
                .await
                .context("connecting to the database")?;
            store.migrate().await.context("applying migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Token {
            user,
            roles,
            ttl_hours,
        } => {
            let config = Config::from_env(Mode::Dev)?;
            println!(
                "{}",
                dev_token(
                    &config,
                    &user,
                    &roles.into_iter().map(Role::from).collect::<Vec<_>>(),
                    ttl_hours
                )?
            );
            Ok(())
        }
        Command::Webhook { command } => {
            let what = match command {
                WebhookCommand::Inbound {
                    from,
                    to,
                    body,
                    media,
                } => cli::simulate::Simulated::Inbound {
                    from,
                    to,
                    body,
                    media: media
                        .into_iter()
                        .map(|m| match m.rsplit_once('=') {
                            Some((url, ct)) if ct.contains('/') => (url.to_owned(), ct.to_owned()),
                            _ => (m, "image/jpeg".to_owned()),
                        })
                        .collect(),
                },
                WebhookCommand::Status {
                    sid,
                    status,
                    error_code,
                } => cli::simulate::Simulated::Status {
                    sid,
                    status,
                    error_code,
                },
            };
            let (status, body) = cli::simulate::post(what).await?;
            println!("{status} {}", body.trim());
            if status != 200 {
                anyhow::bail!("the gateway answered {status}");
            }
            Ok(())
        }
        Command::Numbers { admin, command } => cli::numbers::run(command, admin.token).await,
        Command::Keys { admin, command } => cli::keys::run(command, admin.token).await,
        Command::Export { user, media, admin } => cli::export::run(user, media, admin.token).await,
        Command::Health {
            grpc,
            http,
            timeout_secs,
        } => {
            let probe = match http {
                Some(url) => cli::health::Probe::Http(url),
                None => cli::health::Probe::Grpc(grpc),
            };
            cli::health::check(probe, std::time::Duration::from_secs(timeout_secs)).await
        }
    }
}
