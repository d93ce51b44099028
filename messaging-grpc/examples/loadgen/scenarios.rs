//! The scenarios, in the order they run, each pushing its row.

use std::{net::SocketAddr, path::Path};

use commpro_messaging_api::v1 as pb;
use hyper::{Method, StatusCode, body::Bytes};
use tonic::transport::Channel;

use crate::{
    Floor, Run, Target, bench_env,
    grpc::{self, Expect, GET_CONVERSATION, LIST_CONVERSATIONS, RawCaller, SEND_SMS},
    http::{HttpCaller, Pool, Prebuilt, Requests},
    mib,
    procs::{self, Server},
    setup::{self, Sender, Tokens},
};

const SEND: Target = Target {
    ratio: 0.30,
    p99_ms: 20.0,
};
const PAGE: Target = Target {
    ratio: 0.30,
    p99_ms: 5.0,
};
const REST_SEND: Target = Target {
    ratio: 0.10,
    p99_ms: 25.0,
};
const WEBHOOK: Target = Target {
    ratio: 0.20,
    p99_ms: 25.0,
};

/// A SendSms answer is a message with its id (field 1).
const SENT: Expect = Expect::Fields {
    field: 1,
    count: None,
};

/// The tonic echo and bare hyper floors, each server started, measured and stopped.
pub async fn floors(run: &mut Run, bin_dir: &Path, logs: &Path) -> anyhow::Result<()> {
    let server = procs::start_floor(bin_dir, "echo_floor", logs)?;
    let channels = grpc::channels(server.addr, run.args.channels.max(1)).await?;
    let callers = (0..run.conc)
        .map(|i| RawCaller::echo(channels[i % channels.len()].clone()))
        .collect();
    let m = run.measure("floor: tonic echo", callers).await;
    run.push("floor: tonic echo", None, None, m, mib(server.memory()));
    drop(server);

    let server = procs::start_floor(bin_dir, "hyper_floor", logs)?;
    // About a webhook's size, read by the server like one.
    let req = Prebuilt::new(Method::POST, server.addr, "/", Bytes::from(vec![b'x'; 300]));
    let mut callers = Vec::with_capacity(run.conc);
    for _ in 0..run.conc {
        let requests = Requests::Ring(vec![req.clone()], 0);
        callers.push(HttpCaller::new(server.addr, requests, StatusCode::OK).await?);
    }
    let m = run.measure("floor: hyper 200", callers).await;
    run.push("floor: hyper 200", None, None, m, mib(server.memory()));
    Ok(())
}

/// SendSms from one user, then from one user per caller.
pub async fn sends(
    run: &mut Run,
    channels: &[Channel],
    (one, many): &(Sender, Vec<Sender>),
    core: &Server,
) {
    let name = "SendSms, one user";
    if run.wants(name) {
        let callers = (0..run.conc)
            .map(|i| {
                let ch = channels[i % channels.len()].clone();
                RawCaller::service(ch, SEND_SMS, &one.token, &setup::sms_sends(one, i), SENT)
            })
            .collect();
        let m = run.measure(name, callers).await;
        run.push(name, Some(Floor::Tonic), Some(SEND), m, mib(core.memory()));
    }
    let name = format!("SendSms, {} users", many.len());
    if run.wants(&name) {
        let callers = (0..run.conc)
            .map(|i| {
                let (ch, s) = (channels[i % channels.len()].clone(), &many[i % many.len()]);
                RawCaller::service(ch, SEND_SMS, &s.token, &setup::sms_sends(s, i), SENT)
            })
            .collect();
        let m = run.measure(&name, callers).await;
        run.push(&name, Some(Floor::Tonic), Some(SEND), m, mib(core.memory()));
    }
}

