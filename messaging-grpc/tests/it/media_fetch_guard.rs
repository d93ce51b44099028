//! Inbound media downloads: every allowed name is resolved through the internal-address
//! filter (an exact entry too), and Twilio's Basic credentials go to Twilio's hosts
//! only (here the fake's host, TWILIO_API_BASE), never to another allowed host.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use commpro_messaging_api::v1::MediaState;
use messaging_grpc::ingest::{Inbound, InboundSms};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use twilio_fake::FakeTwilio;

use crate::{helpers::*, media::jpeg};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";

/// A media host on `ip` that records each request's head and answers with `body`.
async fn media_host(ip: &str, body: Vec<u8>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (log, body) = (log.clone(), body.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).to_lowercase());
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.write_all(&body).await;
            });
        }
    });
    (addr, seen)
}

/// Records an inbound MMS with `url` and waits for its copy to end; its state.
async fn copy_state(server: &TestServer, sid: &str, url: String) -> i32 {
    let stored = server
        .ingest
        .record_inbound(InboundSms {
            message_sid: sid.into(),
            account_sid: twilio_fake::ACCOUNT_SID.into(),
            from: BOB.into(),
            to: OWN.into(),
            body: "a photo".into(),
            media: vec![(url, "image/jpeg".into())],
        })
        .await
        .unwrap();
    let Inbound::Stored(view) = stored else {
        panic!("stored")
    };
    let mut alice = server.user("alice").await;
    let mut state = MediaState::Pending as i32;
    for _ in 0..400 {
        let page = alice.get(&view.row.contact_id, 10, "").await.unwrap();
        let m = page.messages.iter().find(|m| m.id == view.row.id).unwrap();
        state = m.media[0].state;
        if state != MediaState::Pending as i32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    state
}

async fn server_allowing(fake: &FakeTwilio, hosts: &str) -> TestServer {
    let mut vars = twilio_vars(fake);
    vars.insert("MEDIA_FETCH_ALLOWED_HOSTS", hosts.into());
    vars.insert("MEDIA_FETCH_MAX_ATTEMPTS", "1".into());
    let server = TestServer::start_with(&Backend::Sqlite, vars).await;
    server.assign(OWN, "alice").await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_to_twilio_hosts_only() {
    let fake = FakeTwilio::start().await.unwrap();
    // The fake (TWILIO_API_BASE) is on 127.0.0.1; another allowed host on 127.0.0.2.
    let (other, seen) = media_host("127.0.0.2", jpeg(2048)).await;
    let server = server_allowing(&fake, "127.0.0.1,127.0.0.2").await;

    let state = copy_state(
        &server,
        "SM00000000000000000000000000000f01",
        format!("http://{other}/x.jpg"),
    )
    .await;
    assert_eq!(
        state,
        MediaState::Ready as i32,
        "an allowed host still serves media"
    );
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        !heads[0].contains("authorization:"),
        "Twilio's credentials went to a host that is not Twilio's: {}",
        heads[0]
    );

    // Twilio's own host still gets them (its media URLs need them).
    let url = fake.host_media(jpeg(2048), "image/jpeg");
    let state = copy_state(&server, "SM00000000000000000000000000000f02", url).await;
    assert_eq!(state, MediaState::Ready as i32);
    assert!(
        fake.requests()
            .iter()
            .filter(|r| r.path.contains("/Media/"))
            .all(|r| r.authorized)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exact_name_resolving_to_an_internal_address_is_refused() {
    let fake = FakeTwilio::start().await.unwrap();
    let (addr, seen) = media_host("127.0.0.1", jpeg(2048)).await;
    // `localhost` allowed by exact name resolves to loopback: as internal as any.
    let server = server_allowing(&fake, "localhost").await;
    let url = format!("http://localhost:{}/x.jpg", addr.port());
    let state = copy_state(&server, "SM00000000000000000000000000000f03", url).await;
    assert_eq!(
        state,
        MediaState::Failed as i32,
        "an internal address was reached by name"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the internal host got a request"
    );
    server.stop().await;
}
