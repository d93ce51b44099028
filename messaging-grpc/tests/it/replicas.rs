//! The production shape on loopback: two core processes (`messaging serve`) and two
//! gateways on one PostgreSQL database, one fake Twilio. 1,440 sends spread over both
//! cores while both dispatchers run, inbound webhooks and status callbacks posted to
//! both gateways (the same MessageSid to each), a WatchEvents stream on one core, and
//! one core killed with SIGKILL mid-drain. Afterwards: every message reached Twilio
//! once, every inbound is stored once, unread counts are exact, the stream saw what
//! the other core wrote, and no sender went faster than its pacing allows.
//!
//! The gateways run in this test process (`webhook_gateway::serve`, each a real HTTP
//! server on its own port calling its own core over gRPC): they are stateless, and the
//! process under test for crashes is the core.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use commpro_messaging_api::v1::{self as pb, Direction, EventKind, MessageStatus};
use messaging_grpc::{auth::Role, store::Store};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use twilio_fake::FakeTwilio;

use crate::{
    faults::{CoreProcess, free_addr, token},
    gateway::{Gateway, gateway_on, inbound_form, status_form},
    helpers::*,
};

const USERS: usize = 40;
const NUMBERS_PER_USER: usize = 3;
/// 120 sender numbers × 12 messages = 1,440 sends, from 40 users (5,000 took 4 of CI's
/// minutes on a debug build; 12 in a row already tell shared pacing from unshared).
const SENDERS: usize = USERS * NUMBERS_PER_USER;
const PER_SENDER: usize = 12;
const CALLERS: usize = 16;
/// Webhook senders posting at once (contacts' inbound, then status callbacks).
const INBOUND_AT_ONCE: usize = 8;
/// Inbound: per user, this many contacts write this many messages each.
const INBOUND_CONTACTS: usize = 3;
const INBOUND_PER_CONTACT: usize = 2;
/// Inbound for user 0 posted to core A's gateway only: the stream on core B sees them.
const ONLY_VIA_A: usize = 5;
/// Outbound messages whose status callbacks are posted to both gateways.
const CALLBACKS: usize = 100;

/// One segment every two seconds per sender (production's long codes: one a second).
const SENDER_SPS: &str = "0.5";
const INTERVAL: Duration = Duration::from_secs(2);
/// What the arrivals of one sender at the fake may fall short of the pacing, over any
/// run of its messages: k sends after one, at least k intervals minus this. Slots are
/// exact by the database's clock (`pacing` tests); a slot that went stale while the
/// SENDING mark committed (more than a quarter of the interval, 0.5 s here) is booked
/// again before the call, so what is left is that quarter plus the time the call takes
/// to reach the fake on a loaded machine (allowed 0.75 s). Before the re-booking, a
/// mark held 3 s by CI's PostgreSQL writer let four sends of one sender arrive within
/// 3 s. The allowance does not grow with k: two dispatchers pacing on their own would
/// fall short by about half of a sender's 22 s of slots.
const TOLERANCE: Duration = Duration::from_millis(1250);

fn sender(n: usize) -> String {
    format!("+1201555{n:04}")
}

/// Numbers are dealt round the users, so the senders worked on at once belong to
/// different users (a user's writes queue on its event-sequence row).
fn owner_of(n: usize) -> usize {
    n % USERS
}

fn user(u: usize) -> String {
    format!("replica-user-{u}")
}

fn recipient(j: usize) -> String {
    format!("+1617555{j:04}")
}

fn inbound_contact(k: usize) -> String {
    format!("+1212555{k:04}")
}

/// The core's environment, as an operator sets it; pacing at production rates.
fn core_vars(
    fake: &FakeTwilio,
    database_url: &str,
    dir: &tempfile::TempDir,
) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = twilio_vars(fake)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    vars.extend(
        [
            ("DATABASE_URL", database_url.to_owned()),
            ("MESSAGING_DATA_DIR", dir.path().display().to_string()),
            ("MESSAGING_MASTER_KEYS", master_keys_spec()),
            ("JWT_HS256_SECRET", SECRET.to_owned()),
            // Two processes on one machine: neither takes the default metrics port.
            ("MESSAGING_METRICS_ADDR", "off".to_owned()),
            // This test is about pacing across replicas: a sender rate of the order of
            // production's, the account cap above what 120 senders can use.
            ("PACING_SENDER_SPS", SENDER_SPS.to_owned()),
            ("PACING_ACCOUNT_SPS", "1000".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    vars
}

fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

/// One acknowledged send.
#[derive(Clone)]
struct Sent {
    user: usize,
    message: pb::Message,
}

/// Sends every sender's messages in a row (so each sender has a backlog both
/// dispatchers want to work on), alternating the core per message; a failed call is
/// retried on the other core with the same idempotency key.
async fn send_all(cores: [Channel; 2]) -> HashMap<String, Sent> {
    let next = Arc::new(Mutex::new((0..SENDERS).collect::<Vec<_>>()));
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (next, cores) = (next.clone(), cores.clone());
        callers.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            loop {
                let Some(n) = next.lock().unwrap().pop() else {
                    break;
                };
                let token = token(&user(owner_of(n)), &[]);
                for j in 0..PER_SENDER {
                    let body = format!("replica test {n} {j}");
                    let req = pb::SendSmsRequest {
                        from: sender(n),
                        to: recipient(j),
                        body: body.clone(),
                        idempotency_key: body.clone(),
                        send_at: None,
                    };
                    let message = send_one(&cores, j, req, &token).await;
                    sent.push((
                        body,
                        Sent {
                            user: owner_of(n),
                            message,
                        },
                    ));
                    let done = SENT.fetch_add(1, Ordering::Relaxed) + 1;
                    if done.is_multiple_of(1000) {
                        eprintln!("{done} sends acknowledged");
                    }
                }
            }
            sent
        }));
    }
    let mut all = HashMap::new();
    for c in callers {
        all.extend(c.await.unwrap());
    }
    all
}

