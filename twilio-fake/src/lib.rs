//! A fake Twilio REST API (2010-04-01 Messages) on loopback, for tests and local runs.
//!
//! It speaks Twilio's wire format as `shared/twilio/twilio_api_v2010.json` describes it:
//! form-encoded requests with Basic auth, JSON message resources (counts as strings,
//! RFC 2822 dates), Twilio error bodies (`code`, `message`, `more_info`, `status`).
//! Like Twilio's test credentials it refuses the magic `To` numbers (+15005550001
//! invalid, +15005550002 unroutable, +15005550003 no permission, +15005550004
//! unsubscribed, +15005550009 not SMS-capable). Tests script failures for the next
//! `POST`s (429, 5xx, error codes, slowness, dropped connections) and for the next
//! list reads, read what it received, take it down and bring it back on the same port.
//!
//! It is as unkind as Twilio where a client can trip:
//! - A created message is `queued` with `date_sent: null`; it leaves the queue (`sent`,
//!   `date_sent` set) only after [`FakeTwilio::set_queue_hold`] (default 0), and never
//!   while [`FakeTwilio::hold_queued`] is on (a sender's queue can hold a message for
//!   hours).
//! - The list endpoint filters `DateSent`, `DateSent<` (on or before) and `DateSent>`
//!   (on or after) on the GMT day of `date_sent`, so a message still queued matches no
//!   `DateSent` filter; it filters `To`/`From`, lists newest `date_sent` first, and pages
//!   by `PageSize` (default 50, at most 1000) with relative `next_page_uri`s carrying a
//!   `PageToken` (`Page` is only echoed, as Twilio says it is "simply for client state").
//! - A create takes time ([`FakeTwilio::set_create_latency`]: fixed or a range; default
//!   none) and, like Twilio's, is not aborted when the caller hangs up: a client that
//!   times out still finds the message created when the latency is over.
//! - The list shows a new message only [`FakeTwilio::set_list_lag`] after its create
//!   completed (default 0); a fetch by SID finds it at once.
//! - An account's concurrency limit ([`FakeTwilio::set_max_open_creates`], default
//!   none): a create beyond it is refused at once with 429 / 20429, as Twilio refuses
//!   "too many concurrent requests", and nothing is created; a look-up (list or fetch)
//!   while the creates fill it is refused the same way (the limit is the account's).

mod list;
mod model;
mod routes;
mod server;

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

pub use model::FakeMessage;

/// What the next `POST …/Messages.json` (or, with [`FakeTwilio::script_list`], the next
/// `GET …/Messages.json`) does instead of succeeding.
#[derive(Clone, Debug)]
pub enum Scripted {
    /// 429 with Twilio's 20429 body, with or without `Retry-After` (seconds).
    TooManyRequests { retry_after: Option<u64> },
    /// A 5xx with Twilio's 20500 body.
    ServerError(u16),
    /// Any Twilio error, e.g. `Error { status: 400, code: 21211, message: … }`.
    Error {
        status: u16,
        code: i64,
        message: String,
    },
    /// Succeed after this delay (instead of the create latency). The create completes
    /// even if the caller hung up meanwhile, as Twilio's does.
    Slow(Duration),
    /// Close the connection without answering; nothing is created.
    Drop,
    /// Create the message, then close the connection without answering (the caller
    /// cannot know it was sent). For a list read, the same as [`Scripted::Drop`].
    CreateThenDrop,
}

/// How long a create takes before the fake answers it (and the message exists).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Latency {
    /// Answered at once.
    #[default]
    None,
    Fixed(Duration),
    /// Uniformly spread between the two bounds.
    Range(Duration, Duration),
}

