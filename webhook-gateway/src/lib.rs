//! Webhook gateway: the only thing Twilio talks to. It checks each request's
//! `X-Twilio-Signature` against the configured public URL, parses Twilio's form, and
//! turns it into a `MessagingIngest` call to the core with a service token. Also
//! `/healthz` and `/readyz` (ready only when the core answers its health check).
//! It also serves the REST API under `/api/` (see [`api`]) for CommPro's web and
//! mobile clients, with the caller's own token.

mod api;
mod client_ip;
mod config;
mod core;
mod http;
pub mod media_token;
pub mod service_token;
pub mod signals;
pub mod signature;
mod trace;
pub mod webhook;

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{ConfigError, CorsOrigins, GatewayConfig};
pub use service_token::ServiceToken;
pub use trace::TraceParent;

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
    let core = core::Core::new(
        &config.core_url,
        config.service_token.clone(),
        config.core_timeout,
    )?;
    let gw = Arc::new(http::Gateway::new(config, core, shutdown.clone()));
    http::serve(listener, gw, shutdown, Duration::from_secs(10)).await
}