async fn send_one(
    cores: &[Channel; 2],
    j: usize,
    req: pb::SendSmsRequest,
    token: &str,
) -> pb::Message {
    let mut last = None;
    for attempt in 0..6 {
        let core = cores[(j + attempt) % 2].clone();
        let mut client = pb::messaging_service_client::MessagingServiceClient::new(core);
        let call = client.send_sms(authed(req.clone(), token));
        match tokio::time::timeout(Duration::from_secs(30), call).await {
            Ok(Ok(answer)) => return answer.into_inner(),
            Ok(Err(status)) => last = Some(status.to_string()),
            Err(_) => last = Some("no answer within 30 s".into()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("send {} refused by both cores: {last:?}", req.body)
}

/// Sends acknowledged so far (progress).
static SENT: AtomicUsize = AtomicUsize::new(0);

/// 503s the gateways answered (the core busy past the gateway's deadline), each
/// retried as Twilio retries.
static RETRIED: AtomicUsize = AtomicUsize::new(0);

/// Posts `form` as Twilio does: a 503 asks for the same webhook again later; anything
/// but 200 or 503 fails the test.
async fn post_until_accepted(gateway: &Gateway, path: &str, form: &[(String, String)]) {
    for _ in 0..20 {
        match gateway.post(path, form).await {
            (200, _, _) => return,
            (503, _, _) => {
                RETRIED.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    panic!("{path}: still 503 after 20 attempts");
}

/// Posts `form` to both gateways at once.
async fn post_to_both(gateways: &[Gateway; 2], path: &str, form: &[(String, String)]) {
    tokio::join!(
        post_until_accepted(&gateways[0], path, form),
        post_until_accepted(&gateways[1], path, form)
    );
}

/// Inbound SMS: every contact's messages posted to both gateways concurrently (the
/// same MessageSid twice), contacts in parallel, plus a few for user 0 through core
/// A's gateway only.
async fn post_inbound(gateways: Arc<[Gateway; 2]>) {
    let mut posts = tokio::task::JoinSet::new();
    let at_once = Arc::new(tokio::sync::Semaphore::new(INBOUND_AT_ONCE));
    for u in 0..USERS {
        for k in 0..INBOUND_CONTACTS {
            let (gateways, at_once) = (gateways.clone(), at_once.clone());
            posts.spawn(async move {
                let _turn = at_once.acquire().await.unwrap();
                for m in 0..INBOUND_PER_CONTACT {
                    let sid = format!("SM{u:010}{k:010}{m:012}");
                    let to = sender(u + k * USERS);
                    let body = format!("hello {m}");
                    let form = inbound_form(&sid, &inbound_contact(k), &to, &body);
                    post_to_both(&gateways, "/webhook/sms", &form).await;
                }
            });
        }
    }
    while let Some(done) = posts.join_next().await {
        done.unwrap();
    }
    for m in 0..ONLY_VIA_A {
        let sid = format!("SM{:032}", 9_000 + m);
        let body = format!("via A {m}");
        let form = inbound_form(&sid, &inbound_contact(9_999), &sender(0), &body);
        post_until_accepted(&gateways[0], "/webhook/sms", &form).await;
    }
}

/// Status callbacks for `sids`, each to both gateways, out of order: "delivered" to
/// both at once, then "sent" (late, as Twilio's retries can be) to core A's gateway.
async fn post_callbacks(gateways: Arc<[Gateway; 2]>, sids: Vec<String>) {
    let mut posts = tokio::task::JoinSet::new();
    let at_once = Arc::new(tokio::sync::Semaphore::new(INBOUND_AT_ONCE));
    for sid in sids {
        let (gateways, at_once) = (gateways.clone(), at_once.clone());
        posts.spawn(async move {
            let _turn = at_once.acquire().await.unwrap();
            let delivered = status_form(&sid, "delivered", None);
            post_to_both(&gateways, "/webhook/status", &delivered).await;
            let sent = status_form(&sid, "sent", None);
            post_until_accepted(&gateways[0], "/webhook/status", &sent).await;
        });
    }
    while let Some(done) = posts.join_next().await {
        done.unwrap();
    }
}

/// The fake Twilio on a runtime of its own: the arrival times it records are not held
/// up by this test's callers and webhook posts, which share the test's two workers.
struct IsolatedFake {
    fake: FakeTwilio,
    runtime: Option<tokio::runtime::Runtime>,
}

impl IsolatedFake {
    fn start() -> Self {
        // A runtime cannot be entered from inside another: build it on a plain thread.
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let fake = runtime.block_on(FakeTwilio::start()).unwrap();
            Self {
                fake,
                runtime: Some(runtime),
            }
        })
        .join()
        .unwrap()
    }
}

impl Drop for IsolatedFake {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async context forbids.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The fake's create requests, by sender, in arrival order.
fn arrivals_by_sender(fake: &FakeTwilio) -> HashMap<String, Vec<Instant>> {
    let mut by: HashMap<String, Vec<Instant>> = HashMap::new();
    for r in fake.create_requests() {
        by.entry(r.field("From").unwrap_or_default().to_owned())
            .or_default()
            .push(r.at);
    }
    for times in by.values_mut() {
        times.sort();
    }
    by
}

/// Polls (slowly: the fake's lists are long) until `check` holds, for at most `secs`.
async fn wait_long<F: FnMut() -> bool>(what: &str, secs: u64, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cores_and_two_gateways_share_one_database_and_the_pacing() {
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        return;
    };
    let db = PgDatabase::create(&server).await;
    // An empty database is migrated once before the replicas start (README, Production).
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let isolated = IsolatedFake::start();
    let fake = &isolated.fake;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (addr_a, addr_b) = (free_addr().await, free_addr().await);
    let (vars_a, vars_b) = (
        core_vars(fake, &db.url, &dir_a),
        core_vars(fake, &db.url, &dir_b),
    );
    let (core_a, core_b) = tokio::join!(
        CoreProcess::start(&vars_a, addr_a),
        CoreProcess::start(&vars_b, addr_b),
    );
    let mut gateways = Vec::new();
    for core in [addr_a, addr_b] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        gateways.push(gateway_on(listener, &format!("http://{core}"), &[]).await);
    }
    let gateways: Arc<[Gateway; 2]> = Arc::new(gateways.try_into().ok().unwrap());

    let mut admin = pb::messaging_admin_client::MessagingAdminClient::new(channel(addr_a));
    let admin_token = token("operator", &[Role::Admin]);
    for n in 0..SENDERS {
        let req = pb::AssignNumberRequest {
            number: sender(n),
            user_id: user(owner_of(n)),
        };
        admin
            .assign_number(authed(req, &admin_token))
            .await
            .unwrap();
    }

    // User 0's events, watched on core B from before anything is written.
    let mut watch = pb::messaging_service_client::MessagingServiceClient::new(channel(addr_b));
    let req = authed(
        pb::WatchEventsRequest { since_cursor: None },
        &token(&user(0), &[]),
    );
    let mut stream = watch.watch_events(req).await.unwrap().into_inner();
    let events: Arc<Mutex<Vec<pb::Event>>> = Arc::default();
    let collector = {
        let events = events.clone();
        tokio::spawn(async move {
            while let Some(Ok(e)) = stream.next().await {
                if e.kind != EventKind::Keepalive as i32 {
                    events.lock().unwrap().push(e);
                }
            }
        })
    };

    let started = Instant::now();
    let (sent, ()) = tokio::join!(
        send_all([channel(addr_a), channel(addr_b)]),
        post_inbound(gateways.clone())
    );
    assert_eq!(sent.len(), SENDERS * PER_SENDER);
    eprintln!(
        "{} sends acknowledged in {:.1} s; webhooks retried after a 503: {}",
        sent.len(),
        started.elapsed().as_secs_f64(),
        RETRIED.load(Ordering::Relaxed)
    );

    // Status callbacks for the first messages Twilio has, to both gateways, out of
    // order ("sent" after "delivered"): each ends DELIVERED.
    wait_long("the first messages at Twilio", 60, || {
        fake.messages().len() >= CALLBACKS
    })
    .await;
    let called_back: Vec<_> = fake.messages().into_iter().take(CALLBACKS).collect();
    post_callbacks(
        gateways.clone(),
        called_back.iter().map(|m| m.sid.clone()).collect(),
    )
    .await;

    // Core A dies mid-drain: core B finishes its work.
    let at_kill = fake.create_requests().len();
    assert!(
        at_kill < SENDERS * PER_SENDER,
        "the kill lands mid-drain ({at_kill} sent)"
    );
    core_a.kill_9();
    eprintln!("core A killed with {at_kill} messages at Twilio");

    wait_long("every message at Twilio", 600, || {
        fake.create_requests().len() >= SENDERS * PER_SENDER && {
            let have: HashSet<String> = fake.messages().into_iter().map(|m| m.body).collect();
            sent.keys().all(|b| have.contains(b))
        }
    })
    .await;
    eprintln!(
        "drained in {:.1} s from the first send",
        started.elapsed().as_secs_f64()
    );
    // Exactly once: settle a little, then no body twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in fake.messages() {
        *seen.entry(m.body).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(seen.len(), SENDERS * PER_SENDER);

    // Pacing held across both dispatchers (and across the kill).
    let by_sender = arrivals_by_sender(fake);
    assert_eq!(by_sender.len(), SENDERS);
    let mut worst: Option<(Duration, usize, &str)> = None;
    let mut below = 0;
    for (from, times) in &by_sender {
        for (i, first) in times.iter().enumerate() {
            for (k, later) in times[i + 1..].iter().enumerate() {
                let (k, span) = (k as u32 + 1, *later - *first);
                let short = (INTERVAL * k).saturating_sub(span);
                below += usize::from(k == 1 && !short.is_zero());
                if worst.is_none_or(|(w, ..)| short > w) {
                    worst = Some((short, k as usize, from.as_str()));
                }
            }
        }
    }
    let (short, k, from) = worst.unwrap();
    eprintln!(
        "pacing at Twilio: {below} of {} gaps below the interval; worst shortfall {short:?} over {k} sends of one sender",
        SENDERS * (PER_SENDER - 1)
    );
    assert!(
        short <= TOLERANCE,
        "{k} sends of {from} came {short:?} faster than {k} intervals of {INTERVAL:?}"
    );

    // Status callbacks, through either gateway: DELIVERED, whatever came last.
    for m in &called_back {
        let s = &sent[&m.body];
        let mut client = user_client(addr_b, s.user);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = client.message(&s.message.contact_id, &s.message.id).await;
            if now.status == MessageStatus::Delivered as i32 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} stayed {:?}",
                m.sid,
                now.status
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Inbound: stored once each, unread counts exact (read on core B).
    for u in 0..USERS {
        let mut client = user_client(addr_b, u);
        let list = client.list(100, "").await.unwrap();
        let unread: HashMap<&str, u64> = list
            .conversations
            .iter()
            .map(|c| (c.contact_number.as_str(), c.unread_count))
            .collect();
        for k in 0..INBOUND_CONTACTS {
            let contact = inbound_contact(k);
            assert_eq!(
                unread.get(contact.as_str()),
                Some(&(INBOUND_PER_CONTACT as u64)),
                "user {u} contact {k}"
            );
        }
        for j in 0..PER_SENDER {
            assert_eq!(unread.get(recipient(j).as_str()), Some(&0), "outbound only");
        }
    }

    // The stream on core B saw every inbound of user 0, including those core A stored.
    let mut client = user_client(addr_b, 0);
    let mut inbound_ids = HashSet::new();
    let list = client.list(100, "").await.unwrap();
    for c in list.conversations.iter().filter(|c| c.unread_count > 0) {
        let page = client.get(&c.contact_id, 200, "").await.unwrap();
        let inbound: Vec<_> = page
            .messages
            .iter()
            .filter(|m| m.direction == Direction::Inbound as i32)
            .collect();
        assert_eq!(
            inbound.len() as u64,
            c.unread_count,
            "each inbound stored once"
        );
        inbound_ids.extend(inbound.iter().map(|m| m.id.clone()));
    }
    assert_eq!(
        inbound_ids.len(),
        INBOUND_CONTACTS * INBOUND_PER_CONTACT + ONLY_VIA_A
    );
    let received = || -> HashSet<String> {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::MessageReceived as i32)
            .map(|e| e.message_id.clone())
            .collect()
    };
    wait_long("user 0's inbound on the stream", 30, || {
        received() == inbound_ids
    })
    .await;
    collector.abort();
    let events = events.lock().unwrap().clone();
    let cursors: Vec<u64> = events.iter().map(|e| e.cursor).collect();
    assert!(
        cursors.windows(2).all(|w| w[1] == w[0] + 1),
        "the stream skipped or repeated an event"
    );
    drop(core_b);
}

fn user_client(addr: std::net::SocketAddr, u: usize) -> UserClient {
    UserClient {
        client: pb::messaging_service_client::MessagingServiceClient::new(channel(addr)),
        token: token(&user(u), &[]),
    }
}
