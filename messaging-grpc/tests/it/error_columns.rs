//! Error columns hold no number and no URL in clear: Twilio's refusal text (which
//! echoes the number), a retry's reason, an inbound media download's failure (whose
//! reqwest text carries the full URL), an unroutable message's sender and a parked
//! status callback's text are masked before they are stored. Checked on the bytes of
//! the SQLite files (database and WAL), where a sealed number must never show.

use std::time::Duration;

use commpro_messaging_api::v1::{self as pb, MessageStatus};
use messaging_grpc::ingest::{Inbound, InboundSms};
use twilio_fake::{FakeTwilio, Scripted};

use crate::helpers::*;

const OWN: &str = "+15005550006";
/// Twilio refuses it as invalid (21211), naming it in its message.
const INVALID: &str = "+15005550001";
/// Twilio's 429s name it (a made-up text, as any provider text may).
const RATE_LIMITED: &str = "+14155550123";
/// Sends an MMS whose media cannot be downloaded.
const SENDER: &str = "+14155550144";
/// Writes to a number nobody owns.
const STRANGER: &str = "+14155550177";
const NOBODYS: &str = "+15005550099";
/// Named by a parked status callback's error text.
const PARKED: &str = "+14155550166";
const PRIVATE_PATH: &str = "PRIVATE-media-path-7c1d";

fn digits(n: &str) -> &str {
    n.trim_start_matches('+')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_number_or_url_in_clear_in_error_columns() {
    let fake = FakeTwilio::start().await.unwrap();
    let mut vars = twilio_vars(&fake);
    vars.insert("MEDIA_FETCH_ALLOWED_HOSTS", "127.0.0.1".into());
    vars.insert("MEDIA_FETCH_MAX_ATTEMPTS", "1".into());
    vars.insert("OUTBOX_MAX_ATTEMPTS", "2".into());
    let mut server = TestServer::start_with(&Backend::Sqlite, vars).await;
    server.assign(OWN, "alice").await;
    let mut alice = server.user("alice").await;

    // messages.error_message: Twilio's 21211 text names the number.
    let invalid = alice.send(OWN, INVALID, "hello").await.unwrap();
    alice.wait_status(&invalid, MessageStatus::Failed, 10).await;
    let failed = alice.message(&invalid.contact_id, &invalid.id).await;
    assert_eq!(failed.error_code, 21211);
    assert!(
        failed.error_message.contains("+*******0001"),
        "the number is masked, the text kept: {}",
        failed.error_message
    );

    // outbox.last_error (and then messages.error_message): retried 429s naming the number.
    let text = format!("Too many messages to {RATE_LIMITED} right now");
    fake.script((0..4).map(|_| Scripted::Error {
        status: 429,
        code: 20429,
        message: text.clone(),
    }));
    let limited = alice.send(OWN, RATE_LIMITED, "hello again").await.unwrap();
    let mut settled = false;
    for _ in 0..800 {
        let status = alice.message(&limited.contact_id, &limited.id).await.status;
        if status == MessageStatus::Failed as i32 || status == MessageStatus::Sent as i32 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(settled, "the rate-limited send settled");

    // media.last_error: the download fails to connect; reqwest's text has the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!(
        "http://127.0.0.1:{port}/{PRIVATE_PATH}/{}/x.jpg",
        digits(SENDER)
    );
    let stored = server
        .ingest
        .record_inbound(InboundSms {
            message_sid: "SM00000000000000000000000000000e01".into(),
            account_sid: twilio_fake::ACCOUNT_SID.into(),
            from: SENDER.into(),
            to: OWN.into(),
            body: "a photo".into(),
            media: vec![(url, "image/jpeg".into())],
        })
        .await
        .unwrap();
    let Inbound::Stored(view) = stored else {
        panic!("stored")
    };
    let mut failed_copy = false;
    for _ in 0..800 {
        let page = alice.get(&view.row.contact_id, 10, "").await.unwrap();
        let m = page.messages.iter().find(|m| m.id == view.row.id).unwrap();
        if m.media
            .iter()
            .all(|m| m.state == pb::MediaState::Failed as i32)
        {
            failed_copy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(failed_copy, "the download failed");

    // unroutable_inbound: the sender of a message to a number nobody owns.
    let unroutable = server
        .ingest
        .record_inbound(InboundSms {
            message_sid: "SM00000000000000000000000000000e02".into(),
            account_sid: twilio_fake::ACCOUNT_SID.into(),
            from: STRANGER.into(),
            to: NOBODYS.into(),
            body: "anyone there?".into(),
            media: Vec::new(),
        })
        .await
        .unwrap();
    assert!(matches!(unroutable, Inbound::Unroutable));
    let listed = server
        .admin()
        .await
        .call(
            |c, r| Box::pin(c.list_unroutable(r)),
            pb::ListUnroutableRequest { limit: 10 },
        )
        .await
        .unwrap();
    let row = &listed.messages[0];
    assert!(
        row.from.ends_with("0177") && !row.from.contains(digits(STRANGER)),
        "{row:?}"
    );
    assert_eq!(row.to, NOBODYS, "our own number stays usable for routing");

    // parked_statuses: a callback for a SID not written yet, whose text names a number.
    let gateway = server.gateway_token();
    let mut ingest =
        pb::messaging_ingest_client::MessagingIngestClient::new(server.channel().await);
    ingest
        .record_status(authed(
            pb::RecordStatusRequest {
                message_sid: "SM00000000000000000000000000000e03".into(),
                status: "undelivered".into(),
                error_code: 30003,
                error_message: format!("Unreachable destination handset {PARKED}"),
                ..Default::default()
            },
            &gateway,
        ))
        .await
        .unwrap();

    // Stopped, its folder kept: every write is in the files now.
    server.halt().await;
    let dir = server.dir.path().to_owned();
    let secrets = [
        ("Twilio's 21211 number", digits(INVALID)),
        ("a 429 text's number", digits(RATE_LIMITED)),
        ("a media URL's number", digits(SENDER)),
        ("a media URL's path", PRIVATE_PATH),
        ("an unroutable sender", digits(STRANGER)),
        ("a parked callback's number", digits(PARKED)),
    ];
    let mut scanned = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("m.db") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        scanned += 1;
        for (what, secret) in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{what} ({secret}) is in clear in {name}"
            );
        }
    }
    assert!(scanned >= 1, "the database file was scanned");
}
