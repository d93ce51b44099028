//! Fault tests under load, on loopback and bounded in time: the core killed with
//! SIGKILL mid-load, a Twilio outage, the database lost mid-load. After each, every
//! acknowledged message reaches the (fake) Twilio exactly once.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use commpro_messaging_api::v1 as pb;
use messaging_grpc::auth::{JwtIssuer, Role};
use tokio::{net::TcpListener, task::AbortHandle};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use twilio_fake::FakeTwilio;

use crate::{backend_tests, helpers::*};

const FROM: &str = "+15005550006";
const CALLERS: usize = 64;

/// 64 callers sending as fast as answers come, until `stop`; the bodies of the
/// messages the service acknowledged (an error or no answer is not an acknowledgement).
async fn load(addr: SocketAddr, token: String, stop: Instant) -> (Vec<String>, usize) {
    let progress = LoadProgress::until(stop);
    load_with(addr, token, progress).await
}

/// A running load's end (movable while it runs) and its acknowledgements so far, so a
/// fault can be injected once the service has answered, whatever the machine's speed.
#[derive(Clone)]
struct LoadProgress {
    stop: Arc<Mutex<Instant>>,
    acked: Arc<AtomicUsize>,
}

impl LoadProgress {
    fn until(stop: Instant) -> Self {
        Self {
            stop: Arc::new(Mutex::new(stop)),
            acked: Arc::default(),
        }
    }

    fn stop_at(&self, at: Instant) {
        *self.stop.lock().unwrap() = at;
    }

    fn acked(&self) -> usize {
        self.acked.load(Ordering::SeqCst)
    }
}

