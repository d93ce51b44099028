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
    admin::Admin,
    api::{AdminApi, IngestApi, MessagingApi},
    auth::{AuthInterceptor, JwtVerifier, Role},
    config::{Config, EventSettings, ProviderConfig},
    crypto::UserKeys,
    dispatch::{DispatchSettings, Dispatcher, Outbox},
    domain::{Records, SEAL_BATCH},
    ingest::Ingest,
    media::{FetchCredentials, Fetcher, Media, MediaObjects},
    messaging::Messaging,
    metrics::GrpcMetricsLayer,
    probes::CoreProbes,
    provider::{ConsoleProvider, Metered, SmsProvider, StatusSink, TwilioProvider},
    realtime::{EventHub, listen_key_revocations, listen_postgres, run_pruner},
    retention::{self, RetentionSettings},
    store::Store,
    tasks::Tasks,
    twilio::TwilioClient,
};

/// Everything the server needs, built once at start-up: one value per job, wired
/// together here and nowhere else. Fields are public so tests can swap the provider
/// or tune the dispatcher before serving.
pub struct App {
    pub messaging: Messaging,
    pub ingest: Ingest,
    pub admin: Admin,
    pub media: Media,
    pub outbox: Outbox,
    pub verifier: Arc<JwtVerifier>,
    /// Verifies the gateway's self-minted tokens (JWT_GATEWAY_PUBLIC_KEY_FILE), if set.
    pub gateway_verifier: Option<Arc<JwtVerifier>>,
    pub provider: Arc<dyn SmsProvider>,
    pub dispatch: DispatchSettings,
    pub events: EventSettings,
    /// Message retention; None keeps messages forever.
    pub retention: Option<RetentionSettings>,
    /// For the PostgreSQL LISTEN connection.
    pub database_url: String,
    /// TLS of the gRPC listener (MESSAGING_GRPC_TLS_*); None serves plaintext.
    pub grpc_tls: Option<Arc<crate::config::GrpcTls>>,
}

impl App {
    /// Connects to the database, applies migrations and sets up encryption.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let store = Store::connect_with_writers(&config.database_url, config.database_writers)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to the database: {e}"))?;
        store
            .migrate()
            .await
            .map_err(|e| anyhow::anyhow!("applying migrations: {e}"))?;
        let app = Self::with_store(config, store)?;
        // Before serving: a lookup by number must never meet a number still in clear.
        app.outbox
            .records()
            .seal_legacy_numbers(SEAL_BATCH)
            .await
            .map_err(|e| {
                anyhow::Error::new(e).context("sealing contact numbers stored in clear")
            })?;
        Ok(app)
    }

    /// Builds on an already connected and migrated store.
    pub fn with_store(config: &Config, store: Store) -> anyhow::Result<Self> {
        let keys = Arc::new(UserKeys::new(
            store.clone(),
            config.master_keys.clone(),
            config.cipher,
            config.key_cache_size,
        ));
        let hub = EventHub::new(config.events.broadcast_capacity);
        let records = Records::new(store.clone(), keys.clone(), hub);
        let media = build_media(config, store.clone(), keys)?;
        let outbox = Outbox::new(records.clone(), media.clone());
        let ingest = Ingest::new(records.clone(), media.waker());
        let messaging = Messaging::new(
            records.clone(),
            media.clone(),
            outbox.waker(),
            config.schedule,
        );
        Ok(Self {
            provider: build_provider(config, &ingest)?,
            messaging,
            ingest,
            admin: Admin::new(records, media.clone()),
            media,
            outbox,
            verifier: Arc::new(config.jwt_verifier()?),
            gateway_verifier: config.jwt_gateway_verifier()?.map(Arc::new),
            dispatch: config.dispatch.clone(),
            events: config.events.clone(),
            retention: config.retention.clone(),
            database_url: config.database_url.clone(),
            grpc_tls: config.grpc_tls.clone(),
        })
    }

    fn store(&self) -> &Store {
        self.outbox.records().store()
    }

    /// What the metrics endpoint reads at each scrape, and its readiness answer.
    pub fn probes(&self) -> Arc<CoreProbes> {
        Arc::new(CoreProbes::new(self.store().clone()))
    }
}

fn build_media(config: &Config, store: Store, keys: Arc<UserKeys>) -> anyhow::Result<Media> {
    let settings = config.media.clone();
    let objects = MediaObjects::open_with(&settings.store, settings.s3_options.clone())
        .map_err(anyhow::Error::msg)?;
    // Twilio media URLs need the same Basic auth as its REST API.
    let auth = match &config.sms_provider {
        ProviderConfig::Twilio(t) => {
            let (user, password) = t.basic_auth();
            Some(FetchCredentials::twilio(
                user,
                password,
                &config.twilio_api_base,
            ))
        }
        ProviderConfig::Console => None,
    };
    let fetcher = Fetcher::new(
        settings.allowed_hosts.clone(),
        auth,
        crate::media::MAX_MEDIA_BYTES,
        settings.fetch_timeout,
    )
    .map_err(anyhow::Error::msg)?;
    let public_url = config.gateway_public_url.clone();
    Ok(Media::new(
        store, keys, objects, settings, fetcher, public_url,
    ))
}

