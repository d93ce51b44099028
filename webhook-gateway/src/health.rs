//! Readiness: asks the core's standard gRPC health service.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A lazily connected health client for the core.
#[derive(Clone)]
pub struct CoreHealth {
    client: HealthClient<Channel>,
}

impl CoreHealth {
    pub fn new(core_url: &str) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(core_url.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(2))
            .connect_lazy();
        Ok(Self {
            client: HealthClient::new(channel),
        })
    }

    /// True when the core reports SERVING for the whole server.
    pub async fn is_ready(&self) -> bool {
        let mut client = self.client.clone();
        match client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
        {
            Ok(resp) => resp.into_inner().status == ServingStatus::Serving as i32,
            Err(status) => {
                tracing::debug!(code = ?status.code(), "core health check failed");
                false
            }
        }
    }
}
