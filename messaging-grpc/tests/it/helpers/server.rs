//! `TestServer`: a running core on an ephemeral port (SQLite or PostgreSQL), the
//! configuration that points it at a fake Twilio, restarts and siblings, tokens.

use super::*;

/// A running core on an ephemeral port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub ingest: Ingest,
    pub database_url: String,
    pub dir: tempfile::TempDir,
    vars: HashMap<String, String>,
    issuer: JwtIssuer,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _pg: Option<PgDatabase>,
}

/// Configuration that points the server at a fake Twilio, with fast retries and
/// short leases so tests finish quickly.
pub fn twilio_vars(fake: &twilio_fake::FakeTwilio) -> HashMap<&'static str, String> {
    HashMap::from([
        ("SMS_PROVIDER", "twilio".to_owned()),
        ("MEDIA_URL_SECRET", MEDIA_SECRET.to_owned()),
        ("TWILIO_ACCOUNT_SID", twilio_fake::ACCOUNT_SID.to_owned()),
        ("TWILIO_AUTH_TOKEN", twilio_fake::AUTH_TOKEN.to_owned()),
        ("TWILIO_API_BASE", fake.base_url()),
        (
            "GATEWAY_PUBLIC_URL",
            "https://gateway.example.test".to_owned(),
        ),
        ("TWILIO_TIMEOUT_SECS", "2".to_owned()),
        // Resends after an unknown outcome wait this long after the create (60 s in
        // production): the tests of unknown outcomes would each take minutes.
        ("OUTBOX_UNKNOWN_SETTLE_SECS", "4".to_owned()),
        ("OUTBOX_POLL_MS", "20".to_owned()),
        ("OUTBOX_RETRY_BASE_MS", "20".to_owned()),
        ("OUTBOX_RETRY_MAX_SECS", "1".to_owned()),
        ("OUTBOX_SHUTDOWN_GRACE_MS", "200".to_owned()),
        ("PACING_SENDER_SPS", "100000".to_owned()),
        ("PACING_ACCOUNT_SPS", "100000".to_owned()),
    ])
}

pub fn master_keys_spec() -> String {
    format!("t1:{}", STANDARD.encode([7u8; 32]))
}

impl TestServer {
    pub async fn start(backend: &Backend) -> Self {
        Self::start_with(backend, HashMap::new()).await
    }

    /// Starts a server; `extra` overrides configuration variables.
    pub async fn start_with(backend: &Backend, extra: HashMap<&str, String>) -> Self {
        Self::start_custom(backend, extra, |_| {}).await
    }