async fn load_with(
    addr: SocketAddr,
    token: String,
    progress: LoadProgress,
) -> (Vec<String>, usize) {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut callers = Vec::new();
    for c in 0..CALLERS {
        let (channel, token, progress) = (channel.clone(), token.clone(), progress.clone());
        callers.push(tokio::spawn(async move {
            let mut client = pb::messaging_service_client::MessagingServiceClient::new(channel);
            let (mut acked, mut failed) = (Vec::new(), 0);
            for i in 0.. {
                if Instant::now() >= *progress.stop.lock().unwrap() {
                    break;
                }
                let body = format!("caller {c} message {i}");
                let req = pb::SendSmsRequest {
                    from: FROM.into(),
                    to: format!("+1415555{c:04}"),
                    body: body.clone(),
                    idempotency_key: String::new(),
                    send_at: None,
                };
                let call = client.send_sms(authed(req, &token));
                match tokio::time::timeout(Duration::from_secs(5), call).await {
                    Ok(Ok(_)) => {
                        acked.push(body);
                        progress.acked.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            (acked, failed)
        }));
    }
    let (mut acked, mut failed) = (Vec::new(), 0);
    for c in callers {
        let (a, f) = c.await.unwrap();
        acked.extend(a);
        failed += f;
    }
    (acked, failed)
}

/// Waits until every acknowledged body is at the fake, then checks none is there twice.
async fn every_acknowledged_message_sent_once(fake: &FakeTwilio, acked: &[String], secs: u64) {
    assert!(!acked.is_empty(), "the load acknowledged nothing");
    eprintln!("{} acknowledged messages to find at Twilio", acked.len());
    let want: HashSet<&str> = acked.iter().map(String::as_str).collect();
    wait_until("every acknowledged message at Twilio", secs, || async {
        let have: HashSet<String> = fake.messages().into_iter().map(|m| m.body).collect();
        want.iter().all(|b| have.contains(*b))
    })
    .await;
    let mut seen = HashMap::new();
    for m in fake.messages() {
        *seen.entry(m.body).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
}

fn issuer() -> JwtIssuer {
    JwtIssuer::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE)
}

pub(crate) fn token(user: &str, roles: &[Role]) -> String {
    issuer()
        .issue(user, roles, Duration::from_secs(3600))
        .unwrap()
}

/// The core as its own process (`messaging serve`), so it can be killed for real.
/// Its log (warnings and errors) goes to a file, shown if it never serves.
pub(crate) struct CoreProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
    log: tempfile::NamedTempFile,
}

impl CoreProcess {
    pub(crate) async fn start(vars: &HashMap<String, String>, addr: SocketAddr) -> Self {
        let log = tempfile::NamedTempFile::new().expect("a log file for the core");
        let child = Command::new(env!("CARGO_BIN_EXE_messaging"))
            .arg("serve")
            .env_clear()
            .envs(vars)
            .env("MESSAGING_GRPC_ADDR", addr.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("the core's log file"))
            .spawn()
            .expect("start messaging serve");
        let core = Self { child, addr, log };
        core.wait_serving().await;
        core
    }

    async fn wait_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while health(self.addr).await != Some(ServingStatus::Serving) {
            if Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "timed out after 30 s waiting for the core at {} to serve; its log ends:\n{}",
                    self.addr,
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown hook runs, nothing is flushed.
    pub(crate) fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().ok();
    }
}

impl Drop for CoreProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

pub(crate) async fn health(addr: SocketAddr) -> Option<ServingStatus> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .ok()?
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .ok()?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let req = HealthCheckRequest {
        service: String::new(),
    };
    let answer = tokio::time::timeout(Duration::from_secs(2), client.check(req)).await;
    Some(answer.ok()?.ok()?.into_inner().status())
}

pub(crate) async fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

async fn assign(addr: SocketAddr) {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut admin = pb::messaging_admin_client::MessagingAdminClient::new(channel);
    let req = pb::AssignNumberRequest {
        number: FROM.into(),
        user_id: "load-user".into(),
    };
    admin
        .assign_number(authed(req, &token("operator", &[Role::Admin])))
        .await
        .unwrap();
}

/// The claim tokens of the outbox jobs someone holds.
async fn held_claims(store: &messaging_grpc::store::Store) -> HashSet<String> {
    use sea_orm::{ConnectionTrait as _, Statement};
    let sql = "SELECT claim_token FROM outbox WHERE claim_token IS NOT NULL";
    let rows = store
        .conn()
        .query_all_raw(Statement::from_string(store.backend(), sql))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

backend_tests! {
    async fn kill_9_while_64_callers_send_loses_and_duplicates_nothing(backend: Backend) {
        let fake = FakeTwilio::start().await.unwrap();
        // Twilio's latency, so creates are in flight and claims held when the kill lands.
        fake.set_create_latency(twilio_fake::Latency::Fixed(Duration::from_millis(150)));
        let dir = tempfile::tempdir().unwrap();
        let (database_url, _pg) = match &backend {
            Backend::Sqlite => (format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display()), None),
            Backend::Postgres(server) => {
                let db = PgDatabase::create(server).await;
                (db.url.clone(), Some(db))
            }
        };
        // Production settings (lease, heartbeat, poll, Twilio timeout, retries and the
        // 60 s settle of unknown outcomes), but pacing: one number at 1 message a
        // second cannot carry 64 callers' sends (pacing has tests of its own).
        let mut vars: HashMap<String, String> = twilio_vars(&fake)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("OUTBOX_") && *k != "TWILIO_TIMEOUT_SECS")
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        vars.extend([
            ("MESSAGING_DATA_DIR".to_owned(), dir.path().display().to_string()),
            ("DATABASE_URL".to_owned(), database_url.clone()),
            ("MESSAGING_MASTER_KEYS".to_owned(), master_keys_spec()),
            ("JWT_HS256_SECRET".to_owned(), SECRET.to_owned()),
        ]);
        let addr = free_addr().await;
        let core = CoreProcess::start(&vars, addr).await;
        assign(addr).await;

        // Kill once sends are being acknowledged (however slow the machine), while
        // the callers go on sending; they stop 1.5 s after the kill.
        let progress = LoadProgress::until(Instant::now() + Duration::from_secs(120));
        let sending = tokio::spawn(load_with(addr, token("load-user", &[]), progress.clone()));
        wait_until("the first 200 sends acknowledged", 90, || async {
            progress.acked() >= 200
        })
        .await;
        core.kill_9();
        progress.stop_at(Instant::now() + Duration::from_millis(1500));
        let (acked, refused) = sending.await.unwrap();
        eprintln!("acknowledged {}, refused or unanswered {refused}", acked.len());
        assert!(refused > 0, "the kill landed while callers were sending");
        let probe = messaging_grpc::store::Store::connect(&database_url).await.unwrap();
        let dead = held_claims(&probe).await;
        assert!(!dead.is_empty(), "the dead process held claims");

        // Restarted on the same database: its claims are let go within seconds, not
        // after their lease (121 s before the heartbeat): SQLite releases them at
        // start (one process: the file lock proves it), before the lease (10 s) could
        // end; on PostgreSQL they end with the lease, no longer renewed by the dead
        // heartbeat, and are taken over.
        let restarted = Instant::now();
        let _core = CoreProcess::start(&vars, addr).await;
        let released_within = match backend {
            Backend::Sqlite => 3,
            Backend::Postgres(_) => 15,
        };
        wait_until("the dead process's claims let go", released_within, || async {
            held_claims(&probe).await.is_disjoint(&dead)
        })
        .await;
        probe.close().await.unwrap();
        eprintln!("claims let go {:.1} s after the restart", restarted.elapsed().as_secs_f64());
        // Every acknowledged message goes out once: creates that reached Twilio are
        // found and adopted; one whose outcome is unknown waits the settle time (60 s
        // after its create started) and two look-ups before it is sent.
        every_acknowledged_message_sent_once(&fake, &acked, 90).await;
        eprintln!("recovered in {:.1} s after the restart", restarted.elapsed().as_secs_f64());
    }
}

