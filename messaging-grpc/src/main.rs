//! `messaging`: the core service binary and its operator commands.

use std::{io::Write, net::SocketAddr, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use messaging_grpc::{
    App, Config, Mode,
    auth::{JwtIssuer, Role},
    config::JwtKeyConfig,
    crypto::{DataKey, MasterKey},
    store::Store,
    telemetry,
};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use webhook_gateway::GatewayConfig;

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
    /// Master key utilities.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random master key entry (`id:base64`) for MESSAGING_MASTER_KEYS.
    Generate {
        #[arg(long, default_value = "k1")]
        id: String,
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
    let quiet = matches!(cli.command, Command::Token { .. } | Command::Keys { .. });
    if !quiet {
        telemetry::init();
    }
    if let Err(e) = run(cli.command).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve().await,
        Command::Dev => dev().await,
        Command::Migrate => {
            let config = Config::from_env(Mode::Dev)?;
            let store = Store::connect(&config.database_url)
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
        Command::Keys {
            command: KeysCommand::Generate { id },
        } => {
            let key = MasterKey::new(id, DataKey::generate()?);
            // Validate the id the same way MESSAGING_MASTER_KEYS will.
            messaging_grpc::crypto::MasterKeyRing::parse(&key.to_config_entry())
                .map_err(|e| anyhow::anyhow!("--id: {e}"))?;
            println!("{}", key.to_config_entry().as_str());
            Ok(())
        }
    }
}

fn dev_token(
    config: &Config,
    user: &str,
    roles: &[Role],
    ttl_hours: u64,
) -> anyhow::Result<String> {
    let JwtKeyConfig::Hs256(secret) = &config.jwt_key else {
        anyhow::bail!(
            "`messaging token` signs with HS256; JWT_PUBLIC_KEY_FILE is set, so tokens come from your identity provider"
        );
    };
    let issuer = JwtIssuer::hs256(
        secret.expose_secret(),
        &config.jwt_issuer,
        &config.jwt_audience,
    );
    issuer
        .issue(user, roles, Duration::from_secs(ttl_hours * 3600))
        .map_err(|e| anyhow::anyhow!("signing the token: {e}"))
}

async fn bind(var: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{var}: cannot listen on {addr}"))
}

fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        webhook_gateway::signals::wait_for_shutdown().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env(Mode::Serve)?;
    let listener = bind("MESSAGING_GRPC_ADDR", config.grpc_addr).await?;
    let app = App::build(&config).await?;
    tracing::info!(addr = %config.grpc_addr, "gRPC core listening");
    messaging_grpc::serve(app, listener, shutdown_on_signal()).await
}

async fn dev() -> anyhow::Result<()> {
    let config = Config::from_env(Mode::Dev)?;
    let grpc = bind("MESSAGING_GRPC_ADDR", config.grpc_addr).await?;
    let gateway = bind("GATEWAY_HTTP_ADDR", config.gateway_addr).await?;
    let app = App::build(&config).await?;
    let token = dev_token(&config, "dev-user", &[Role::Admin], 24)?;
    print_banner(&config, &token);

    let shutdown = shutdown_on_signal();
    let mut core = tokio::spawn(messaging_grpc::serve(app, grpc, shutdown.clone()));
    let gw_config = GatewayConfig {
        core_url: format!("http://{}", config.grpc_addr),
    };
    let mut gw = tokio::spawn(webhook_gateway::serve(gw_config, gateway, shutdown.clone()));

    // Whichever server stops first (signal or failure), stop and drain the other too.
    let (core_result, gw_result) = tokio::select! {
        r = &mut core => {
            shutdown.cancel();
            (r, gw.await)
        }
        r = &mut gw => {
            shutdown.cancel();
            (core.await, r)
        }
    };
    for (name, result) in [("gRPC core", core_result), ("gateway", gw_result)] {
        match result {
            Ok(Ok(())) => tracing::info!(server = name, "stopped"),
            Ok(Err(e)) => return Err(e.context(format!("{name} failed"))),
            Err(e) => anyhow::bail!("{name} panicked: {e}"),
        }
    }
    Ok(())
}

fn print_banner(config: &Config, token: &str) {
    let grpc = config.grpc_addr;
    let banner = format!(
        "\nCommPro Messaging — local dev stack\n\
         \n  gRPC core      {grpc}   (reflection on: grpcurl -plaintext {grpc} list)\
         \n  gateway        http://{gw}   (GET /healthz, /readyz)\
         \n  database       {db}\
         \n  data folder    {data}\
         \n  SMS provider   {provider}\
         \n\n  Dev token (user `dev-user`, role admin, valid 24 h):\
         \n\n    export TOKEN={token}\
         \n\n  Try it:\
         \n    grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"number\":\"+15005550006\",\"user_id\":\"dev-user\"}}' {grpc} commpro.messaging.v1.MessagingAdmin/AssignNumber\
         \n    grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"from\":\"+15005550006\",\"to\":\"+14155550100\",\"body\":\"Hello from CommPro!\"}}' {grpc} commpro.messaging.v1.MessagingService/SendSms\
         \n    grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" {grpc} commpro.messaging.v1.MessagingService/ListConversations\
         \n\n  Ctrl-C stops everything.\n",
        gw = config.gateway_addr,
        provider = match &config.sms_provider {
            messaging_grpc::config::ProviderConfig::Console => {
                "console (messages are printed, not sent)".to_owned()
            }
            messaging_grpc::config::ProviderConfig::Twilio(_) => {
                format!("twilio at {}", config.twilio_api_base)
            }
        },
        db = config.database_url,
        data = config.data_dir.display(),
    );
    // Best effort: a closed stdout (piped into `head`, say) must not stop the service.
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(banner.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
}
