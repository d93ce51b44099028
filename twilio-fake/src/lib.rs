//! A fake Twilio REST API (2010-04-01 Messages) on loopback, for tests and local runs.
//!
//! It speaks Twilio's wire format as `shared/twilio/twilio_api_v2010.json` describes it:
//! form-encoded requests with Basic auth, JSON message resources (counts as strings,
//! RFC 2822 dates), Twilio error bodies (`code`, `message`, `more_info`, `status`).
//! Like Twilio's test credentials it refuses the magic `To` numbers (+15005550001
//! invalid, +15005550002 unroutable, +15005550003 no permission, +15005550004
//! unsubscribed, +15005550009 not SMS-capable). Tests script failures for the next
//! `POST`s (429, 5xx, error codes, slowness, dropped connections), read what it
//! received, take it down and bring it back on the same port.

mod model;
mod routes;
mod server;

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub use model::FakeMessage;

/// What the next `POST …/Messages.json` does instead of succeeding.
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
    /// Succeed after this delay.
    Slow(Duration),
    /// Close the connection without answering; nothing is created.
    Drop,
    /// Create the message, then close the connection without answering (the caller
    /// cannot know it was sent).
    CreateThenDrop,
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
    pub requests: Vec<Recorded>,
    pub messages: Vec<FakeMessage>,
    pub media: std::collections::HashMap<String, HostedMedia>,
    pub deleted_media: Vec<String>,
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

    /// Messages created (what Twilio would have sent).
    pub fn messages(&self) -> Vec<FakeMessage> {
        self.shared.lock().messages.clone()
    }

    /// Changes a message's status, as Twilio does when the carrier reports.
    pub fn set_status(&self, sid: &str, status: &str) {
        if let Some(m) = self
            .shared
            .lock()
            .messages
            .iter_mut()
            .find(|m| m.sid == sid)
        {
            m.status = status.to_owned();
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
