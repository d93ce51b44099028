//! Webhook gateway: the only thing Twilio talks to. For now it serves liveness and
//! readiness (ready only when the core answers its gRPC health check); the Twilio
//! webhooks arrive with the gateway issue.

mod health;
mod http;
pub mod signals;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use health::CoreHealth;

/// Gateway settings.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Where the core's gRPC server listens (MESSAGING_CORE_URL).
    pub core_url: String,
}

impl GatewayConfig {
    /// Reads MESSAGING_CORE_URL (default `http://127.0.0.1:50051`).
    pub fn from_env() -> anyhow::Result<Self> {
        let core_url = std::env::var("MESSAGING_CORE_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "http://127.0.0.1:50051".into());
        if !(core_url.starts_with("http://") || core_url.starts_with("https://")) {
            anyhow::bail!("configuration: MESSAGING_CORE_URL: must be an http:// or https:// URL");
        }
        Ok(Self { core_url })
    }
}

/// Serves HTTP on `listener` until `shutdown` is cancelled; in-flight requests get
/// a few seconds to finish.
pub async fn serve(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let core = CoreHealth::new(&config.core_url)?;
    http::serve(listener, core, shutdown, Duration::from_secs(10)).await
}