fn build_provider(config: &Config, ingest: &Ingest) -> anyhow::Result<Arc<dyn SmsProvider>> {
    Ok(match &config.sms_provider {
        ProviderConfig::Console => {
            let sink: Arc<dyn StatusSink> = Arc::new(ingest.clone());
            Arc::new(ConsoleProvider::new(Some(sink), Duration::from_secs(1)))
        }
        ProviderConfig::Twilio(creds) => {
            let client =
                TwilioClient::new(&config.twilio_api_base, creds.twilio_auth(), creds.timeout)?;
            let overrides = config.connection_overrides.as_deref();
            Arc::new(TwilioProvider::new(
                client,
                &config.gateway_public_url,
                overrides,
            ))
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
    let mut tasks = Tasks::new(shutdown.clone());
    if app.dispatch.enabled {
        let provider: Arc<dyn SmsProvider> = Arc::new(Metered::new(app.provider.clone()));
        let d = Dispatcher::new(app.outbox.clone(), provider, app.dispatch.clone());
        tasks.spawn("outbox dispatcher", d.run(shutdown.clone()));
    }
    if app.store().backend() == sea_orm::DatabaseBackend::Postgres {
        let listener = listen_postgres(
            app.database_url.clone(),
            app.outbox.records().event_hub().clone(),
            shutdown.clone(),
        );
        tasks.spawn("postgres event listener", listener);
        let revocations = listen_key_revocations(
            app.database_url.clone(),
            app.outbox.records().keys().clone(),
            shutdown.clone(),
        );
        tasks.spawn("postgres key revocation listener", revocations);
    }
    tasks.spawn(
        "media copier",
        app.media.clone().run_copier(shutdown.clone()),
    );
    let backfill = app
        .outbox
        .records()
        .clone()
        .run_index_backfill(Duration::from_secs(60), shutdown.clone());
    tasks.spawn("search index backfill", backfill);
    let indexer = app.outbox.records().clone().run_indexer(shutdown.clone());
    tasks.spawn("search indexer", indexer);
    let pruner = run_pruner(
        app.store().clone(),
        app.events.retention,
        app.events.prune_interval,
        shutdown.clone(),
    );
    tasks.spawn("event pruner", pruner);
    let parked = app
        .ingest
        .clone()
        .run_parked_pruner(app.events.prune_interval, shutdown.clone());
    tasks.spawn("parked status pruner", parked);
    if let Some(settings) = app.retention.clone() {
        let retention = retention::run(
            app.store().clone(),
            app.media.clone(),
            settings,
            shutdown.clone(),
        );
        tasks.spawn("message retention", retention);
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<MessagingServiceServer<MessagingApi>>()
        .await;
    health.set_serving::<MessagingAdminServer<AdminApi>>().await;
    health
        .set_serving::<MessagingIngestServer<IngestApi>>()
        .await;
    let store_watch = watch_store(app.store().clone(), health.clone(), shutdown.clone());
    tasks.spawn("database health watch", store_watch);
    // A dead writer refuses every durable write while reads still work: rather than
    // stay up half-broken, stop serving and exit non-zero (an orchestrator restarts us).
    let writer_died = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (store, died, stop) = (app.store().clone(), writer_died.clone(), shutdown.clone());
    tasks.spawn("write pipeline watch", async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = store.writer_died() => {
                died.store(true, std::sync::atomic::Ordering::SeqCst);
                stop.cancel();
            }
        }
    });

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
    let gateway_auth = AuthInterceptor::new(app.verifier.clone(), Some(Role::Gateway))
        .with_service_key(app.gateway_verifier.clone());

    let mut builder = Server::builder();
    if let Some(tls) = &app.grpc_tls {
        builder = builder
            .tls_config(tls.server_config())
            .map_err(|e| anyhow::anyhow!("MESSAGING_GRPC_TLS_*: {e}"))?;
        tracing::info!(mutual = tls.is_mutual(), "gRPC listener speaks TLS only");
    }
    let served = builder
        .timeout(Duration::from_secs(30))
        // Room for an oversized token to reach the interceptor, which refuses it by name
        // (UNAUTHENTICATED, over 8 KB), instead of a transport error at h2's 16 KB default.
        .http2_max_header_list_size(Some(64 * 1024))
        // Calls by method and code, with latency (no-ops without a metrics endpoint).
        .layer(GrpcMetricsLayer)
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
            MessagingApi::new(app.messaging.clone(), app.events.watch, shutdown.clone()),
            user_auth,
        ))
        .add_service(MessagingAdminServer::with_interceptor(
            AdminApi::new(app.admin.clone()),
            admin_auth,
        ))
        .add_service(MessagingIngestServer::with_interceptor(
            IngestApi::new(app.ingest.clone(), app.media.clone()),
            gateway_auth,
        ))
        .serve_with_incoming_shutdown(
            // Nagle's algorithm with delayed ACKs stalls multi-write responses ~40 ms.
            TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(Some(Duration::from_secs(60))),
            shutdown.cancelled(),
        )
        .await;
    // Reached on shutdown (or a server error): stop the background tasks and let
    // in-flight sends settle; each task's end is logged.
    shutdown.cancel();
    // The dispatcher has its own grace for in-flight sends; the others end at once.
    tasks
        .join_all(app.dispatch.shutdown_grace + Duration::from_secs(5))
        .await;
    // Requests and tasks are done: the writes they queued are answered; stop the
    // write pipeline (anything still queued is refused, not silently dropped).
    app.store().stop_writes();
    if writer_died.load(std::sync::atomic::Ordering::SeqCst) {
        anyhow::bail!("the write pipeline's writer ended; exiting so the process is restarted");
    }
    Ok(served?)
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
