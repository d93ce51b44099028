//! HTTP calls to `/2010-04-01/Accounts/{AccountSid}/Messages[.json|/{Sid}.json]`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{StatusCode, header::RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::{MessageList, MessageResource, TwilioError};

/// Credentials: the Account SID + Auth Token, or an API key SID + secret (the account
/// SID still names the account in the path).
#[derive(Clone, Debug)]
pub struct TwilioAuth {
    pub account_sid: String,
    pub username: String,
    pub password: SecretString,
}

/// `POST Messages.json` parameters.
#[derive(Clone, Debug, Default)]
pub struct CreateMessage<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub body: &'a str,
    pub media_urls: &'a [String],
    pub status_callback: Option<&'a str>,
    /// Seconds Twilio may keep it queued (1–36000).
    pub validity_period: Option<u32>,
}

/// A Twilio REST client. Cheap to clone; connections are pooled and reused.
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    base: String,
    auth: TwilioAuth,
}

impl TwilioClient {
    /// `base` is TWILIO_API_BASE (`https://api.twilio.com` in production).
    pub fn new(base: &str, auth: TwilioAuth, timeout: Duration) -> Result<Self, TwilioError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("commpro-messaging/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TwilioError::Connect(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth,
        })
    }

    fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.base, self.auth.account_sid
        )
    }

    /// Creates (sends) a message. Twilio has no idempotency key here: a `NoAnswer`
    /// error may still have sent it.
    pub async fn create_message(
        &self,
        m: &CreateMessage<'_>,
    ) -> Result<MessageResource, TwilioError> {
        let mut form: Vec<(&str, String)> = vec![
            ("To", m.to.to_owned()),
            ("From", m.from.to_owned()),
            ("Body", m.body.to_owned()),
        ];
        form.extend(m.media_urls.iter().map(|u| ("MediaUrl", u.clone())));
        if let Some(cb) = m.status_callback {
            form.push(("StatusCallback", cb.to_owned()));
        }
        if let Some(v) = m.validity_period {
            form.push(("ValidityPeriod", v.clamp(1, 36_000).to_string()));
        }
        let req = self.authed(self.http.post(self.messages_url())).form(&form);
        self.execute(req, StatusCode::CREATED).await
    }

    /// Fetches one message by SID.
    pub async fn fetch_message(&self, sid: &str) -> Result<MessageResource, TwilioError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages/{sid}.json",
            self.base, self.auth.account_sid
        );
        self.execute(self.authed(self.http.get(url)), StatusCode::OK)
            .await
    }

    /// Messages from `from` to `to` created at or after `created_after`.
    ///
    /// Deliberately no `DateSent` filter: Twilio filters that on `date_sent`, which is
    /// null while a message waits in a sender's queue (up to hours), so a message it
    /// accepted would be missing and we would send it twice. And no early stop: the
    /// list is ordered by `date_sent` (where unsent messages sort is not documented),
    /// so an old message can come before the one we look for. Reads the pair's pages,
    /// at most `max_pages` of 50, and keeps what was created after `created_after`.
    pub async fn list_messages(
        &self,
        from: &str,
        to: &str,
        created_after: DateTime<Utc>,
        max_pages: usize,
    ) -> Result<Vec<MessageResource>, TwilioError> {
        let query = [
            ("From", from.to_owned()),
            ("To", to.to_owned()),
            ("PageSize", "50".to_owned()),
        ];
        let mut page: MessageList = self
            .execute(
                self.authed(self.http.get(self.messages_url()))
                    .query(&query),
                StatusCode::OK,
            )
            .await?;
        let mut out = Vec::new();
        for pages in 1.. {
            out.extend(
                std::mem::take(&mut page.messages)
                    .into_iter()
                    .filter(|m| m.created_at().is_none_or(|t| t >= created_after)),
            );
            let next = match page.next_page_uri.take() {
                Some(next) if pages < max_pages => next,
                _ => break,
            };
            page = self
                .execute(
                    self.authed(self.http.get(format!("{}{next}", self.base))),
                    StatusCode::OK,
                )
                .await?;
        }
        Ok(out)
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.basic_auth(
            &self.auth.username,
            Some(self.auth.password.expose_secret()),
        )
    }

    async fn execute<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        expected: StatusCode,
    ) -> Result<T, TwilioError> {
        let resp = req.send().await.map_err(TwilioError::from_reqwest)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp
            .bytes()
            .await
            .map_err(|e| TwilioError::NoAnswer(e.to_string()))?;
        if status != expected && !(status.is_success() && expected.is_success()) {
            return Err(TwilioError::from_body(status.as_u16(), &body, retry_after));
        }
        serde_json::from_slice(&body)
            .map_err(|e| TwilioError::NoAnswer(format!("unreadable {status} answer: {e}")))
    }
}
