//! Assembles the gRPC server: services behind the auth interceptor, health, reflection.

use std::{sync::Arc, time::Duration};

use commpro_messaging_api::{
    FILE_DESCRIPTOR_SET,
    v1::{
        messaging_admin_server::MessagingAdminServer,
        messaging_ingest_server::MessagingIngestServer,
        messaging_service_server::MessagingServiceServer,
    },
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::server::HealthReporter;

use crate::{
    api::{AdminApi, IngestApi, MessagingApi},
    auth::{AuthInterceptor, JwtVerifier, Role},
    config::{Config, EventSettings, ProviderConfig},
    crypto::UserKeys,
    dispatch::{DispatchSettings, Dispatcher},
    domain::MediaCtx,
    domain::Messaging,
    media::{Fetcher, MediaObjects},
    provider::{ConsoleProvider, SmsProvider, StatusSink, TwilioProvider},
    realtime::{EventHub, listen_postgres},
    store::Store,
    twilio::{TwilioAuth, TwilioClient},
};

/// Everything the server needs, built once at start-up. Fields are public so tests
/// can swap the provider or tune the dispatcher before serving.
pub struct App {
    pub domain: Messaging,
    pub verifier: Arc<JwtVerifier>,
    pub provider: Arc<dyn SmsProvider>,
    pub dispatch: DispatchSettings,
    pub events: EventSettings,
    /// For the PostgreSQL LISTEN connection.
    pub database_url: String,
}

impl App {
    /// Connects to the database, applies migrations and sets up encryption.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let store = Store::connect(&config.database_url)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to the database: {e}"))?;
        store
            .migrate()
            .await
            .map_err(|e| anyhow::anyhow!("applying migrations: {e}"))?;
        Self::with_store(config, store)
    }

    /// Builds on an already connected and migrated store.
    pub fn with_store(config: &Config, store: Store) -> anyhow::Result<Self> {
        let keys = UserKeys::new(
            store.clone(),
            config.master_keys.clone(),
            config.cipher,
            config.key_cache_size,
        );
        let hub = EventHub::new(config.events.broadcast_capacity);
        let domain = Messaging::new(store, Arc::new(keys), hub).with_media(media_ctx(config)?);
        Ok(Self {
            provider: build_provider(config, &domain)?,
            domain,
            verifier: Arc::new(config.jwt_verifier()?),
            dispatch: config.dispatch.clone(),
            events: config.events.clone(),
            database_url: config.database_url.clone(),
        })
    }
}

fn media_ctx(config: &Config) -> anyhow::Result<MediaCtx> {
    let settings = config.media.clone();
    let objects = MediaObjects::open(&settings.store).map_err(anyhow::Error::msg)?;
    // Twilio media URLs need the account's Basic auth.
    let auth = match &config.sms_provider {
        ProviderConfig::Twilio(t) => Some(match &t.api_key {
            Some((sid, secret)) => (sid.clone(), secret.clone()),
            None => (t.account_sid.clone(), t.auth_token.clone()),
        }),
        ProviderConfig::Console => None,
    };
    let fetcher = Fetcher::new(
        settings.allowed_hosts.clone(),
        auth,
        crate::media::MAX_MEDIA_BYTES,
        settings.fetch_timeout,
    )
    .map_err(anyhow::Error::msg)?;
    Ok(MediaCtx {
        objects,
        fetcher,
        public_url: config.gateway_public_url.clone(),
        signal: Arc::new(tokio::sync::Notify::new()),
        settings,
    })
}

/// Copies inbound media from Twilio: woken by each inbound MMS, and every few
/// seconds for retries.
async fn copy_media(domain: Messaging, shutdown: CancellationToken) {
    let Some(signal) = domain.media_signal() else {
        return;
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = signal.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        loop {
            match domain.copy_pending_media(8).await {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "media copy pass failed");
                    break;
                }
            }
        }
    }
}

fn build_provider(config: &Config, domain: &Messaging) -> anyhow::Result<Arc<dyn SmsProvider>> {
    Ok(match &config.sms_provider {
        ProviderConfig::Console => {
            let sink: Arc<dyn StatusSink> = Arc::new(domain.clone());
            Arc::new(ConsoleProvider::new(Some(sink), Duration::from_secs(1)))
        }
        ProviderConfig::Twilio(creds) => {
            let (username, password) = match &creds.api_key {
                Some((sid, secret)) => (sid.clone(), secret.clone()),
                None => (creds.account_sid.clone(), creds.auth_token.clone()),
            };
            let auth = TwilioAuth {
                account_sid: creds.account_sid.clone(),
                username,
                password,
            };
            let client = TwilioClient::new(&config.twilio_api_base, auth, creds.timeout)?;
            Arc::new(TwilioProvider::new(client, &config.gateway_public_url))
        }
    })
}

