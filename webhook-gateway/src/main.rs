//! `webhook-gateway`: runs the gateway alone (production: its own replicas).

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let config = webhook_gateway::GatewayConfig::from_env()?;
    let addr = webhook_gateway::GatewayConfig::listen_addr()?;
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "webhook gateway listening");
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        webhook_gateway::signals::wait_for_shutdown().await;
        trigger.cancel();
    });
    webhook_gateway::serve(config, listener, shutdown).await
}
