//! The gateway's client of the core: MessagingIngest with the service token,
//! MessagingService with the caller's own bearer token (REST API), each with a deadline
//! and the W3C trace context; and the core's health for /readyz.

use std::{sync::Arc, time::Duration};

use commpro_messaging_api::v1::{
    self as pb, messaging_ingest_client::MessagingIngestClient,
    messaging_service_client::MessagingServiceClient,
};
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    config::GatewayConfig, core_tls::CoreTls, error::GatewayError, service_token::ServiceToken,
    trace::TraceParent,
};

/// Lazily connected clients of the core.
#[derive(Clone)]
pub struct Core {
    ingest: MessagingIngestClient<Channel>,
    messaging: MessagingServiceClient<Channel>,
    health: HealthClient<Channel>,
    token: Arc<ServiceToken>,
    timeout: Duration,
}

impl Core {
    /// Clients of the core `config` names, over TLS when its URL is https://.
    pub fn from_config(config: &GatewayConfig) -> anyhow::Result<Self> {
        Self::new(
            &config.core_url,
            config.core_tls.as_deref(),
            config.service_token.clone(),
            config.core_timeout,
        )
    }

    pub fn new(
        core_url: &str,
        tls: Option<&CoreTls>,
        token: Arc<ServiceToken>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut endpoint = Endpoint::from_shared(core_url.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(timeout);
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls.client_config())?;
        }
        let channel = endpoint.connect_lazy();
        Ok(Self {
            ingest: MessagingIngestClient::new(channel.clone()),
            messaging: MessagingServiceClient::new(channel.clone()),
            health: HealthClient::new(channel),
            token,
            timeout,
        })
    }

    /// A request with the call's deadline, a credential and the trace context.
    fn with_context<T>(
        &self,
        msg: T,
        authorization: Option<MetadataValue<Ascii>>,
        trace: &TraceParent,
    ) -> Request<T> {
        let mut req = Request::new(msg);
        req.set_timeout(self.timeout);
        if let Some(auth) = authorization {
            req.metadata_mut().insert("authorization", auth);
        }
        if let Ok(tp) = MetadataValue::try_from(trace.to_string()) {
            req.metadata_mut().insert("traceparent", tp);
        }
        req
    }

    /// A call with the gateway's own service token. A token that cannot be made is
    /// an internal failure of the call, answered like one.
    fn request<T>(&self, msg: T, trace: &TraceParent) -> Result<Request<T>, GatewayError> {
        let token = self
            .token
            .bearer()
            .map_err(|e| Status::internal(format!("minting the service token: {e}")))?;
        let auth = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("service token is not a valid header value"))?;
        Ok(self.with_context(msg, Some(auth), trace))
    }

    /// The REST API's client of MessagingService and a request carrying the caller's
    /// `Authorization` header as it came: the core checks it, as for any gRPC client.
    pub fn messaging<T>(
        &self,
        msg: T,
        authorization: &str,
        trace: &TraceParent,
    ) -> (MessagingServiceClient<Channel>, Request<T>) {
        // A value that cannot be a header is sent as nothing: the core then answers
        // UNAUTHENTICATED, as for a missing token.
        let auth = MetadataValue::try_from(authorization).ok();
        (self.messaging.clone(), self.with_context(msg, auth, trace))
    }

    /// Like [`Core::messaging`], without a deadline: a `WatchEvents` stream lasts as
    /// long as the client stays.
    pub fn watch<T>(
        &self,
        msg: T,
        authorization: &str,
        trace: &TraceParent,
    ) -> (MessagingServiceClient<Channel>, Request<T>) {
        let (client, mut req) = self.messaging(msg, authorization, trace);
        req.metadata_mut().remove("grpc-timeout");
        (client, req)
    }

    /// The core's verdict on a caller's `Authorization` header, before anything is
    /// sent: an `UploadMedia` stream ended at once. The core's interceptor refuses a bad
    /// token (UNAUTHENTICATED, with its reason); a good one reaches the handler, which
    /// refuses the empty stream (INVALID_ARGUMENT) and stores nothing
    /// (`api/preflight.rs` says why this is asked at all).
    pub async fn authenticate(
        &self,
        authorization: &str,
        trace: &TraceParent,
    ) -> Result<(), GatewayError> {
        let (mut client, call) = self.messaging(
            tokio_stream::empty::<pb::UploadMediaRequest>(),
            authorization,
            trace,
        );
        match client.upload_media(call).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::InvalidArgument => Ok(()),
            Err(s) => Err(s.into()),
        }
    }

    pub async fn record_inbound(
        &self,
        msg: pb::RecordInboundRequest,
        trace: &TraceParent,
    ) -> Result<pb::RecordInboundResponse, GatewayError> {
        let req = self.request(msg, trace)?;
        Ok(self.ingest.clone().record_inbound(req).await?.into_inner())
    }

    pub async fn record_status(
        &self,
        msg: pb::RecordStatusRequest,
        trace: &TraceParent,
    ) -> Result<pb::RecordStatusResponse, GatewayError> {
        let req = self.request(msg, trace)?;
        Ok(self.ingest.clone().record_status(req).await?.into_inner())
    }

    /// An outbound media item's bytes and content type. The token goes along: the
    /// core verifies it itself and serves only media sent with an outbound message.
    pub async fn serve_media(
        &self,
        token: &str,
        media_id: &str,
        trace: &TraceParent,
    ) -> Result<Option<(String, Vec<u8>)>, GatewayError> {
        let req = self.request(
            pb::ServeMediaRequest {
                media_id: media_id.to_owned(),
                token: token.to_owned(),
            },
            trace,
        )?;
        let mut stream = match self.ingest.clone().serve_media(req).await {
            Ok(resp) => resp.into_inner(),
            Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => {
                return Ok(None);
            }
            Err(s) => return Err(s.into()),
        };
        Ok(Some(collect_media(&mut stream).await?))
    }

    /// False once a given service token is in its last hour: the core would soon refuse
    /// every webhook, so this replica should leave the load balancer now.
    pub fn token_usable(&self) -> bool {
        self.token.usable()
    }

    /// True when the core reports SERVING for the whole server.
    pub async fn is_ready(&self) -> bool {
        let mut health = self.health.clone();
        match health
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

/// A media stream gathered whole: the content type (sent with the first chunk) and the
/// bytes.
pub async fn collect_media(
    stream: &mut tonic::Streaming<pb::MediaChunk>,
) -> Result<(String, Vec<u8>), tonic::Status> {
    let (mut content_type, mut bytes) = (String::new(), Vec::new());
    while let Some(chunk) = stream.message().await? {
        if content_type.is_empty() {
            content_type = chunk.content_type;
            bytes.reserve(usize::try_from(chunk.size_bytes).unwrap_or(0));
        }
        bytes.extend_from_slice(&chunk.data);
    }
    Ok((content_type, bytes))
}
