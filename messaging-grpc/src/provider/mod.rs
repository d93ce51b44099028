//! Who hands messages to carriers: Twilio in production, the console in dev.

mod console;
mod metered;
mod phones;
mod twilio;

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use console::ConsoleProvider;
pub use metered::Metered;
pub use phones::{Delivered, PhoneLog};
pub use twilio::TwilioProvider;

/// A message to hand over.
#[derive(Clone, Copy, Debug)]
pub struct Outgoing<'a> {
    pub message_id: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub body: &'a str,
    pub media_urls: &'a [String],
    /// How long the provider may still hold it queued before it is pointless.
    pub validity_left: Option<Duration>,
}

/// The provider's view of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderMessage {
    pub sid: String,
    /// Status as Twilio spells it (`queued`, `sent`, `delivered`, …).
    pub status: String,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub segments: Option<u32>,
    pub body: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// Why a hand-over failed, in the terms the dispatcher acts on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Certainly not sent (connection refused, credentials): try again later.
    #[error("not sent, retryable: {reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Refused for too many requests open at once (Twilio's 429, error 20429): not
    /// created, safe to retry; the dispatcher keeps fewer in flight.
    #[error("not sent, provider busy: {reason}")]
    Busy {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Possibly sent (timeout, dropped connection, 5xx): reconcile before any resend.
    #[error("outcome unknown: {reason}")]
    Unknown { reason: String },
    /// Refused for good, with the provider's error code.
    #[error("refused: {code:?}: {message}")]
    Permanent { code: Option<i64>, message: String },
}

/// A provider of SMS/MMS delivery.
#[async_trait::async_trait]
pub trait SmsProvider: Send + Sync {
    fn name(&self) -> &'static str;

    /// Hands one message over.
    async fn send(&self, msg: &Outgoing<'_>) -> Result<ProviderMessage, SendError>;

    /// The provider's current view of a message; `None` if it does not know it.
    async fn fetch(&self, sid: &str) -> Result<Option<ProviderMessage>, SendError>;

    /// Messages the provider holds from `from` to `to` created on or after `since`
    /// (to find a message whose hand-over outcome is unknown).
    async fn find(
        &self,
        from: &str,
        to: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<ProviderMessage>, SendError>;
}

/// A status change a provider learned of by itself: what a Twilio status callback says.
#[derive(Clone, Copy, Debug)]
pub struct Receipt<'a> {
    /// Our message id (Twilio's callback carries it in the StatusCallback URL).
    pub message_id: &'a str,
    pub sid: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    /// As Twilio spells it (`delivered`, `undelivered`, …).
    pub status: &'a str,
    pub error_code: Option<i64>,
}

/// Where a provider reports status changes it learns of by itself (the console's
/// simulated delivery receipts; Twilio's arrive through the gateway instead).
#[async_trait::async_trait]
pub trait StatusSink: Send + Sync {
    async fn report(&self, receipt: Receipt<'_>);
}
