//! `messaging webhook inbound|status`: what Twilio would POST to the gateway, signed
//! with the same auth token the gateway checks, for local runs and demos.

use anyhow::Context;
use webhook_gateway::signature;

use crate::{Config, Mode, cli::run::dev_twilio_identity};

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

/// Builds, signs and posts the webhook to the local gateway; returns the HTTP status
/// and body the gateway answered.
pub async fn post(what: Simulated) -> anyhow::Result<(u16, String)> {
    let config = Config::from_env(Mode::Dev)?;
    let (account, token) = dev_twilio_identity(&config)?;
    let (path, mut form) = match what {
        Simulated::Inbound {
            from,
            to,
            body,
            media,
        } => {
            let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
            let mut form = vec![
                ("MessageSid".to_owned(), sid.clone()),
                ("SmsMessageSid".to_owned(), sid.clone()),
                ("SmsSid".to_owned(), sid),
                ("AccountSid".to_owned(), account),
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
            ("/webhook/sms", form)
        }
        Simulated::Status {
            sid,
            status,
            error_code,
        } => {
            let mut form = vec![
                ("MessageSid".to_owned(), sid.clone()),
                ("SmsSid".to_owned(), sid),
                ("AccountSid".to_owned(), account),
                ("MessageStatus".to_owned(), status.clone()),
                ("SmsStatus".to_owned(), status),
                ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
            ];
            if let Some(code) = error_code {
                form.push(("ErrorCode".to_owned(), code.to_string()));
            }
            ("/webhook/status", form)
        }
    };
    form.sort();
    let signed_url = format!("{}{path}", config.gateway_public_url.trim_end_matches('/'));
    let sig = signature::compute(token.as_bytes(), &signed_url, &form);
    let target = format!("http://{}{path}", config.gateway_addr);
    let resp = reqwest::Client::new()
        .post(&target)
        .header("X-Twilio-Signature", sig)
        .form(&form)
        .send()
        .await
        .with_context(|| {
            format!("posting to the gateway at {target} (is `messaging dev` running?)")
        })?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}