/// First pages of 50 conversations and of 50 messages, over the readers.
pub async fn reads(
    run: &mut Run,
    channels: &[Channel],
    tokens: &Tokens,
    core: &Server,
) -> anyhow::Result<()> {
    let mut readers = Vec::new();
    for r in 0..bench_env::READERS {
        readers.push(setup::reader(&channels[0], tokens, r).await?);
    }
    let name = "ListConversations, page of 50";
    if run.wants(name) {
        let callers = (0..run.conc)
            .map(|i| {
                let (token, _) = &readers[i % readers.len()];
                let req = pb::ListConversationsRequest {
                    page_size: 50,
                    ..Default::default()
                };
                let ch = channels[i % channels.len()].clone();
                let expect = Expect::Fields {
                    field: 1,
                    count: Some(grpc::PAGE),
                };
                RawCaller::service(ch, LIST_CONVERSATIONS, token, &[req], expect)
            })
            .collect();
        let m = run.measure(name, callers).await;
        run.push(name, Some(Floor::Tonic), Some(PAGE), m, mib(core.memory()));
    }
    let name = "GetConversation, page of 50";
    if run.wants(name) {
        let callers = (0..run.conc)
            .map(|i| {
                let (token, contact) = &readers[i % readers.len()];
                let req = pb::GetConversationRequest {
                    contact_id: contact.clone(),
                    page_size: 50,
                    page_token: String::new(),
                };
                let ch = channels[i % channels.len()].clone();
                let expect = Expect::Fields {
                    field: 3,
                    count: Some(grpc::PAGE),
                };
                RawCaller::service(ch, GET_CONVERSATION, token, &[req], expect)
            })
            .collect();
        let m = run.measure(name, callers).await;
        run.push(name, Some(Floor::Tonic), Some(PAGE), m, mib(core.memory()));
    }
    Ok(())
}

/// The real gateway in front of the core.
pub async fn start_gateway(
    bin_dir: &Path,
    core: SocketAddr,
    logs: &Path,
) -> anyhow::Result<Server> {
    let addr = procs::free_addr()?;
    let vars: Vec<(String, String)> = [
        ("GATEWAY_HTTP_ADDR", addr.to_string()),
        ("MESSAGING_CORE_URL", format!("http://{core}")),
        ("GATEWAY_PUBLIC_URL", format!("http://{addr}")),
        ("TWILIO_ACCOUNT_SID", bench_env::ACCOUNT_SID.into()),
        ("TWILIO_AUTH_TOKEN", bench_env::AUTH_TOKEN.into()),
        ("JWT_HS256_SECRET", bench_env::JWT_SECRET.into()),
        // Every caller is 127.0.0.1: one per-source budget would measure the limiter.
        ("GATEWAY_RATE_LIMIT_PER_SEC", "1000000".into()),
        ("GATEWAY_METRICS_ADDR", "off".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let gateway = procs::Binary {
        name: "webhook-gateway",
        args: &[],
        addr,
        vars: &vars,
        prefix: &[],
    };
    procs::start_binary(bin_dir, gateway, logs).await
}

/// REST sends and signed inbound webhooks through the gateway.
pub async fn through_gateway(
    run: &mut Run,
    gw: &Server,
    many: &[Sender],
    core: &Server,
) -> anyhow::Result<()> {
    let rss = |core: &Server, gw: &Server| {
        format!("{} + gateway {}", mib(core.memory()), mib(gw.memory()))
    };
    let name = format!("REST send, {} users", many.len());
    if run.wants(&name) {
        let mut callers = Vec::with_capacity(run.conc);
        for i in 0..run.conc {
            let requests = Requests::Ring(setup::rest_sends(gw.addr, &many[i % many.len()], i), 0);
            callers.push(HttpCaller::new(gw.addr, requests, StatusCode::OK).await?);
        }
        let m = run.measure(&name, callers).await;
        run.push(&name, Some(Floor::Hyper), Some(REST_SEND), m, rss(core, gw));
    }
    let name = "signed inbound webhook → stored";
    if run.wants(name) {
        let n = run
            .args
            .webhook_pool
            .unwrap_or(15_000 * (run.args.secs + run.args.warmup).max(1) as usize);
        eprintln!("loadgen: pre-signing {n} webhooks …");
        let numbers: Vec<String> = many.iter().map(|s| s.number.clone()).collect();
        let pool = Pool::new(setup::webhooks(gw.addr, &numbers, n));
        let mut callers = Vec::with_capacity(run.conc);
        for _ in 0..run.conc {
            let requests = Requests::Pool(pool.clone());
            callers.push(HttpCaller::new(gw.addr, requests, StatusCode::OK).await?);
        }
        let m = run.measure(name, callers).await;
        eprintln!("loadgen: {} of {n} pre-signed webhooks sent", pool.used());
        run.push(name, Some(Floor::Hyper), Some(WEBHOOK), m, rss(core, gw));
    }
    Ok(())
}
