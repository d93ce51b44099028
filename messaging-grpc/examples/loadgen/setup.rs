//! Everything prepared before the clock runs: numbers, the readers' conversations,
//! tokens, pre-built requests and pre-signed webhooks.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, bail};
use commpro_messaging_api::v1::{
    self as pb, messaging_admin_client::MessagingAdminClient,
    messaging_service_client::MessagingServiceClient,
};
use hyper::{Method, body::Bytes, header};
use messaging_grpc::auth::{JwtIssuer, Role};
use tonic::{Request, transport::Channel};

use crate::{
    bench_env::{self, READER_CONTACTS, READERS},
    grpc::bearer,
    http::Prebuilt,
};

/// Mints the tokens of the run (valid long after it ends).
pub struct Tokens(JwtIssuer);

impl Tokens {
    pub fn hs256() -> Self {
        Self(JwtIssuer::hs256(
            bench_env::JWT_SECRET.as_bytes(),
            bench_env::ISSUER,
            bench_env::AUDIENCE,
        ))
    }

    pub fn user(&self, user: &str) -> anyhow::Result<String> {
        self.0
            .issue(user, &[], Duration::from_secs(24 * 3600))
            .map_err(anyhow::Error::msg)
    }

    pub fn admin(&self) -> anyhow::Result<String> {
        self.0
            .issue(
                "bench-admin",
                &[Role::Admin],
                Duration::from_secs(24 * 3600),
            )
            .map_err(anyhow::Error::msg)
    }
}

/// A sending user of the write scenarios.
pub struct Sender {
    pub number: String,
    pub token: String,
}

pub const ONE_USER_NUMBER: &str = "+15005550100";

pub fn sender_number(i: usize) -> String {
    format!("+1500555{:04}", 1000 + i)
}

pub async fn assign(
    channel: &Channel,
    admin: &str,
    number: &str,
    user: &str,
) -> anyhow::Result<()> {
    let mut c = MessagingAdminClient::new(channel.clone());
    let mut req = Request::new(pb::AssignNumberRequest {
        number: number.into(),
        user_id: user.into(),
    });
    req.metadata_mut().insert("authorization", bearer(admin));
    c.assign_number(req)
        .await
        .with_context(|| format!("assigning {number} to {user}"))?;
    Ok(())
}

/// The one-user sender and `n` users with a number each.
pub async fn senders(
    channel: &Channel,
    tokens: &Tokens,
    n: usize,
) -> anyhow::Result<(Sender, Vec<Sender>)> {
    let admin = tokens.admin()?;
    assign(channel, &admin, ONE_USER_NUMBER, "load-one").await?;
    let one = Sender {
        number: ONE_USER_NUMBER.into(),
        token: tokens.user("load-one")?,
    };
    let mut many = Vec::with_capacity(n);
    for i in 0..n {
        let (user, number) = (format!("load-user-{i}"), sender_number(i));
        assign(channel, &admin, &number, &user).await?;
        many.push(Sender {
            number,
            token: tokens.user(&user)?,
        });
    }
    Ok((one, many))
}

/// Gives each reader the data set's shape through SendSms (a fresh database).
pub async fn seed_readers(channel: &Channel, tokens: &Tokens) -> anyhow::Result<()> {
    let admin = tokens.admin()?;
    let mut tasks = Vec::new();
    for r in 0..READERS {
        let user = bench_env::reader_user(r);
        assign(channel, &admin, &bench_env::reader_number(r), &user).await?;
        let (channel, token) = (channel.clone(), bearer(&tokens.user(&user)?));
        tasks.push(tokio::spawn(async move {
            let mut c = MessagingServiceClient::new(channel);
            for contact in 0..READER_CONTACTS {
                let n = if contact == 0 {
                    bench_env::BIG_CONVERSATION
                } else {
                    1
                };
                for i in 0..n {
                    let mut req = Request::new(pb::SendSmsRequest {
                        from: bench_env::reader_number(r),
                        to: bench_env::reader_contact(r, contact),
                        body: format!("Seeded message {i} for the page reads"),
                        ..Default::default()
                    });
                    req.metadata_mut().insert("authorization", token.clone());
                    c.send_sms(req).await?;
                }
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for t in tasks {
        t.await?.context("seeding the readers")?;
    }
    Ok(())
}

/// A reader's token and the id of its big conversation (contact 0), checking that
/// both pages the read scenarios fetch are full.
pub async fn reader(
    channel: &Channel,
    tokens: &Tokens,
    r: usize,
) -> anyhow::Result<(String, String)> {
    let token = tokens.user(&bench_env::reader_user(r))?;
    let mut c = MessagingServiceClient::new(channel.clone());
    let mut req = Request::new(pb::ListConversationsRequest {
        page_size: 100,
        ..Default::default()
    });
    req.metadata_mut().insert("authorization", bearer(&token));
    let page = c.list_conversations(req).await?.into_inner();
    let big = bench_env::reader_contact(r, 0);
    let Some(conv) = page.conversations.iter().find(|c| c.contact_number == big) else {
        bail!("reader {r} has no data in this database: fill it with the `dataset` example first");
    };
    if page.conversations.len() < 50 {
        bail!("reader {r} has fewer than 50 conversations");
    }
    Ok((token, conv.contact_id.clone()))
}

/// Signed inbound webhooks, each with its own MessageSid, to the senders' numbers.
pub fn webhooks(gateway: SocketAddr, to: &[String], n: usize) -> Vec<Prebuilt> {
    let url = format!("http://{gateway}/webhook/sms");
    // A run id keeps MessageSids apart across runs on one database.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u32)
        .unwrap_or(0);
    (0..n)
        .map(|i| {
            let mut params: Vec<(String, String)> = [
                ("MessageSid", format!("SM{run:08x}{i:024x}")),
                ("AccountSid", bench_env::ACCOUNT_SID.into()),
                ("From", format!("+1417555{:04}", i % 1000)),
                ("To", to[i % to.len()].clone()),
                ("Body", format!("Inbound load message {i}: see you at 5")),
                ("NumMedia", "0".into()),
                ("SmsStatus", "received".into()),
                ("ApiVersion", "2010-04-01".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            params.sort();
            let signature = webhook_gateway::signature::compute(
                bench_env::AUTH_TOKEN.as_bytes(),
                &url,
                &params,
            );
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&params)
                .finish();
            Prebuilt::new(Method::POST, gateway, "/webhook/sms", Bytes::from(body))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(
                    header::HeaderName::from_static("x-twilio-signature"),
                    &signature,
                )
        })
        .collect()
}

/// REST sends of one user to 16 contacts.
pub fn rest_sends(gateway: SocketAddr, sender: &Sender, caller: usize) -> Vec<Prebuilt> {
    (0..16)
        .map(|k| {
            let body = serde_json::json!({
                "from": sender.number,
                "to": format!("+1418555{:04}", (caller * 16 + k) % 10_000),
                "body": format!("REST load message {caller}-{k}: your code is 123456"),
            });
            Prebuilt::new(
                Method::POST,
                gateway,
                "/api/messages/send",
                Bytes::from(body.to_string()),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, &format!("Bearer {}", sender.token))
        })
        .collect()
}

/// SendSms requests of one sender to 16 contacts.
pub fn sms_sends(sender: &Sender, caller: usize) -> Vec<pb::SendSmsRequest> {
    (0..16)
        .map(|k| pb::SendSmsRequest {
            from: sender.number.clone(),
            to: format!("+1416555{:04}", (caller * 16 + k) % 10_000),
            body: format!("Load message {caller}-{k}: your verification code is 123456"),
            ..Default::default()
        })
        .collect()
}
