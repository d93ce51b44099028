//! Webhook gateway: the only thing Twilio talks to. It checks each request's
//! `X-Twilio-Signature` against the configured public URL, parses Twilio's form, and
//! turns it into a `MessagingIngest` call to the core with a service token. Also
//! `/healthz` and `/readyz` (ready only when the core answers its health check).
//! It also serves the REST API under `/api/` (see [`api`]) for CommPro's web and
//! mobile clients, with the caller's own token. Under `messaging dev` only, it also
//! serves the dev console at `/dev` (see [`DevConsole`]).

mod api;
mod client_ip;
mod config;
mod conn_limit;
mod core;
mod core_tls;
mod credentials;
mod dev;
mod error;
#[doc(hidden)]
pub mod fuzz_support;
mod log_mask;
pub mod metrics;
mod plain;
mod rate_limit;
mod router;
mod server;
pub mod service_token;
mod trace;
mod twilio;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{CorsOrigins, GatewayConfig};
pub use dev::{
    DevBackend, DevConsole, DevError, DevToken, PhoneMessage, PhoneReply, PhoneView, WebhookAnswer,
};
pub use error::GatewayError;
pub use metrics::metrics_endpoint;
pub use service_token::ServiceToken;
pub use trace::TraceParent;
pub use twilio::signature;

/// The REST API's hot functions, for the benchmarks only.
#[doc(hidden)]
pub mod bench_support {
    pub use crate::api::bench::{parse_send, render_page};
}

/// Serves HTTP on `listener` until `shutdown` is cancelled; in-flight requests get
/// a few seconds to finish.
pub async fn serve(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve_with(config, listener, shutdown, None).await
}

/// [`serve`], with the dev console's routes under `/dev` (`messaging dev` only).
pub async fn serve_with_dev_console(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
    console: DevConsole,
) -> anyhow::Result<()> {
    serve_with(config, listener, shutdown, Some(console)).await
}

async fn serve_with(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
    console: Option<DevConsole>,
) -> anyhow::Result<()> {
    let core = core::Core::from_config(&config)?;
    let limits = server::Limits {
        header_timeout: config.read_timeout,
        max_connections: config.max_connections,
    };
    let per_source = conn_limit::SourceSlots::new(
        config.max_connections_per_source,
        config.trusted_proxies.clone(),
    );
    let app = match console {
        Some(console) => router::router_with(config, core, shutdown.clone(), dev::routes(console)),
        None => router::router(config, core, shutdown.clone()),
    };
    server::run(listener, app, limits, per_source, shutdown).await
}
