//! `webhook-gateway`: runs the gateway alone (production: its own replicas).

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// jemalloc for the whole process, SQLite's C allocations included (the unprefixed
/// `malloc`/`free` it exports replace glibc's): under load glibc's allocator spent a
/// third of the core's CPU in `malloc`/`free`/`malloc_consolidate`, contended between
/// tokio workers and SQLite's connection threads (BENCHMARKS.md, profiles).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = commpro_telemetry::Telemetry::init(
        &commpro_telemetry::OtlpSettings::from_env("commpro-messaging-gateway")
            .map_err(anyhow::Error::msg)?,
    )
    .map_err(anyhow::Error::msg)?;
    let config = webhook_gateway::GatewayConfig::from_env()?;
    let addr = webhook_gateway::GatewayConfig::listen_addr()?;
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "webhook gateway listening");
    let shutdown = CancellationToken::new();
    if let Some(metrics_addr) = config.metrics_addr {
        let metrics = TcpListener::bind(metrics_addr).await.map_err(|e| {
            anyhow::anyhow!("GATEWAY_METRICS_ADDR: cannot listen on {metrics_addr}: {e}")
        })?;
        tracing::info!(addr = %metrics_addr, "gateway metrics on /metrics");
        tokio::spawn(webhook_gateway::metrics_endpoint(
            &config,
            metrics,
            shutdown.clone(),
        )?);
    }
    let serve = webhook_gateway::serve(config, listener, shutdown.clone());
    tokio::pin!(serve);
    // A signal starts the drain; the server's own end (or failure) ends the process.
    let result = tokio::select! {
        result = &mut serve => result,
        () = commpro_telemetry::signals::wait_for_shutdown() => {
            shutdown.cancel();
            serve.await
        }
    };
    telemetry.shutdown();
    result
}
