//! What `messaging dev` does for the dev console (`webhook_gateway::DevBackend`): dev
//! tokens from the dev secret, a dev number for a user who has none, the console
//! provider's phones, and replies signed as Twilio's webhooks — posted over HTTP to
//! the gateway of the same process. The console provider's delivery receipts take
//! Twilio's road too ([`WebhookReceipts`]): a signed `/webhook/status` callback.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use chrono::Utc;
use secrecy::ExposeSecret;
use webhook_gateway::{
    DevBackend, DevError, DevToken, PhoneMessage, PhoneReply, PhoneView, WebhookAnswer,
};

use super::simulate::{LocalTwilio, Simulated};
use crate::{
    Config,
    admin::Admin,
    auth::JwtIssuer,
    config::JwtKeyConfig,
    error::Error,
    phone::parse_e164,
    provider::{PhoneLog, Receipt, StatusSink},
};

/// How long a console token is valid.
const TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);
/// Who the audit log names for numbers the console assigns.
const ACTOR: &str = "dev-console";
/// The dev numbers handed out, in order: 555-01xx numbers (reserved for fiction) in
/// area code 628, so they never collide with the contacts' +1415555 01xx examples.
const DEV_NUMBERS: std::ops::Range<u32> = 100..200;

/// The console's backend.
pub struct Console {
    issuer: Option<JwtIssuer>,
    admin: Admin,
    phones: PhoneLog,
    twilio: LocalTwilio,
}

impl Console {
    /// `gateway`: where this process's gateway listens.
    pub fn new(
        config: &Config,
        admin: Admin,
        phones: PhoneLog,
        gateway: SocketAddr,
    ) -> anyhow::Result<Self> {
        let issuer = match &config.jwt_key {
            JwtKeyConfig::Hs256(secret) => Some(JwtIssuer::hs256(
                secret.expose_secret(),
                &config.jwt_issuer,
                &config.jwt_audience,
            )),
            JwtKeyConfig::PublicKeyFile { .. } => None,
        };
        Ok(Self {
            issuer,
            admin,
            phones,
            twilio: LocalTwilio::new(config)?.at(gateway),
        })
    }

    /// The user's numbers, sorted.
    async fn numbers(&self, user_id: &str) -> Result<Vec<String>, DevError> {
        let page = self
            .admin
            .list_numbers(user_id, 100, "")
            .await
            .map_err(dev_error)?;
        let mut numbers: Vec<String> = page.numbers.into_iter().map(|n| n.e164).collect();
        numbers.sort();
        Ok(numbers)
    }

    /// Assigns the first free dev number to `user_id`.
    async fn assign_dev_number(&self, user_id: &str) -> Result<(), DevError> {
        for n in DEV_NUMBERS {
            let number = format!("+1628555{n:04}");
            match self.admin.assign_number(ACTOR, &number, user_id).await {
                Ok(_) => return Ok(()),
                // Someone else's: try the next one.
                Err(Error::FailedPrecondition(why)) if why.starts_with("number:") => {}
                Err(e) => return Err(dev_error(e)),
            }
        }
        Err(DevError::Unavailable(
            "every dev number (+16285550100 to +16285550199) is taken; assign one with `messaging numbers assign`".into(),
        ))
    }
}

/// A core error, for the console: bad input names its field, the rest says what failed.
fn dev_error(e: Error) -> DevError {
    match e {
        Error::InvalidArgument { field, reason } => DevError::Invalid {
            field: match field {
                "user_id" => "userId",
                other => other,
            },
            reason,
        },
        Error::FailedPrecondition(why) | Error::PermissionDenied(why) => DevError::Unsupported(why),
        other => DevError::Unavailable(other.to_string()),
    }
}

fn phone_number(value: &str) -> Result<String, DevError> {
    parse_e164("number", value).map_err(dev_error)
}

#[async_trait::async_trait]
impl DevBackend for Console {
    async fn token(&self, user_id: &str, assign_number: bool) -> Result<DevToken, DevError> {
        let Some(issuer) = &self.issuer else {
            return Err(DevError::Unsupported(
                "JWT_PUBLIC_KEY_FILE is set: tokens come from your identity provider, not the dev secret".into(),
            ));
        };
        if user_id.chars().count() > 128 || user_id.chars().any(char::is_control) {
            return Err(DevError::Invalid {
                field: "userId",
                reason: "must be 1-128 printable characters".into(),
            });
        }
        let mut numbers = self.numbers(user_id).await?;
        if assign_number && numbers.is_empty() {
            self.assign_dev_number(user_id).await?;
            numbers = self.numbers(user_id).await?;
        }
        let token = issuer
            .issue(user_id, &[], TOKEN_TTL)
            .map_err(|e| DevError::Unavailable(format!("signing the token: {e}")))?;
        let ttl = chrono::Duration::from_std(TOKEN_TTL).unwrap_or_default();
        Ok(DevToken {
            token,
            user_id: user_id.to_owned(),
            numbers,
            expires_at: Utc::now() + ttl,
        })
    }

    async fn phone(&self, number: &str) -> Result<PhoneView, DevError> {
        let (messages, armed) = self.phones.view(&phone_number(number)?);
        Ok(PhoneView {
            messages: messages
                .into_iter()
                .map(|m| PhoneMessage {
                    from: m.from,
                    body: m.body,
                    media_urls: m.media_urls,
                    status: m.status,
                    error_code: m.error_code,
                    at: m.at,
                })
                .collect(),
            next_delivery_error_code: armed,
        })
    }

    async fn reply(&self, reply: PhoneReply) -> Result<WebhookAnswer, DevError> {
        let answer = self
            .twilio
            .post(Simulated::Inbound {
                from: reply.from,
                to: reply.to,
                body: reply.body,
                media: reply.media,
            })
            .await
            .map_err(|e| DevError::Unavailable(format!("{e:#}")))?;
        Ok(WebhookAnswer {
            status: answer.status,
            content_type: answer.content_type,
            body: answer.body,
        })
    }

    async fn fail_next_delivery(&self, number: &str, error_code: u32) -> Result<(), DevError> {
        self.phones.fail_next(&phone_number(number)?, error_code);
        Ok(())
    }
}

/// The console provider's receipts as Twilio's status callbacks, signed and posted to
/// the gateway's `/webhook/status`: the road a real delivery report takes.
pub struct WebhookReceipts {
    twilio: LocalTwilio,
}

impl WebhookReceipts {
    pub fn new(config: &Config, gateway: SocketAddr) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            twilio: LocalTwilio::new(config)?.at(gateway),
        }))
    }
}

#[async_trait::async_trait]
impl StatusSink for WebhookReceipts {
    async fn report(&self, receipt: Receipt<'_>) {
        match self.twilio.post_receipt(receipt).await {
            Ok(answer) if answer.status == 200 => {}
            Ok(answer) => tracing::warn!(
                status = answer.status,
                "the gateway refused a console delivery receipt"
            ),
            Err(e) => tracing::warn!(error = %e, "posting a console delivery receipt failed"),
        }
    }
}