impl Latency {
    /// `150` (milliseconds) or `100-300`; `0` is none.
    pub fn parse_millis(spec: &str) -> Option<Self> {
        let ms = |v: &str| v.trim().parse::<u64>().ok().map(Duration::from_millis);
        Some(match spec.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (ms(lo)?, ms(hi)?);
                if lo > hi {
                    return None;
                }
                Self::Range(lo, hi)
            }
            None => match ms(spec)? {
                Duration::ZERO => Self::None,
                d => Self::Fixed(d),
            },
        })
    }

    /// One create's latency.
    pub(crate) fn sample(self) -> Duration {
        match self {
            Self::None => Duration::ZERO,
            Self::Fixed(d) => d,
            Self::Range(lo, hi) => {
                let span = (hi - lo).as_nanos() as u64;
                lo + Duration::from_nanos(routes::random_u64() % span.max(1))
            }
        }
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub authorized: bool,
    pub at: Instant,
}

impl Recorded {
    /// First value of a query parameter (`DateSent>`, `PageToken`, …).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a repeated form field (`MediaUrl`).
    pub fn fields(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A media file the fake hosts, as Twilio hosts inbound MMS media.
#[derive(Clone, Debug)]
pub(crate) struct HostedMedia {
    pub bytes: Vec<u8>,
    pub content_type: String,
    /// Delay between 1 KiB pieces of the body (a slow drip).
    pub drip: Option<Duration>,
    /// Answer with a redirect to this URL instead (as Twilio redirects to its CDN).
    pub redirect: Option<String>,
}

#[derive(Default)]
pub(crate) struct State {
    pub script: VecDeque<Scripted>,
    pub list_script: VecDeque<Scripted>,
    pub requests: Vec<Recorded>,
    /// In creation order.
    pub messages: Vec<FakeMessage>,
    pub media: std::collections::HashMap<String, HostedMedia>,
    pub deleted_media: Vec<String>,
    /// How long a created message stays `queued` before it is `sent`.
    pub queue_hold: Duration,
    /// Queued messages stay queued until released.
    pub held: bool,
    /// Lists messages with a null `date_sent` after the sent ones (Twilio does not
    /// say where they go).
    pub unsent_last: bool,
    /// While set, every Messages API call answers this status and does nothing (a
    /// Twilio incident), however many requests come.
    pub outage: Option<u16>,
    /// How long each create takes (unless scripted).
    pub create_latency: Latency,
    /// How long after its create completed a message shows in the list.
    pub list_lag: Duration,
    /// The account's concurrency limit: creates beyond it are refused with 429.
    pub max_open_creates: Option<usize>,
    /// Creates in progress (those whose caller hung up too, until they complete).
    pub open_creates: usize,
    /// Requests (creates and look-ups) refused for the concurrency limit.
    pub refused_busy: usize,
}

impl State {
    /// Lets time pass: queued messages whose hold is over are sent.
    pub fn tick(&mut self) {
        let now = Utc::now();
        for m in &mut self.messages {
            m.advance(now);
        }
    }

    /// Takes a newly created message into the queue: its create completed now (its
    /// `date_created` is when the request arrived).
    pub fn enqueue(&mut self, mut m: FakeMessage) {
        let now = Utc::now();
        m.release_at = if self.held {
            None
        } else {
            Some(now.max(m.created_at) + chrono_duration(self.queue_hold))
        };
        m.listed_at = now + chrono_duration(self.list_lag);
        self.messages.push(m);
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

pub(crate) struct Shared {
    pub account_sid: String,
    pub auth_token: String,
    pub api_keys: Vec<(String, String)>,
    pub state: Mutex<State>,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake. Dropping it stops the server.
pub struct FakeTwilio {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const AUTH_TOKEN: &str = "fake-auth-token-0123456789abcdef";
pub const API_KEY_SID: &str = "SK00000000000000000000000000000001";
pub const API_KEY_SECRET: &str = "fake-api-key-secret";

impl FakeTwilio {
    /// Starts on an ephemeral loopback port with [`ACCOUNT_SID`] / [`AUTH_TOKEN`]
    /// (and the API key [`API_KEY_SID`] / [`API_KEY_SECRET`]).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?).await
    }

    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            account_sid: ACCOUNT_SID.into(),
            auth_token: AUTH_TOKEN.into(),
            api_keys: vec![(API_KEY_SID.into(), API_KEY_SECRET.into())],
            state: Mutex::new(State::default()),
        });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(Self {
            shared,
            addr,
            server: Mutex::new(Some(task)),
        })
    }

    /// The base URL to give as TWILIO_API_BASE.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues behaviours for the next POSTs, in order; once used up, POSTs succeed.
    pub fn script(&self, steps: impl IntoIterator<Item = Scripted>) {
        self.shared.lock().script.extend(steps);
    }

    /// Queues behaviours for the next list reads (`GET …/Messages.json`), in order;
    /// once used up, reads succeed. [`Scripted::Slow`] answers late,
    /// [`Scripted::CreateThenDrop`] is a plain drop.
    pub fn script_list(&self, steps: impl IntoIterator<Item = Scripted>) {
        self.shared.lock().list_script.extend(steps);
    }

    /// How long a created message stays `queued` (`date_sent: null`) before Twilio
    /// sends it (`sent`, `date_sent` set). Applies to messages created from now on.
    /// Default: zero, sent at once.
    pub fn set_queue_hold(&self, hold: Duration) {
        let mut state = self.shared.lock();
        state.tick();
        state.queue_hold = hold;
    }

    /// `true`: every queued message, and every message created from now on, stays
    /// `queued` with `date_sent: null` (a sender's queue can hold messages for hours).
    /// `false`: they are all sent now.
    pub fn hold_queued(&self, hold: bool) {
        let mut state = self.shared.lock();
        state.tick();
        state.held = hold;
        let now = Utc::now();
        for m in state.messages.iter_mut().filter(|m| m.status == "queued") {
            m.release_at = if hold { None } else { Some(now) };
        }
        state.tick();
    }

    /// How long each create takes before it is answered and the message exists
    /// (scripted steps aside; [`Scripted::Slow`] replaces it for one create). The create
    /// completes even when the caller hung up first, as Twilio's does. Default: none.
    pub fn set_create_latency(&self, latency: Latency) {
        self.shared.lock().create_latency = latency;
    }

    /// How long after its create completed a message first shows in the list
    /// (`GET …/Messages.json`), as Twilio's list trails its creates. Default: zero.
    pub fn set_list_lag(&self, lag: Duration) {
        self.shared.lock().list_lag = lag;
    }

    /// The account's concurrency limit, as Twilio's: while `max` creates are in
    /// progress (a create whose caller hung up still counts until it completes), a
    /// create is refused at once with 429 and error 20429, without `Retry-After`, and
    /// nothing is created. Default: no limit.
    pub fn set_max_open_creates(&self, max: Option<usize>) {
        self.shared.lock().max_open_creates = max;
    }

    /// How many requests (creates and look-ups) the concurrency limit refused.
    pub fn refused_busy(&self) -> usize {
        self.shared.lock().refused_busy
    }

    /// How many creates are in progress now.
    pub fn open_creates(&self) -> usize {
        self.shared.lock().open_creates
    }

    /// How many messages were created (cheaper than [`Self::messages`] for polling).
    pub fn created_count(&self) -> usize {
        self.shared.lock().messages.len()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// The `POST …/Messages.json` requests received.
    pub fn create_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/Messages.json"))
            .collect()
    }

    /// Where the list puts messages not yet sent (null `date_sent`): Twilio sorts by
    /// `date_sent`, newest first, and does not say where a null goes. Default: first
    /// (they are the newest); `true`: after every sent message, behind older ones.
    pub fn list_unsent_last(&self, last: bool) {
        self.shared.lock().unsent_last = last;
    }

    /// The list reads (`GET …/Messages.json`, first pages and next pages) received;
    /// [`Recorded::param`] gives their filters and paging parameters.
    pub fn list_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/Messages.json"))
            .collect()
    }

    /// The fetches of one message (`GET …/Messages/{Sid}.json`) received.
    pub fn fetch_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.method == "GET" && r.path.contains("/Messages/SM") && r.path.ends_with(".json")
            })
            .collect()
    }

    /// Messages created (what Twilio would have sent), in creation order, with their
    /// status as of now.
    pub fn messages(&self) -> Vec<FakeMessage> {
        let mut state = self.shared.lock();
        state.tick();
        state.messages.clone()
    }

    /// Changes a message's status, as Twilio does when the carrier reports. A status
    /// past the queue (`sending`, `sent`, `delivered`, `undelivered`, `read`) sets
    /// `date_sent` to now if it was null.
    pub fn set_status(&self, sid: &str, status: &str) {
        let mut state = self.shared.lock();
        state.tick();
        if let Some(m) = state.messages.iter_mut().find(|m| m.sid == sid) {
            m.set_status(status, Utc::now());
        }
    }

    /// Rewrites a message's `date_created` and `date_sent` (e.g. to yesterday, for
    /// `DateSent` filters); a `date_sent` makes a queued message `sent`, `None` puts it
    /// back in the queue, held.
    pub fn set_dates(&self, sid: &str, created: DateTime<Utc>, sent: Option<DateTime<Utc>>) {
        let mut state = self.shared.lock();
        state.tick();
        if let Some(m) = state.messages.iter_mut().find(|m| m.sid == sid) {
            m.created_at = created;
            m.date_sent = sent;
            m.release_at = None;
            match sent {
                Some(at) => {
                    m.updated_at = at;
                    if m.status == "queued" {
                        m.status = "sent".into();
                    }
                }
                None => {
                    m.updated_at = created;
                    m.status = "queued".into();
                }
            }
        }
    }

    /// Hosts a media file like Twilio does for an inbound MMS: the returned URL
    /// (`…/Accounts/{sid}/Messages/MM…/Media/ME…`) needs Basic auth and answers with a
    /// redirect to a CDN path on the same host, which serves the bytes without auth.
    pub fn host_media(&self, bytes: Vec<u8>, content_type: &str) -> String {
        self.host(bytes, content_type, None, None)
    }

    /// Like [`Self::host_media`], but the CDN sends the body 1 KiB every `drip`.
    pub fn host_slow_media(&self, bytes: Vec<u8>, content_type: &str, drip: Duration) -> String {
        self.host(bytes, content_type, Some(drip), None)
    }

    /// A Twilio-style media URL that redirects to `target` (any URL).
    pub fn host_redirect(&self, target: &str) -> String {
        self.host(Vec::new(), "text/plain", None, Some(target.to_owned()))
    }

    fn host(
        &self,
        bytes: Vec<u8>,
        content_type: &str,
        drip: Option<Duration>,
        redirect: Option<String>,
    ) -> String {
        let n = self.shared.lock().media.len() + 1;
        let id = format!("ME{n:032}");
        let media = HostedMedia {
            bytes,
            content_type: content_type.to_owned(),
            drip,
            redirect,
        };
        self.shared.lock().media.insert(id.clone(), media);
        format!(
            "{}/2010-04-01/Accounts/{}/Messages/MM{n:032}/Media/{id}",
            self.base_url(),
            self.shared.account_sid
        )
    }

    /// Media ids the API was asked to DELETE.
    pub fn deleted_media(&self) -> Vec<String> {
        self.shared.lock().deleted_media.clone()
    }

    /// While `Some(status)`, every Messages API call (create, list, fetch) answers that
    /// status with Twilio's error body and creates nothing; `None` ends the outage.
    pub fn set_outage(&self, status: Option<u16>) {
        self.shared.lock().outage = status;
    }

    /// Stops listening and drops every open connection: callers get "connection refused".
    pub fn go_down(&self) {
        if let Some(task) = self.server.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn come_back(&self) -> anyhow::Result<()> {
        let mut last = None;
        // The port is free again once the aborted task has dropped its listener.
        for _ in 0..50 {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => {
                    let task = tokio::spawn(server::serve(listener, self.shared.clone()));
                    *self.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(anyhow::anyhow!(
            "could not listen on {} again: {last:?}",
            self.addr
        ))
    }
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.go_down();
    }
}
