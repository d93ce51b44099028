//! `messaging health`: the container health check of both images (the runtime image
//! has no shell, curl or grpc_health_probe). Exit status 0 when healthy, 1 otherwise.

use std::time::Duration;

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// What to check.
pub enum Probe {
    /// grpc.health.v1 Check (overall status, service "") of a core at this URL.
    Grpc(String),
    /// An HTTP GET that must answer 2xx (the gateway's `/healthz` or `/readyz`).
    Http(String),
}

/// Runs one probe within `timeout`.
pub async fn check(probe: Probe, timeout: Duration) -> anyhow::Result<()> {
    tokio::time::timeout(timeout, run(probe))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {timeout:?}"))?
}

async fn run(probe: Probe) -> anyhow::Result<()> {
    match probe {
        Probe::Grpc(url) => {
            let channel = tonic::transport::Endpoint::from_shared(url.clone())?
                .connect()
                .await
                .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
            let status = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|e| anyhow::anyhow!("{url}: {}", e.message()))?
                .into_inner()
                .status();
            anyhow::ensure!(status == ServingStatus::Serving, "{url}: {status:?}");
            Ok(())
        }
        Probe::Http(url) => {
            let answer = reqwest::get(&url)
                .await
                .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
            anyhow::ensure!(answer.status().is_success(), "{url}: {}", answer.status());
            Ok(())
        }
    }
}
