//! Running the servers: `serve` (production core) and `dev` (everything locally).

use std::{io::Write, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use webhook_gateway::GatewayConfig;

use crate::{
    App, Config, Mode,
    auth::{JwtIssuer, Role},
    cli::{
        dev_console::{Console, WebhookReceipts},
        dev_identity::{dev_twilio_identity, env},
    },
    config::JwtKeyConfig,
    provider::{ConsoleProvider, PhoneLog, StatusSink},
};

/// How long after a send the console provider reports the message delivered.
const CONSOLE_DELIVERY_DELAY: Duration = Duration::from_secs(1);

pub fn dev_token(
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

pub async fn bind(var: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{var}: cannot listen on {addr}"))
}

pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        commpro_telemetry::signals::wait_for_shutdown().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}

/// Binds an admin (metrics) port. In `dev`, a port not set explicitly (`any_free`) is
/// the default when it is free and any free port otherwise, so a second dev stack
/// (other MESSAGING_GRPC_ADDR, GATEWAY_HTTP_ADDR and MESSAGING_DATA_DIR) starts beside
/// the first; the banner prints where each one landed.
async fn bind_admin(var: &str, addr: SocketAddr, any_free: bool) -> anyhow::Result<TcpListener> {
    if !any_free || env(var).is_some() {
        return bind(var, addr).await;
    }
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(_) => bind(var, SocketAddr::new(addr.ip(), 0)).await,
    }
}

/// Starts the core's metrics endpoint on MESSAGING_METRICS_ADDR (unless `off`): the
/// recorder is installed before the servers count anything. Returns where it listens.
async fn start_core_metrics(
    config: &Config,
    app: &App,
    shutdown: &CancellationToken,
    any_free: bool,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(addr) = config.metrics_addr else {
        return Ok(None);
    };
    let listener = bind_admin("MESSAGING_METRICS_ADDR", addr, any_free).await?;
    let bound = listener.local_addr()?;
    commpro_telemetry::metrics::recorder().map_err(anyhow::Error::msg)?;
    tokio::spawn(commpro_telemetry::metrics::serve(
        listener,
        crate::metrics::PREFIX,
        app.probes(),
        shutdown.clone(),
    ));
    Ok(Some(bound))
}

/// Starts the gateway's metrics endpoint on GATEWAY_METRICS_ADDR (unless `off`).
async fn start_gateway_metrics(
    config: &GatewayConfig,
    shutdown: &CancellationToken,
    any_free: bool,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(addr) = config.metrics_addr else {
        return Ok(None);
    };
    let listener = bind_admin("GATEWAY_METRICS_ADDR", addr, any_free).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(webhook_gateway::metrics_endpoint(
        config,
        listener,
        shutdown.clone(),
    )?);
    Ok(Some(bound))
}

pub async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env(Mode::Serve)?;
    if config.uses_shared_jwt_secret() {
        // Loud on purpose: every holder of the secret, the internet-facing gateway
        // included, can mint an admin token for anyone.
        tracing::warn!(
            "JWT_HS256_SECRET is set: tokens are checked with a shared secret, so anything \
             holding it (the webhook gateway too) can mint admin tokens. In production set \
             JWT_PUBLIC_KEY_FILE (the auth service's public key) and give the gateway \
             GATEWAY_SERVICE_KEY_FILE or GATEWAY_SERVICE_TOKEN instead (docs/security.md)"
        );
        eprintln!(
            "WARNING: JWT_HS256_SECRET in production lets the gateway mint admin tokens; \
             use JWT_PUBLIC_KEY_FILE (docs/security.md)"
        );
    }
    // SQLite is one process: refuse to start on a file another process serves.
    let _sqlite_lock = crate::store::process_lock::lock_sqlite(&config.database_url)?;
    let listener = bind("MESSAGING_GRPC_ADDR", config.grpc_addr).await?;
    let app = App::build(&config).await?;
    let shutdown = shutdown_on_signal();
    start_core_metrics(&config, &app, &shutdown, false).await?;
    tracing::info!(addr = %config.grpc_addr, metrics = ?config.metrics_addr, "gRPC core listening");
    crate::serve(app, listener, shutdown).await
}