    /// Starts a server; `extra` overrides configuration variables and `customize` may
    /// change the app (swap the provider) before it serves.
    pub async fn start_custom(
        backend: &Backend,
        extra: HashMap<&str, String>,
        customize: impl FnOnce(&mut App),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display()),
                None,
            ),
            Backend::Postgres(server) => {
                let db = PgDatabase::create(server).await;
                (db.url.clone(), Some(db))
            }
        };
        let mut vars: HashMap<String, String> = HashMap::from([
            (
                "MESSAGING_DATA_DIR".into(),
                dir.path().display().to_string(),
            ),
            ("DATABASE_URL".into(), database_url.clone()),
            ("MESSAGING_MASTER_KEYS".into(), master_keys_spec()),
            ("JWT_HS256_SECRET".into(), SECRET.into()),
        ]);
        vars.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        Self::launch(vars, database_url, dir, pg, Mode::Serve, customize).await
    }

    pub async fn start_from_vars(
        vars: HashMap<String, String>,
        database_url: String,
        dir: tempfile::TempDir,
        pg: Option<PgDatabase>,
        mode: Mode,
    ) -> Self {
        Self::launch(vars, database_url, dir, pg, mode, |_| {}).await
    }

    async fn launch(
        vars: HashMap<String, String>,
        database_url: String,
        dir: tempfile::TempDir,
        pg: Option<PgDatabase>,
        mode: Mode,
        customize: impl FnOnce(&mut App),
    ) -> Self {
        messaging_grpc::telemetry::init().expect("telemetry");
        let config = Config::from_vars(&vars, mode).expect("valid test config");
        let mut app = App::build(&config).await.expect("app builds");
        customize(&mut app);
        let ingest = app.ingest.clone();
        // Tests that need the core on a known port (started after the gateway) say so.
        let bind = vars
            .get("TEST_BIND_ADDR")
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:0".into());
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(messaging_grpc::serve(app, listener, shutdown.clone()));
        Self {
            addr,
            ingest,
            database_url,
            dir,
            vars,
            issuer: JwtIssuer::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE),
            shutdown,
            task: Some(task),
            _pg: pg,
        }
    }

    /// Stops serving but keeps the database and folder, so a test can change what is
    /// stored before [`Self::restart`] starts a new server on them.
    pub async fn halt(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// Stops this server the way a crash would leave its work (in-flight sends are
    /// abandoned after the short grace period) and starts a new one on the same
    /// database and folder, with `overrides` applied.
    pub async fn restart(
        mut self,
        overrides: HashMap<&str, String>,
        customize: impl FnOnce(&mut App),
    ) -> Self {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let mut vars = std::mem::take(&mut self.vars);
        vars.extend(overrides.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let pg = self._pg.take();
        Self::launch(
            vars,
            self.database_url.clone(),
            dir,
            pg,
            Mode::Serve,
            customize,
        )
        .await
    }

    /// Another server process on the same database (its own data folder).
    pub async fn sibling(&self, customize: impl FnOnce(&mut App)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut vars = self.vars.clone();
        vars.insert(
            "MESSAGING_DATA_DIR".into(),
            dir.path().display().to_string(),
        );
        Self::launch(
            vars,
            self.database_url.clone(),
            dir,
            None,
            Mode::Serve,
            customize,
        )
        .await
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    pub fn token(&self, user: &str) -> String {
        self.token_for(user, Duration::from_secs(600))
    }

    /// A token for `user` valid for `ttl`.
    pub fn token_for(&self, user: &str, ttl: Duration) -> String {
        self.issuer.issue(user, &[], ttl).unwrap()
    }

    pub fn admin_token(&self) -> String {
        self.issuer
            .issue("operator", &[Role::Admin], Duration::from_secs(600))
            .unwrap()
    }

    /// A token as the webhook gateway holds it (MessagingIngest).
    pub fn gateway_token(&self) -> String {
        self.issuer
            .issue(
                "webhook-gateway",
                &[Role::Gateway],
                Duration::from_secs(600),
            )
            .unwrap()
    }

    /// A client acting as `user`.
    pub async fn user(&self, user: &str) -> UserClient {
        UserClient {
            client: MessagingServiceClient::new(self.channel().await),
            token: self.token(user),
        }
    }

    pub async fn admin(&self) -> AdminClient {
        AdminClient {
            client: MessagingAdminClient::new(self.channel().await),
            token: self.admin_token(),
        }
    }

    /// Assigns `number` to `user` through the admin API.
    pub async fn assign(&self, number: &str, user: &str) {
        self.admin()
            .await
            .call(
                |c, r| Box::pin(c.assign_number(r)),
                pb::AssignNumberRequest {
                    number: number.into(),
                    user_id: user.into(),
                },
            )
            .await
            .expect("assign number");
    }

    /// Stores an inbound SMS as the ingest path will.
    pub async fn inbound(&self, sid: &str, from: &str, to: &str, body: &str) -> pb::Message {
        let stored = self
            .ingest
            .record_inbound(InboundSms {
                message_sid: sid.into(),
                account_sid: twilio_fake::ACCOUNT_SID.into(),
                from: from.into(),
                to: to.into(),
                body: body.into(),
                media: Vec::new(),
            })
            .await
            .expect("inbound stored");
        let (id, contact_id) = match stored {
            Inbound::Stored(view) => (view.row.id, view.row.contact_id),
            Inbound::Duplicate(row) => (row.id, row.contact_id),
            Inbound::Unroutable => panic!("inbound was unroutable"),
        };
        pb::Message {
            id,
            contact_id,
            ..Default::default()
        }
    }

    /// A direct connection to the server's database.
    pub async fn store(&self) -> Store {
        Store::connect(&self.database_url).await.unwrap()
    }

    /// Waits up to `secs` for the server to end on its own; what `serve` returned.
    pub async fn exit(mut self, secs: u64) -> anyhow::Result<()> {
        let task = self.task.take().expect("the server runs");
        tokio::time::timeout(Duration::from_secs(secs), task)
            .await
            .expect("the server ended in time")
            .expect("the server task did not panic")
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
