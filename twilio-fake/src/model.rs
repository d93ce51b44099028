//! The fake's message records and their JSON, shaped like Twilio's.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// A message the fake "sent".
#[derive(Clone, Debug)]
pub struct FakeMessage {
    pub sid: String,
    pub account_sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub media_urls: Vec<String>,
    pub status_callback: Option<String>,
    pub status: String,
    /// `date_created`.
    pub created_at: DateTime<Utc>,
    /// `date_sent`: null while Twilio still holds the message in its queue (Twilio's
    /// schema has it nullable; "for an outgoing message, this is when Twilio sent the
    /// message").
    pub date_sent: Option<DateTime<Utc>>,
    /// `date_updated`.
    pub updated_at: DateTime<Utc>,
    /// When a `queued` message leaves the queue (`None`: held until released).
    pub(crate) release_at: Option<DateTime<Utc>>,
    /// When the list first shows it (its create completed, plus the list's lag).
    pub(crate) listed_at: DateTime<Utc>,
}

impl FakeMessage {
    /// Twilio-like segment count (GSM-7 160/153, otherwise 70/67).
    pub fn segments(&self) -> usize {
        let gsm = self
            .body
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control() || c == '\n');
        let (single, part) = if gsm { (160, 153) } else { (70, 67) };
        let len = if gsm {
            self.body.len()
        } else {
            self.body.encode_utf16().count()
        };
        if len <= single { 1 } else { len.div_ceil(part) }
    }

    /// Moves a `queued` message on to `sent` once its release time has come.
    pub(crate) fn advance(&mut self, now: DateTime<Utc>) {
        if self.status != "queued" {
            return;
        }
        if let Some(at) = self.release_at.filter(|at| *at <= now) {
            self.status = "sent".into();
            self.date_sent = Some(at);
            self.updated_at = at;
            self.release_at = None;
        }
    }

    /// Sets the status as a carrier report would; a status past the queue gives the
    /// message its `date_sent` if it had none.
    pub(crate) fn set_status(&mut self, status: &str, now: DateTime<Utc>) {
        self.status = status.to_owned();
        self.updated_at = now;
        self.release_at = None;
        let left_the_queue = matches!(
            status,
            "sending" | "sent" | "delivered" | "undelivered" | "read"
        );
        if left_the_queue && self.date_sent.is_none() {
            self.date_sent = Some(now);
        }
    }

    /// The resource as Twilio's API returns it.
    pub fn to_json(&self) -> Value {
        let uri = format!(
            "/2010-04-01/Accounts/{}/Messages/{}",
            self.account_sid, self.sid
        );
        json!({
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": self.body,
            "date_created": rfc2822(self.created_at),
            "date_sent": self.date_sent.map(rfc2822),
            "date_updated": rfc2822(self.updated_at),
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": self.from,
            "messaging_service_sid": null,
            "num_media": self.media_urls.len().to_string(),
            "num_segments": self.segments().to_string(),
            "price": null,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": { "media": format!("{uri}/Media.json") },
            "to": self.to,
            "uri": format!("{uri}.json"),
        })
    }
}

pub fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// Twilio's error body.
pub fn error_body(status: u16, code: i64, message: &str) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}
