//! The Twilio provider: our REST client plus the classification of its failures.

use chrono::{DateTime, Utc};

use super::{Outgoing, ProviderMessage, SendError, SmsProvider};
use crate::twilio::{CreateMessage, MessageResource, TwilioClient, TwilioError};

pub struct TwilioProvider {
    client: TwilioClient,
    /// GATEWAY_PUBLIC_URL + /webhook/status
    status_callback: String,
    /// `#` + Twilio connection overrides, or empty.
    overrides: String,
}

impl TwilioProvider {
    pub fn new(client: TwilioClient, gateway_public_url: &str, overrides: Option<&str>) -> Self {
        let status_callback = format!(
            "{}/webhook/status",
            gateway_public_url.trim_end_matches('/')
        );
        Self {
            client,
            status_callback,
            overrides: overrides.map(|o| format!("#{o}")).unwrap_or_default(),
        }
    }
}

fn message(r: MessageResource) -> ProviderMessage {
    ProviderMessage {
        segments: r.segments(),
        created_at: r.created_at(),
        sid: r.sid,
        status: r.status,
        error_code: r.error_code,
        // Twilio's own words may name the recipient's number.
        error_message: r.error_message.map(|m| crate::redact::external_text(&m)),
        body: r.body,
    }
}

/// Maps a Twilio failure to what the dispatcher should do.
pub fn classify(err: TwilioError) -> SendError {
    match err {
        TwilioError::Connect(reason) => SendError::Retryable {
            reason,
            retry_after: None,
        },
        TwilioError::NoAnswer(reason) => SendError::Unknown { reason },
        TwilioError::Api {
            status,
            code,
            message,
            retry_after,
            ..
        } => match status {
            // Too many requests open: Twilio did not create the message.
            429 => SendError::Busy {
                reason: format!("429 {message}"),
                retry_after,
            },
            // Credentials or permissions: an operator can fix this, so keep the message.
            401 | 403 => {
                tracing::error!(
                    status,
                    code,
                    "Twilio refused our credentials; check TWILIO_* settings"
                );
                SendError::Retryable {
                    reason: format!("{status} {message}"),
                    retry_after: None,
                }
            }
            // A 5xx may come after Twilio accepted the message: treat as unknown.
            500..=599 => SendError::Unknown {
                reason: format!("{status} {message}"),
            },
            _ => SendError::Permanent { code, message },
        },
    }
}

#[async_trait::async_trait]
impl SmsProvider for TwilioProvider {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<ProviderMessage, SendError> {
        // Our id in the callback URL (Twilio signs the full URL): a callback for a
        // message whose answer we lost can still be matched to it.
        let callback = format!(
            "{}?mid={}{}",
            self.status_callback, msg.message_id, self.overrides
        );
        let create = CreateMessage {
            to: msg.to,
            from: msg.from,
            body: msg.body,
            media_urls: msg.media_urls,
            status_callback: Some(&callback),
            validity_period: msg
                .validity_left
                .map(|d| d.as_secs().clamp(1, 36_000) as u32),
        };
        self.client
            .create_message(&create)
            .await
            .map(message)
            .map_err(classify)
    }

    async fn fetch(&self, sid: &str) -> Result<Option<ProviderMessage>, SendError> {
        match self.client.fetch_message(sid).await {
            Ok(r) => Ok(Some(message(r))),
            Err(TwilioError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(match classify(e) {
                // A failed lookup never "refuses" anything: report it as retryable.
                SendError::Permanent { code, message } => SendError::Retryable {
                    reason: format!("{code:?} {message}"),
                    retry_after: None,
                },
                other => other,
            }),
        }
    }

    async fn find(
        &self,
        from: &str,
        to: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<ProviderMessage>, SendError> {
        // A few minutes' margin for the clocks of Twilio and of our replicas.
        let after = since - chrono::Duration::minutes(5);
        match self.client.list_messages(from, to, after, 20).await {
            Ok(list) => Ok(list.into_iter().map(message).collect()),
            Err(e) => Err(match classify(e) {
                SendError::Permanent { code, message } => SendError::Retryable {
                    reason: format!("{code:?} {message}"),
                    retry_after: None,
                },
                other => other,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn api(status: u16, code: Option<i64>) -> TwilioError {
        TwilioError::Api {
            status,
            code,
            message: "m".into(),
            more_info: None,
            retry_after: Some(Duration::from_secs(3)),
        }
    }

    #[test]
    fn classification() {
        assert!(matches!(
            classify(api(429, Some(20429))),
            SendError::Busy {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            classify(api(503, None)),
            SendError::Unknown { .. }
        ));
        assert!(matches!(
            classify(api(401, Some(20003))),
            SendError::Retryable { .. }
        ));
        assert_eq!(
            classify(api(400, Some(21211))),
            SendError::Permanent {
                code: Some(21211),
                message: "m".into()
            }
        );
        assert!(matches!(
            classify(TwilioError::Connect("refused".into())),
            SendError::Retryable { .. }
        ));
        assert!(matches!(
            classify(TwilioError::NoAnswer("timeout".into())),
            SendError::Unknown { .. }
        ));
    }
}