pub async fn dev() -> anyhow::Result<()> {
    let config = Config::from_env(Mode::Dev)?;
    let _sqlite_lock = crate::store::process_lock::lock_sqlite(&config.database_url)?;
    let grpc = bind("MESSAGING_GRPC_ADDR", config.grpc_addr).await?;
    let gateway = bind("GATEWAY_HTTP_ADDR", config.gateway_addr).await?;
    let gateway_addr = gateway.local_addr().context("GATEWAY_HTTP_ADDR")?;
    let mut app = App::build(&config).await?;
    let console = dev_console(&config, &mut app, gateway_addr)?;
    let gw_config = dev_gateway_config(&config)?;
    let shutdown = shutdown_on_signal();
    let core_metrics = start_core_metrics(&config, &app, &shutdown, true).await?;
    let gateway_metrics = start_gateway_metrics(&gw_config, &shutdown, true).await?;
    let token = dev_token(&config, "dev-user", &[Role::Admin], 24)?;
    print_banner(&config, [core_metrics, gateway_metrics], &token);

    let mut core = tokio::spawn(crate::serve(app, grpc, shutdown.clone()));
    let mut gw = tokio::spawn(webhook_gateway::serve_with_dev_console(
        gw_config,
        gateway,
        shutdown.clone(),
        console,
    ));

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

/// The dev console's backend. With the console SMS provider, its phones are the
/// console's and its delivery receipts arrive as signed status callbacks through the
/// gateway at `gateway`, as Twilio's would.
fn dev_console(
    config: &Config,
    app: &mut App,
    gateway: SocketAddr,
) -> anyhow::Result<webhook_gateway::DevConsole> {
    let phones = PhoneLog::default();
    if matches!(config.sms_provider, crate::config::ProviderConfig::Console) {
        let receipts: Arc<dyn StatusSink> = WebhookReceipts::new(config, gateway)?;
        app.provider = Arc::new(
            ConsoleProvider::new(Some(receipts), CONSOLE_DELIVERY_DELAY)
                .with_phones(phones.clone()),
        );
    }
    let backend = Console::new(config, app.admin.clone(), phones, gateway)?;
    Ok(webhook_gateway::DevConsole::new(Arc::new(backend), gateway))
}

/// The gateway's settings for the local stack: the environment's values where set,
/// the core's address and dev credentials otherwise.
pub fn dev_gateway_config(config: &Config) -> anyhow::Result<GatewayConfig> {
    let (account, token) = dev_twilio_identity(config)?;
    let jwt_secret = match &config.jwt_key {
        JwtKeyConfig::Hs256(secret) => {
            Some(String::from_utf8_lossy(secret.expose_secret()).into_owned())
        }
        JwtKeyConfig::PublicKeyFile { .. } => None,
    };
    let get = |k: &str| match k {
        "MESSAGING_CORE_URL" => Some(format!("http://{}", config.grpc_addr)),
        "GATEWAY_PUBLIC_URL" => Some(config.gateway_public_url.clone()),
        "TWILIO_ACCOUNT_SID" => Some(account.clone()),
        "TWILIO_AUTH_TOKEN" => env("TWILIO_AUTH_TOKEN").or_else(|| Some(token.clone())),
        "JWT_HS256_SECRET" => jwt_secret.clone(),
        "JWT_ISSUER" => Some(config.jwt_issuer.clone()),
        "JWT_AUDIENCE" => Some(config.jwt_audience.clone()),
        "MEDIA_URL_SECRET" => Some(String::from_utf8_lossy(&config.media.url_secret).into_owned()),
        other => env(other),
    };
    Ok(GatewayConfig::from_vars(&get)?)
}

/// `metrics`: where the core's and the gateway's metrics endpoints listen.
fn print_banner(config: &Config, metrics: [Option<SocketAddr>; 2], token: &str) {
    let [core_metrics, gateway_metrics] = metrics;
    let grpc = config.grpc_addr;
    let metrics_url = |addr: Option<SocketAddr>| {
        addr.map_or_else(|| "off".to_owned(), |a| format!("http://{a}/metrics"))
    };
    let banner = format!(
        "\nCommPro Messaging — local dev stack\n\
         \n  gRPC core      {grpc}   (reflection on: grpcurl -plaintext {grpc} list)\
         \n  dev console    http://{gw}/dev   (an inbox beside the contact's phone, in your browser)\
         \n  gateway        http://{gw}   (GET /healthz, /readyz; Twilio webhooks)\
         \n  REST API       http://{gw}/api   (OpenAPI: http://{gw}/api/openapi.json)\
         \n  metrics        core {core_metrics}   gateway {gateway_metrics}   (Prometheus text)\
         \n  database       {db}\
         \n  data folder    {data}\
         \n  SMS provider   {provider}\
         \n\n  Dev token (user `dev-user`, role admin, valid 24 h):\
         \n\n    export TOKEN={token}\
         \n\n  Try it:\
         \n    grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"number\":\"+15005550006\",\"user_id\":\"dev-user\"}}' {grpc} commpro.messaging.v1.MessagingAdmin/AssignNumber\
         \n    grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"from\":\"+15005550006\",\"to\":\"+14155550100\",\"body\":\"Hello from CommPro!\"}}' {grpc} commpro.messaging.v1.MessagingService/SendSms\
         \n    grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" {grpc} commpro.messaging.v1.MessagingService/ListConversations\
         \n    cargo run -q -p messaging-grpc -- webhook inbound --from +14155550100 --to +15005550006 --body 'Hi back'   (a Twilio-signed inbound SMS)\
         \n\n  The seed's REST call (assign its number to dev-user first):\
         \n    cargo run -q -p messaging-grpc -- numbers assign --number +33123456789 --user dev-user\
         \n    curl -X POST http://localhost:{port}/api/messages/send -H \"Authorization: Bearer $TOKEN\" -H \"Content-Type: application/json\" -d '{{\"from\":\"+33123456789\",\"to\":\"+33987654321\",\"body\":\"Hello from CommPro!\"}}'\
         \n    curl -H \"Authorization: Bearer $TOKEN\" http://localhost:{port}/api/messages/conversations\
         \n\n  Ctrl-C stops everything.\n",
        gw = config.gateway_addr,
        port = config.gateway_addr.port(),
        core_metrics = metrics_url(core_metrics),
        gateway_metrics = metrics_url(gateway_metrics),
        provider = match &config.sms_provider {
            crate::config::ProviderConfig::Console => {
                "console (messages are printed, not sent)".to_owned()
            }
            crate::config::ProviderConfig::Twilio(_) => {
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
