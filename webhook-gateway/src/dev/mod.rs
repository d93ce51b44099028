//! The dev console (`messaging dev` only): a page at `/dev` showing a CommPro user's
//! inbox beside the contact's phone, and the small API under `/dev/api/` the phone
//! side needs. The inbox half is a plain client of the public REST API; what only a
//! local stack can do (mint tokens, read what the console SMS provider "delivered",
//! sign a reply as Twilio would, fail the next delivery) is asked of a
//! [`DevBackend`] that the `dev` command passes in, so this crate never depends on the
//! core's. Without one (`messaging serve`, the standalone gateway) no `/dev` route
//! exists: every `/dev` path is the gateway's plain 404.
//!
//! Every `/dev` request must come from this machine ([`guard`]): a loopback peer,
//! a loopback `Host`, no forwarding headers, no other site's `Origin`.

mod assets;
mod guard;
mod handlers;
mod phone_media;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware::from_fn,
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use phone_media::MAX_IMAGE_BYTES;

/// A dev token and the numbers its user owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DevToken {
    /// A bearer token for `user_id`, signed with the dev secret (no roles).
    pub token: String,
    pub user_id: String,
    /// The user's own numbers (what they can send from), sorted.
    pub numbers: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

/// One message the console provider handed to a phone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneMessage {
    /// The CommPro number it came from.
    pub from: String,
    pub body: String,
    /// The media URLs Twilio would have fetched (the gateway's signed `/media/` links).
    pub media_urls: Vec<String>,
    /// As Twilio spells it: `sent`, then `delivered` or `undelivered`.
    pub status: String,
    /// The Twilio error code of an undelivered message.
    pub error_code: Option<i64>,
    pub at: DateTime<Utc>,
}

/// A phone's view: what reached it, oldest first, and the failure armed for its next
/// delivery, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneView {
    pub messages: Vec<PhoneMessage>,
    pub next_delivery_error_code: Option<u32>,
}

/// An SMS or MMS the phone sends to a CommPro number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneReply {
    /// The phone's number (Twilio's `From`).
    pub from: String,
    /// The CommPro number it texts (Twilio's `To`).
    pub to: String,
    pub body: String,
    /// `(MediaUrlN, MediaContentTypeN)`.
    pub media: Vec<(String, String)>,
}

/// The gateway's answer to a webhook, as it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// Why the backend could not do what the console asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DevError {
    /// A bad value, naming its JSON field.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Not possible with this configuration (tokens under JWT_PUBLIC_KEY_FILE, say).
    #[error("{0}")]
    Unsupported(String),
    /// Something failed on the way (the core, the gateway); worth a retry.
    #[error("{0}")]
    Unavailable(String),
}

/// What the local stack does for the console.
#[async_trait::async_trait]
pub trait DevBackend: Send + Sync + 'static {
    /// A token for `user_id` signed with the dev secret; with `assign_number`, a user
    /// without a number first gets a free dev number.
    async fn token(&self, user_id: &str, assign_number: bool) -> Result<DevToken, DevError>;

    /// What the console provider delivered to `number`, oldest first.
    async fn phone(&self, number: &str) -> Result<PhoneView, DevError>;

    /// Signs `reply` as Twilio's inbound webhook and posts it to this gateway's
    /// `/webhook/sms` over HTTP; the gateway's answer.
    async fn reply(&self, reply: PhoneReply) -> Result<WebhookAnswer, DevError>;

    /// The next delivery to `number` fails with Twilio error `error_code`.
    async fn fail_next_delivery(&self, number: &str, error_code: u32) -> Result<(), DevError>;
}

/// The console's routes and what they share.
#[derive(Clone)]
pub struct DevConsole {
    backend: Arc<dyn DevBackend>,
    images: phone_media::PhoneImages,
}

impl DevConsole {
    /// `gateway` is where this gateway listens: the phone's images are served there
    /// (`http://127.0.0.1:{port}/dev/phone-media/…`), which the dev media fetcher allows.
    pub fn new(backend: Arc<dyn DevBackend>, gateway: SocketAddr) -> Self {
        Self {
            backend,
            images: phone_media::PhoneImages::new(gateway),
        }
    }
}

/// Every `/dev` route, behind the loopback guard.
pub(crate) fn routes(console: DevConsole) -> Router {
    Router::new()
        .route("/dev", get(assets::page))
        .route("/dev/", get(assets::page))
        .route("/dev/assets/{file}", get(assets::file))
        .route("/dev/api/tokens", post(handlers::token))
        .route("/dev/api/phones/{number}/messages", get(handlers::phone))
        .route("/dev/api/phones/{number}/reply", post(handlers::reply))
        .route(
            "/dev/api/phones/{number}/next-delivery",
            post(handlers::next_delivery),
        )
        .route(
            "/dev/api/phones/{number}/media",
            post(handlers::upload_image).layer(DefaultBodyLimit::max(MAX_IMAGE_BYTES)),
        )
        .route("/dev/phone-media/{id}", get(handlers::phone_image))
        .with_state(console)
        .layer(from_fn(guard::only_local))
}