/// Twilio answers 503 to everything for 30 s while 64 callers send, then recovers.
/// With the production retry schedule, all is delivered afterwards, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_twilio_outage_delays_but_loses_and_duplicates_nothing() {
    let fake = FakeTwilio::start().await.unwrap();
    let mut vars = twilio_vars(&fake);
    // This test is about retries: the production schedule, not the suite's fast one.
    vars.insert("OUTBOX_RETRY_BASE_MS", "2000".to_owned());
    vars.insert("OUTBOX_RETRY_MAX_SECS", "600".to_owned());
    let server = TestServer::start_with(&Backend::Sqlite, vars).await;
    server.assign(FROM, "load-user").await;
    let outage_start = Instant::now();
    fake.set_outage(Some(503));
    let stop = Instant::now() + Duration::from_secs(2);
    let (acked, _) = load(server.addr, server.token("load-user"), stop).await;
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(outage_start.elapsed())).await;
    assert!(
        fake.messages().is_empty(),
        "nothing is created during the outage"
    );
    fake.set_outage(None);
    every_acknowledged_message_sent_once(&fake, &acked, 90).await;
    server.stop().await;
}

/// A TCP proxy in front of PostgreSQL that can lose the database: every open
/// connection cut, new ones refused, until it is restored.
struct DbProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl DbProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // the database is down: connection reset
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            up,
            conns,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// PostgreSQL lost mid-load (every connection cut, new ones refused) for 8 s: the
/// core reports NOT_SERVING, recovers by itself, and loses nothing it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_postgres_mid_load_reports_not_ready_and_loses_nothing() {
    let Some(Backend::Postgres(server_url)) = Backend::postgres() else {
        return;
    };
    let db = PgDatabase::create(&server_url).await;
    let upstream = url::Url::parse(&server_url).unwrap();
    let upstream = format!(
        "{}:{}",
        upstream.host_str().unwrap(),
        upstream.port().unwrap_or(5432)
    );
    let proxy = DbProxy::start(upstream).await;
    let mut proxied = url::Url::parse(&db.url).unwrap();
    proxied.set_port(Some(proxy.addr.port())).unwrap();
    proxied.set_host(Some("127.0.0.1")).unwrap();

    let fake = FakeTwilio::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut vars: HashMap<String, String> = twilio_vars(&fake)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    vars.extend([
        (
            "MESSAGING_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("DATABASE_URL".to_owned(), proxied.to_string()),
        ("MESSAGING_MASTER_KEYS".to_owned(), master_keys_spec()),
        ("JWT_HS256_SECRET".to_owned(), SECRET.to_owned()),
    ]);
    let server = TestServer::start_from_vars(
        vars,
        proxied.to_string(),
        dir,
        Some(db),
        messaging_grpc::Mode::Serve,
    )
    .await;
    server.assign(FROM, "load-user").await;

    // Cut once sends are being acknowledged; the callers go on until the core has
    // recovered, and 2 s beyond.
    let progress = LoadProgress::until(Instant::now() + Duration::from_secs(180));
    let sending = tokio::spawn(load_with(
        server.addr,
        server.token("load-user"),
        progress.clone(),
    ));
    wait_until("the first 20 sends acknowledged", 90, || async {
        progress.acked() >= 20
    })
    .await;
    proxy.cut();
    wait_until("the core to report NOT_SERVING", 10, || async {
        health(server.addr).await == Some(ServingStatus::NotServing)
    })
    .await;
    proxy.restore();
    wait_until("the core to serve again by itself", 30, || async {
        health(server.addr).await == Some(ServingStatus::Serving)
    })
    .await;
    progress.stop_at(Instant::now() + Duration::from_secs(2));
    let (acked, _) = sending.await.unwrap();
    every_acknowledged_message_sent_once(&fake, &acked, 60).await;
    server.stop().await;
}
