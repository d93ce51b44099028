//! Test harness: servers, clients, tokens, databases.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use commpro_messaging_api::v1::{
    self as pb, messaging_admin_client::MessagingAdminClient,
    messaging_service_client::MessagingServiceClient,
};
use messaging_grpc::{
    App, Config, Mode,
    auth::{JwtIssuer, Role},
    ingest::{Inbound, InboundSms, Ingest},
    store::Store,
};
use sea_orm::{ConnectionTrait, Database};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, transport::Channel};

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
pub const ISSUER: &str = "commpro-auth";
pub const AUDIENCE: &str = "commpro-messaging";
/// Signs media URLs; the test gateway gets the same.
pub const MEDIA_SECRET: &str = "test-media-url-secret-at-least-32-characters";

/// Runs each test body against SQLite and PostgreSQL.
#[macro_export]
macro_rules! backend_tests {
    ($(async fn $name:ident($backend:ident : Backend) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let $backend = $crate::helpers::Backend::Sqlite;
                $body
            })*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some($backend) = $crate::helpers::Backend::postgres() else { return };
                $body
            })*
        }
    };
}

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL server URL, or `None` (test skipped) when not configured.
    pub fn postgres() -> Option<Self> {
        match std::env::var("TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(Self::Postgres(url)),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!(
                    "TEST_POSTGRES_URL must be set under CI: PostgreSQL tests may not be skipped"
                )
            }
            _ => {
                eprintln!("TEST_POSTGRES_URL unset: skipping PostgreSQL variant");
                None
            }
        }
    }
}

/// A fresh PostgreSQL database, dropped when this value is dropped.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(server_url: &str) -> Self {
        let name = format!("msg_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(server_url)
            .await
            .expect("connect to TEST_POSTGRES_URL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create database");
        admin.close().await.ok();
        let base = server_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(server_url);
        Self {
            admin_url: server_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(db) = Database::connect(&url).await {
                    let _ = db
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    db.close().await.ok();
                }
            });
        })
        .join();
    }
}

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

/// Polls `check` every 20 ms until it returns true; panics after `secs` seconds.
pub async fn wait_until<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
        let (Inbound::Stored(view) | Inbound::Duplicate(view)) = stored else {
            panic!("inbound was unroutable")
        };
        pb::Message {
            id: view.row.id,
            contact_id: view.row.contact_id,
            ..Default::default()
        }
    }

    /// A direct connection to the server's database.
    pub async fn store(&self) -> Store {
        Store::connect(&self.database_url).await.unwrap()
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

/// Adds `authorization: Bearer` to a request.
pub fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

type Fut<'a, R> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>> + Send + 'a>,
>;

pub struct UserClient {
    pub client: MessagingServiceClient<Channel>,
    pub token: String,
}

impl UserClient {
    pub async fn send(
        &mut self,
        from: &str,
        to: &str,
        body: &str,
    ) -> Result<pb::Message, tonic::Status> {
        self.send_req(pb::SendSmsRequest {
            from: from.into(),
            to: to.into(),
            body: body.into(),
            idempotency_key: String::new(),
            send_at: None,
        })
        .await
    }

    pub async fn send_req(
        &mut self,
        req: pb::SendSmsRequest,
    ) -> Result<pb::Message, tonic::Status> {
        Ok(self
            .client
            .send_sms(authed(req, &self.token))
            .await?
            .into_inner())
    }

    pub async fn list(
        &mut self,
        page_size: u32,
        page_token: &str,
    ) -> Result<pb::ListConversationsResponse, tonic::Status> {
        self.list_in(false, page_size, page_token).await
    }

    pub async fn list_archived(
        &mut self,
        page_size: u32,
        page_token: &str,
    ) -> Result<pb::ListConversationsResponse, tonic::Status> {
        self.list_in(true, page_size, page_token).await
    }

    async fn list_in(
        &mut self,
        archived: bool,
        page_size: u32,
        page_token: &str,
    ) -> Result<pb::ListConversationsResponse, tonic::Status> {
        let req = pb::ListConversationsRequest {
            page_size,
            page_token: page_token.into(),
            archived,
        };
        Ok(self
            .client
            .list_conversations(authed(req, &self.token))
            .await?
            .into_inner())
    }

    pub async fn get(
        &mut self,
        contact_id: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<pb::GetConversationResponse, tonic::Status> {
        let req = pb::GetConversationRequest {
            contact_id: contact_id.into(),
            page_size,
            page_token: page_token.into(),
        };
        Ok(self
            .client
            .get_conversation(authed(req, &self.token))
            .await?
            .into_inner())
    }

    pub async fn mark_read(&mut self, message_id: &str) -> Result<pb::Message, tonic::Status> {
        let req = pb::MarkReadRequest {
            message_id: message_id.into(),
        };
        Ok(self
            .client
            .mark_read(authed(req, &self.token))
            .await?
            .into_inner())
    }

    pub async fn mark_conversation_read(
        &mut self,
        contact_id: &str,
        up_to: &str,
    ) -> Result<u64, tonic::Status> {
        let req = pb::MarkConversationReadRequest {
            contact_id: contact_id.into(),
            up_to_message_id: up_to.into(),
        };
        Ok(self
            .client
            .mark_conversation_read(authed(req, &self.token))
            .await?
            .into_inner()
            .unread_count)
    }

    /// The message with `id` as GetConversation shows it.
    pub async fn message(&mut self, contact_id: &str, id: &str) -> pb::Message {
        let mut token = String::new();
        loop {
            let page = self.get(contact_id, 200, &token).await.unwrap();
            if let Some(m) = page.messages.into_iter().find(|m| m.id == id) {
                return m;
            }
            assert!(
                !page.next_page_token.is_empty(),
                "message {id} not in its conversation"
            );
            token = page.next_page_token;
        }
    }

    /// Waits until the message reaches `status`.
    pub async fn wait_status(
        &mut self,
        m: &pb::Message,
        status: pb::MessageStatus,
        secs: u64,
    ) -> pb::Message {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let now = self.message(&m.contact_id, &m.id).await;
            if now.status == status as i32 {
                return now;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message stayed {:?} ({} {}), expected {status:?}",
                pb::MessageStatus::try_from(now.status),
                now.error_code,
                now.error_message
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Unread count of the conversation with `contact_id`, as ListConversations shows it.
    pub async fn unread(&mut self, contact_id: &str) -> u64 {
        let page = self.list(100, "").await.unwrap();
        page.conversations
            .iter()
            .find(|c| c.contact_id == contact_id)
            .map(|c| c.unread_count)
            .expect("conversation listed")
    }
}

pub struct AdminClient {
    pub client: MessagingAdminClient<Channel>,
    pub token: String,
}

impl AdminClient {
    pub async fn call<Q, R>(
        &mut self,
        f: impl for<'a> FnOnce(&'a mut MessagingAdminClient<Channel>, Request<Q>) -> Fut<'a, R>,
        msg: Q,
    ) -> Result<R, tonic::Status> {
        let req = authed(msg, &self.token);
        Ok(f(&mut self.client, req).await?.into_inner())
    }
}
