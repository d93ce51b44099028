//! What Twilio would POST to the gateway, signed with the same auth token the gateway
//! checks: `messaging webhook inbound|status` for local runs and demos, and under
//! `messaging dev` the console provider's delivery receipts and the dev console
//! phone's replies (each through the real gateway over HTTP).

use std::net::SocketAddr;

use anyhow::Context;
use webhook_gateway::signature;

use crate::{Config, Mode, cli::dev_identity::dev_twilio_identity, provider::Receipt};

/// A webhook to simulate.
pub enum Simulated {
    Inbound {
        from: String,
        to: String,
        body: String,
        media: Vec<(String, String)>,
    },
    Status {
        sid: String,
        status: String,
        error_code: Option<i32>,
    },
}

/// The gateway's answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// Signs and posts webhooks as the local stack's Twilio account.
#[derive(Clone)]
pub struct LocalTwilio {
    client: reqwest::Client,
    account: String,
    auth_token: String,
    /// GATEWAY_PUBLIC_URL: what Twilio signs.
    public_url: String,
    /// Where the gateway listens: where the request goes.
    gateway: SocketAddr,
}

impl LocalTwilio {
    /// The dev identity (`dev_twilio_identity`) and the configured gateway address.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let (account, auth_token) = dev_twilio_identity(config)?;
        Ok(Self {
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .context("building the HTTP client")?,
            account,
            auth_token,
            public_url: config.gateway_public_url.trim_end_matches('/').to_owned(),
            gateway: config.gateway_addr,
        })
    }

    /// Posts to the gateway listening at `addr` (its bound address, when port 0).
    pub fn at(mut self, addr: SocketAddr) -> Self {
        self.gateway = addr;
        self
    }

    /// Posts `what`.
    pub async fn post(&self, what: Simulated) -> anyhow::Result<Answer> {
        let (path, form) = match what {
            Simulated::Inbound {
                from,
                to,
                body,
                media,
            } => (
                "/webhook/sms".to_owned(),
                self.inbound_form(from, to, body, media),
            ),
            Simulated::Status {
                sid,
                status,
                error_code,
            } => {
                let code = error_code.map(i64::from);
                let form = self.status_form(&sid, None, &status, code);
                ("/webhook/status".to_owned(), form)
            }
        };
        self.send(&path, form).await
    }

    /// Posts a status callback for `receipt` to the StatusCallback URL Twilio would
    /// call (`/webhook/status?mid=<our id>`), as the Twilio provider sets it.
    pub async fn post_receipt(&self, receipt: Receipt<'_>) -> anyhow::Result<Answer> {
        let path = format!("/webhook/status?mid={}", receipt.message_id);
        let parties = Some((receipt.from, receipt.to));
        let form = self.status_form(receipt.sid, parties, receipt.status, receipt.error_code);
        self.send(&path, form).await
    }

    /// `POST /webhook/sms` as Twilio sends it.
    fn inbound_form(
        &self,
        from: String,
        to: String,
        body: String,
        media: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
        let mut form = vec![
            ("MessageSid".to_owned(), sid.clone()),
            ("SmsMessageSid".to_owned(), sid.clone()),
            ("SmsSid".to_owned(), sid),
            ("AccountSid".to_owned(), self.account.clone()),
            ("From".to_owned(), from),
            ("To".to_owned(), to),
            ("Body".to_owned(), body),
            ("NumMedia".to_owned(), media.len().to_string()),
            ("NumSegments".to_owned(), "1".to_owned()),
            ("SmsStatus".to_owned(), "received".to_owned()),
            ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
        ];
        for (i, (url, content_type)) in media.into_iter().enumerate() {
            form.push((format!("MediaUrl{i}"), url));
            form.push((format!("MediaContentType{i}"), content_type));
        }
        form
    }

    /// `POST /webhook/status` as Twilio sends it.
    fn status_form(
        &self,
        sid: &str,
        parties: Option<(&str, &str)>,
        status: &str,
        error_code: Option<i64>,
    ) -> Vec<(String, String)> {
        let mut form = vec![
            ("MessageSid".to_owned(), sid.to_owned()),
            ("SmsSid".to_owned(), sid.to_owned()),
            ("AccountSid".to_owned(), self.account.clone()),
            ("MessageStatus".to_owned(), status.to_owned()),
            ("SmsStatus".to_owned(), status.to_owned()),
            ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
        ];
        if let Some((from, to)) = parties {
            form.push(("From".to_owned(), from.to_owned()));
            form.push(("To".to_owned(), to.to_owned()));
        }
        if let Some(code) = error_code {
            form.push(("ErrorCode".to_owned(), code.to_string()));
        }
        form
    }

    /// Signs `form` for `public_url + path` and posts it to the gateway at `path`.
    async fn send(&self, path: &str, mut form: Vec<(String, String)>) -> anyhow::Result<Answer> {
        form.sort();
        let signed_url = format!("{}{path}", self.public_url);
        let sig = signature::compute(self.auth_token.as_bytes(), &signed_url, &form);
        let target = format!("http://{}{path}", self.gateway);
        let resp = self
            .client
            .post(&target)
            .header("X-Twilio-Signature", sig)
            .form(&form)
            .send()
            .await
            .with_context(|| {
                format!("posting to the gateway at {target} (is `messaging dev` running?)")
            })?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Answer {
            status,
            content_type,
            body: resp.text().await.unwrap_or_default(),
        })
    }
}

/// Builds, signs and posts the webhook to the local gateway; returns the HTTP status
/// and body the gateway answered.
pub async fn post(what: Simulated) -> anyhow::Result<(u16, String)> {
    let config = Config::from_env(Mode::Dev)?;
    let answer = LocalTwilio::new(&config)?.post(what).await?;
    Ok((answer.status, answer.body))
}