/// Serves gRPC on `listener`, and runs the outbox dispatcher, until `shutdown` is
/// cancelled; then drains in-flight calls and sends.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let dispatcher = app.dispatch.enabled.then(|| {
        let d = Dispatcher::new(
            app.domain.clone(),
            app.provider.clone(),
            app.dispatch.clone(),
        );
        tokio::spawn(d.run(shutdown.clone()))
    });

    if app.domain.store().backend() == sea_orm::DatabaseBackend::Postgres {
        tokio::spawn(listen_postgres(
            app.database_url.clone(),
            app.domain.event_hub().clone(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(copy_media(app.domain.clone(), shutdown.clone()));
    tokio::spawn(prune_events(
        app.domain.clone(),
        app.events.clone(),
        shutdown.clone(),
    ));

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<MessagingServiceServer<MessagingApi>>()
        .await;
    health.set_serving::<MessagingAdminServer<AdminApi>>().await;
    health
        .set_serving::<MessagingIngestServer<IngestApi>>()
        .await;
    tokio::spawn(watch_store(
        app.domain.store().clone(),
        health.clone(),
        shutdown.clone(),
    ));

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let user_auth = AuthInterceptor::new(app.verifier.clone(), None);
    let admin_auth = AuthInterceptor::new(app.verifier.clone(), Some(Role::Admin));
    let gateway_auth = AuthInterceptor::new(app.verifier.clone(), Some(Role::Gateway));

    Server::builder()
        .timeout(Duration::from_secs(30))
        // One span per call continuing the caller's W3C trace (the gateway forwards
        // `traceparent`): a webhook's or REST call's log lines and exported spans can
        // be followed into the core under one trace id.
        .trace_fn(|req| {
            let method = req.uri().path();
            let span = tracing::info_span!(
                "grpc",
                otel.name = %method.trim_start_matches('/'),
                otel.kind = "server",
                rpc.system = "grpc",
                trace_id = tracing::field::Empty,
            );
            let incoming = req
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok());
            commpro_telemetry::continue_trace(&span, incoming);
            if let Some(id) = commpro_telemetry::trace_id(&span) {
                span.record("trace_id", id);
            }
            span
        })
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(MessagingServiceServer::with_interceptor(
            MessagingApi::new(app.domain.clone(), app.events.watch, shutdown.clone()),
            user_auth,
        ))
        .add_service(MessagingAdminServer::with_interceptor(
            AdminApi::new(app.domain.clone()),
            admin_auth,
        ))
        .add_service(MessagingIngestServer::with_interceptor(
            IngestApi::new(app.domain.clone()),
            gateway_auth,
        ))
        .serve_with_incoming_shutdown(
            // Nagle's algorithm with delayed ACKs stalls multi-write responses ~40 ms.
            TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(Some(Duration::from_secs(60))),
            shutdown.cancelled(),
        )
        .await?;
    if let Some(dispatcher) = dispatcher {
        // Reached on shutdown (or a server error): let in-flight sends settle.
        shutdown.cancel();
        dispatcher.await?;
    }
    Ok(())
}

/// Deletes events past retention every `prune_interval`.
async fn prune_events(domain: Messaging, settings: EventSettings, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.prune_interval) => {}
        }
        let before = crate::store::now()
            - chrono::Duration::from_std(settings.retention).unwrap_or(chrono::Duration::days(7));
        match domain.prune_events(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "old events pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning events failed"),
        }
    }
}

/// Reports NOT_SERVING while the database does not answer, so load balancers and the
/// gateway's readiness check route around a replica that lost its store.
async fn watch_store(store: Store, health: HealthReporter, shutdown: CancellationToken) {
    let mut serving = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
                return;
            }
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let ok = store.ping().await.is_ok();
        if ok != serving {
            serving = ok;
            let status = if ok {
                tonic_health::ServingStatus::Serving
            } else {
                tracing::warn!("database unreachable; reporting NOT_SERVING");
                tonic_health::ServingStatus::NotServing
            };
            health.set_service_status("", status).await;
        }
    }
}
