//! The webhook gateway end to end: signed HTTP posts → gateway → MessagingIngest on
//! the real core → what GetConversation shows.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use commpro_messaging_api::v1::MessageStatus;
use messaging_grpc::provider::{Outgoing, ProviderMessage, SendError, SmsProvider};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use twilio_fake::FakeTwilio;
use webhook_gateway::{GatewayConfig, signature};

use crate::{backend_tests, helpers::*};

/// HTTP limits: methods and paths, the per-source rate limit (never for a signed
/// webhook), slow clients cut off.
mod limits;
/// Signed webhooks into the real core: inbound, duplicates, forgeries, unowned numbers,
/// STOP/START, status callbacks in any order, and a core that is down.
mod webhooks;

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";
const PUBLIC_URL: &str = "https://hooks.commpro.example";
const ACCOUNT: &str = twilio_fake::ACCOUNT_SID;
const TOKEN: &str = twilio_fake::AUTH_TOKEN;

pub(crate) struct Gateway {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    pub http: reqwest::Client,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn gateway(core: &str, extra: &[(&str, &str)]) -> Gateway {
    gateway_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), core, extra).await
}

/// A gateway on an already bound listener (so the core can be told its URL first).
pub(crate) async fn gateway_on(
    listener: TcpListener,
    core: &str,
    extra: &[(&str, &str)],
) -> Gateway {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("MESSAGING_CORE_URL".into(), core.to_owned()),
        ("GATEWAY_PUBLIC_URL".into(), PUBLIC_URL.into()),
        ("TWILIO_ACCOUNT_SID".into(), ACCOUNT.into()),
        ("TWILIO_AUTH_TOKEN".into(), TOKEN.into()),
        ("JWT_HS256_SECRET".into(), SECRET.into()),
        ("MEDIA_URL_SECRET".into(), MEDIA_SECRET.into()),
    ]);
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = GatewayConfig::from_vars(&|k| vars.get(k).cloned()).unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(webhook_gateway::serve(config, listener, shutdown.clone()));
    Gateway {
        addr,
        shutdown,
        http: reqwest::Client::new(),
    }
}

pub(crate) fn inbound_form(sid: &str, from: &str, to: &str, body: &str) -> Vec<(String, String)> {
    [
        ("MessageSid", sid),
        ("SmsMessageSid", sid),
        ("AccountSid", ACCOUNT),
        ("From", from),
        ("To", to),
        ("Body", body),
        ("NumMedia", "0"),
        ("ApiVersion", "2010-04-01"),
        ("ToCountry", "US"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub(crate) fn status_form(
    sid: &str,
    status: &str,
    error_code: Option<&str>,
) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = [
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT),
        ("MessageStatus", status),
        ("SmsStatus", status),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(code) = error_code {
        f.push(("ErrorCode".into(), code.into()));
    }
    f
}

impl Gateway {
    /// POSTs `form` signed as Twilio would for PUBLIC_URL + `path`.
    pub async fn post(&self, path: &str, form: &[(String, String)]) -> (u16, String, String) {
        let sig = signature::compute(TOKEN.as_bytes(), &format!("{PUBLIC_URL}{path}"), form);
        self.post_raw(path, form, Some(&sig)).await
    }

    async fn post_raw(
        &self,
        path: &str,
        form: &[(String, String)],
        sig: Option<&str>,
    ) -> (u16, String, String) {
        let mut req = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .form(form);
        if let Some(sig) = sig {
            req = req.header("X-Twilio-Signature", sig);
        }
        let resp = req.send().await.unwrap();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (resp.status().as_u16(), ct, resp.text().await.unwrap())
    }
}

/// A form as sent: name/value pairs.
type Form = [(String, String)];

const TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;
