//! What a Twilio call can fail with, classified for the dispatcher.

use std::time::Duration;

use super::ApiErrorBody;

/// A failed Twilio call.
#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error status.
    #[error("Twilio answered {status}: code {code:?}: {message}")]
    Api {
        status: u16,
        code: Option<i64>,
        message: String,
        more_info: Option<String>,
        retry_after: Option<Duration>,
    },
    /// The request never reached Twilio (connection refused, DNS): nothing was sent.
    #[error("could not reach Twilio: {0}")]
    Connect(String),
    /// The request may have reached Twilio but no usable answer came back (timeout,
    /// connection dropped, unreadable body): the outcome is unknown.
    #[error("no usable answer from Twilio: {0}")]
    NoAnswer(String),
}

impl TwilioError {
    pub(super) fn from_body(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let parsed: Option<ApiErrorBody> = serde_json::from_slice(body).ok();
        let (code, message, more_info) = match parsed {
            Some(b) => (b.code, b.message.unwrap_or_default(), b.more_info),
            None => (
                None,
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                None,
            ),
        };
        // Twilio echoes the number it refused: masked here, before the text can reach
        // an error column or a log line.
        let message = crate::redact::external_text(&message);
        Self::Api {
            status,
            code,
            message,
            more_info,
            retry_after,
        }
    }

    pub(super) fn from_reqwest(err: reqwest::Error) -> Self {
        // A connect error means no byte of the request left; anything later is unknown.
        let connect = err.is_connect();
        // The URL names numbers (a list's `To=`/`From=`) and message SIDs: dropped.
        let text = crate::redact::external_text(&err.without_url().to_string());
        if connect {
            Self::Connect(text)
        } else {
            Self::NoAnswer(text)
        }
    }
}
