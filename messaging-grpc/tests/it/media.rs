//! MMS media end to end: upload, SendMms through the fake Twilio, the gateway's signed
//! media URLs, inbound media copied from a Twilio-like host, and every refusal.

use std::time::Duration;

use commpro_messaging_api::v1::{
    self as pb, MediaState, MessageStatus, upload_media_request::Frame,
};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tonic::Code;
use twilio_fake::FakeTwilio;

use crate::{
    backend_tests,
    gateway::{Gateway, gateway_on, inbound_form},
    helpers::*,
};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";

/// A PNG (by its signature) of `len` bytes with varied content.
pub(crate) fn png(len: usize, seed: u8) -> Vec<u8> {
    let mut b = vec![
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    b.extend((0..len.saturating_sub(16)).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    b
}

pub(crate) fn jpeg(len: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0];
    b.extend((0..len.saturating_sub(11)).map(|i| (i % 251) as u8));
    b
}

pub(crate) fn frames(metadata: Option<(&str, &str)>, bytes: &[u8]) -> Vec<pb::UploadMediaRequest> {
    let mut out = Vec::new();
    if let Some((ct, name)) = metadata {
        out.push(pb::UploadMediaRequest {
            frame: Some(Frame::Metadata(pb::UploadMediaMetadata {
                content_type: ct.into(),
                filename: name.into(),
            })),
        });
    }
    out.extend(bytes.chunks(64 * 1024).map(|c| pb::UploadMediaRequest {
        frame: Some(Frame::Chunk(c.to_vec())),
    }));
    out
}

pub(crate) async fn upload(
    server: &TestServer,
    user: &str,
    frames: Vec<pb::UploadMediaRequest>,
) -> Result<pb::Media, tonic::Status> {
    let mut c = pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    Ok(
        c.upload_media(authed(tokio_stream::iter(frames), &server.token(user)))
            .await?
            .into_inner(),
    )
}

pub(crate) async fn get_media(
    server: &TestServer,
    user: &str,
    id: &str,
) -> Result<(String, Vec<u8>), tonic::Status> {
    let mut c = pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    let mut s = c
        .get_media(authed(
            pb::GetMediaRequest {
                media_id: id.into(),
            },
            &server.token(user),
        ))
        .await?
        .into_inner();
    let (mut ct, mut bytes) = (String::new(), Vec::new());
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        if ct.is_empty() {
            ct = chunk.content_type;
        }
        bytes.extend(chunk.data);
    }
    Ok((ct, bytes))
}

pub(crate) async fn send_mms(
    server: &TestServer,
    user: &str,
    req: pb::SendMmsRequest,
) -> Result<pb::Message, tonic::Status> {
    let mut c = pb::messaging_service_client::MessagingServiceClient::new(server.channel().await);
    Ok(c.send_mms(authed(req, &server.token(user)))
        .await?
        .into_inner())
}

pub(crate) fn mms(ids: &[&str], urls: &[&str]) -> pb::SendMmsRequest {
    pb::SendMmsRequest {
        from: OWN.into(),
        to: BOB.into(),
        body: "look at this".into(),
        media_ids: ids.iter().map(|s| s.to_string()).collect(),
        media_urls: urls.iter().map(|s| s.to_string()).collect(),
        idempotency_key: String::new(),
        send_at: None,
    }
}

/// Core + gateway, the core's GATEWAY_PUBLIC_URL pointing at the gateway; a fake Twilio.
pub(crate) async fn stack(
    backend: &Backend,
    extra: &[(&'static str, &str)],
) -> (FakeTwilio, TestServer, Gateway) {
    let fake = FakeTwilio::start().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_addr = listener.local_addr().unwrap();
    let mut vars = twilio_vars(&fake);
    vars.insert("GATEWAY_PUBLIC_URL", format!("http://{gw_addr}"));
    vars.insert("MEDIA_FETCH_ALLOWED_HOSTS", "127.0.0.1".into());
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let server = TestServer::start_with(backend, vars).await;
    server.assign(OWN, "alice").await;
    let gw = gateway_on(listener, &format!("http://{}", server.addr), &[]).await;
    (fake, server, gw)
}

backend_tests! {
    async fn upload_send_mms_and_twilio_fetches_the_exact_bytes(backend: Backend) {
        let (fake, server, gw) = stack(&backend, &[]).await;
        let original = png(300 * 1024, 7);
        // A PNG named .jpg, declared as JPEG: the stored type is what the bytes are.
        let media = upload(&server, "alice", frames(Some(("image/jpeg", "holiday.jpg")), &original)).await.unwrap();
        assert_eq!((media.content_type.as_str(), media.size_bytes), ("image/png", original.len() as u64));
        assert_eq!(media.state, MediaState::Ready as i32);

        let sent = send_mms(&server, "alice", mms(&[&media.id], &["https://cdn.example.com/logo.gif"])).await.unwrap();
        assert_eq!(sent.media.len(), 1, "our media are listed on the message");
        let mut alice = server.user("alice").await;
        alice.wait_status(&sent, MessageStatus::Sent, 10).await;

        let post = &fake.create_requests()[0];
        let urls = post.fields("MediaUrl");
        assert_eq!(urls.len(), 2, "one MediaUrl per item");
        assert_eq!(urls[1], "https://cdn.example.com/logo.gif", "external URLs as given");
        assert!(urls[0].starts_with(&format!("http://{}/media/", gw.addr)), "{}", urls[0]);

        // What Twilio does next: fetch it from the gateway.
        let resp = gw.http.get(urls[0]).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], "image/png");
        assert_eq!(resp.bytes().await.unwrap().to_vec(), original, "exactly the uploaded bytes");

        // Altered or expired tokens: 404.
        let mut altered = urls[0].to_owned();
        altered.pop();
        altered.push('x');
        assert_eq!(gw.http.get(&altered).send().await.unwrap().status().as_u16(), 404);
        let expired = media_token::mint(MEDIA_SECRET.as_bytes(), &media.id, 1);
        let url = format!("http://{}/media/{expired}", gw.addr);
        assert_eq!(gw.http.get(&url).send().await.unwrap().status().as_u16(), 404);
        let forged = media_token::mint(b"not-the-secret-not-the-secret-xx", &media.id, u64::MAX);
        let url = format!("http://{}/media/{forged}", gw.addr);
        assert_eq!(gw.http.get(&url).send().await.unwrap().status().as_u16(), 404);

        // GetMedia for the owner.
        let (ct, bytes) = get_media(&server, "alice", &media.id).await.unwrap();
        assert_eq!((ct.as_str(), bytes == original), ("image/png", true));
        server.stop().await;
    }

    async fn inbound_mms_images_are_copied_and_shown(backend: Backend) {
        let (fake, server, gw) = stack(&backend, &[]).await;
        let (a, b) = (jpeg(40 * 1024), png(70 * 1024, 3));
        let (url_a, url_b) = (fake.host_media(a.clone(), "image/jpeg"), fake.host_media(b.clone(), "image/png"));
        let mut form = inbound_form("SM000000000000000000000000000e5501", BOB, OWN, "two pictures");
        form.retain(|(k, _)| k != "NumMedia");
        form.extend([
            ("NumMedia".into(), "2".into()),
            ("MediaUrl0".into(), url_a),
            ("MediaContentType0".into(), "image/jpeg".into()),
            ("MediaUrl1".into(), url_b),
            ("MediaContentType1".into(), "image/png".into()),
        ]);
        assert_eq!(gw.post("/webhook/sms", &form).await.0, 200);

        let mut alice = server.user("alice").await;
        let contact = alice.list(10, "").await.unwrap().conversations[0].contact_id.clone();
        let mut shown = Vec::new();
        for _ in 0..200 {
            shown = alice.get(&contact, 10, "").await.unwrap().messages[0].media.clone();
            if shown.len() == 2 && shown.iter().all(|m| m.state == MediaState::Ready as i32) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(shown.iter().map(|m| (m.content_type.as_str(), m.size_bytes)).collect::<Vec<_>>(), [("image/jpeg", a.len() as u64), ("image/png", b.len() as u64)]);
        assert_eq!(get_media(&server, "alice", &shown[0].id).await.unwrap().1, a);
        assert_eq!(get_media(&server, "alice", &shown[1].id).await.unwrap().1, b);
        // The copy authenticated to Twilio and followed its redirect to the CDN.
        let media_gets: Vec<_> = fake.requests().into_iter().filter(|r| r.path.contains("/Media/")).collect();
        assert!(media_gets.iter().all(|r| r.authorized));
        assert!(fake.requests().iter().any(|r| r.path.starts_with("/cdn/")));

        // At rest: the stored objects are not the plaintext.
        let stored = std::fs::read(server.dir.path().join("media").join("media").join(&shown[0].id)).unwrap();
        assert_ne!(stored.len(), 0);
        assert!(!stored.windows(64).any(|w| a.windows(64).next() == Some(w)), "plaintext found in the stored object");
        server.stop().await;
    }

    async fn unsafe_or_slow_media_urls_fail_without_losing_the_message(backend: Backend) {
        let (fake, server, _gw) = stack(&backend, &[("MEDIA_FETCH_TIMEOUT_SECS", "1"), ("MEDIA_FETCH_MAX_ATTEMPTS", "1")]).await;
        let urls = [
            "http://10.0.0.1/secret.jpg".to_owned(),
            fake.host_redirect("http://169.254.169.254/latest/meta-data/"),
            "https://evil.example/x.jpg".to_owned(),
            fake.host_slow_media(jpeg(8 * 1024), "image/jpeg", Duration::from_millis(400)),
        ];
        let stored = server
            .ingest
            .record_inbound(messaging_grpc::ingest::InboundSms {
                message_sid: "SM00000000000000000000000000ssrf1".into(),
                account_sid: twilio_fake::ACCOUNT_SID.into(),
                from: BOB.into(),
                to: OWN.into(),
                body: "dangerous links".into(),
                media: urls.iter().map(|u| (u.clone(), "image/jpeg".to_owned())).collect(),
            })
            .await
            .unwrap();
        let messaging_grpc::ingest::Inbound::Stored(view) = stored else { panic!("stored") };
        let mut alice = server.user("alice").await;
        let mut states = Vec::new();
        for _ in 0..200 {
            let m = alice.message(&view.row.contact_id, &view.row.id).await;
            states = m.media.iter().map(|x| x.state).collect();
            if states.iter().all(|s| *s == MediaState::Failed as i32) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(states, vec![MediaState::Failed as i32; 4], "every unsafe or slow media refused");
        let m = alice.message(&view.row.contact_id, &view.row.id).await;
        assert_eq!(m.body, "dangerous links", "the message itself is kept");
        assert!(!fake.requests().iter().any(|r| r.path.contains("latest/meta-data")));
        server.stop().await;
    }

    async fn bad_uploads_and_mms_requests_are_refused(backend: Backend) {
        let (_fake, server, _gw) = stack(&backend, &[]).await;
        let cases: Vec<(Vec<pb::UploadMediaRequest>, &str)> = vec![
            (frames(Some(("image/png", "big.png")), &png(5 * 1024 * 1024 + 1, 1)), "chunk:"),
            (frames(Some(("image/jpeg", "tool.jpg")), b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"), "chunk:"),
            (frames(Some(("image/png", "empty.png")), &[]), "chunk:"),
            (frames(None, &png(1024, 1)), "metadata:"),
            (Vec::new(), "metadata:"),
        ];
        for (f, field) in cases {
            let err = upload(&server, "alice", f).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
            assert!(err.message().starts_with(field), "{field} in {}", err.message());
        }
        let mine = upload(&server, "alice", frames(Some(("image/png", "a.png")), &png(2048, 2))).await.unwrap();
        server.assign("+15005550007", "bob").await;
        let err = get_media(&server, "bob", &mine.id).await.unwrap_err();
        assert_eq!((err.code(), err.message()), (Code::NotFound, "media_id not found"));
        let mut bobs = mms(&[&mine.id], &[]);
        bobs.from = "+15005550007".into();
        assert_eq!(send_mms(&server, "bob", bobs).await.unwrap_err().code(), Code::NotFound);
        let eleven: Vec<&str> = vec![mine.id.as_str(); 11];
        let err = send_mms(&server, "alice", mms(&eleven, &[])).await.unwrap_err();
        assert!(err.code() == Code::InvalidArgument && err.message().starts_with("media_ids:"), "{}", err.message());
        let err = send_mms(&server, "alice", mms(&[], &["http://plain.example/x.jpg"])).await.unwrap_err();
        assert!(err.code() == Code::InvalidArgument && err.message().starts_with("media_urls:"), "{}", err.message());
        let err = send_mms(&server, "alice", mms(&[], &[])).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(server.user("alice").await.list(10, "").await.unwrap().conversations.is_empty(), "nothing written");
        assert!(server.user("bob").await.list(10, "").await.unwrap().conversations.is_empty());
        server.stop().await;
    }

    async fn a_copier_whose_claim_ran_out_cannot_overwrite_the_outcome(backend: Backend) {
        use messaging_grpc::store::{self, entities::media, media::{claim_pending_any, mark_attempt_failed, mark_ready}};
        let server = TestServer::start(&backend).await;
        let st = server.store().await;
        let db = st.conn();
        let later = store::now() + chrono::Duration::hours(1); // out of the live copier's way
        let row = media::Model {
            id: "0193-race".into(), user_id: "alice".into(), direction: "inbound".into(),
            status: store::media::PENDING.into(), content_type: "image/png".into(), size_bytes: 0,
            storage_key: None, source_url_ct: None, attempts: 0, next_attempt_at: later,
            last_error: None, created_at: store::now(),
        };
        store::media::insert(db, row).await.unwrap();
        let first = claim_pending_any(db, later, later + chrono::Duration::seconds(1), 8).await.unwrap().remove(0);
        let after_lease = later + chrono::Duration::seconds(5);
        let second = claim_pending_any(db, after_lease, after_lease + chrono::Duration::seconds(60), 8).await.unwrap().remove(0);
        assert_eq!((first.attempt, second.attempt), (1, 2));
        assert!(mark_ready(db, &second, "image/png", 10, "media/0193-race").await.unwrap());
        assert!(!mark_attempt_failed(db, &first, store::now(), true, "404 after the other copy deleted it").await.unwrap(), "a stale copier cannot turn READY into FAILED");
        assert!(!mark_ready(db, &first, "image/png", 10, "media/0193-race").await.unwrap());
        let stored = store::media::find(db, "alice", "0193-race").await.unwrap().unwrap();
        assert_eq!((stored.status.as_str(), stored.attempts), (store::media::READY, 2));
        server.stop().await;
    }

    async fn an_idempotency_key_reused_with_other_media_is_refused(backend: Backend) {
        let (_fake, server, _gw) = stack(&backend, &[]).await;
        let a = upload(&server, "alice", frames(Some(("image/png", "a.png")), &png(2048, 3))).await.unwrap();
        let b = upload(&server, "alice", frames(Some(("image/png", "b.png")), &png(2048, 4))).await.unwrap();
        let keyed = |ids: &[&str], urls: &[&str]| pb::SendMmsRequest { idempotency_key: "mms-1".into(), ..mms(ids, urls) };
        let first = send_mms(&server, "alice", keyed(&[&a.id], &["https://cdn.example/one.jpg"])).await.unwrap();
        let again = send_mms(&server, "alice", keyed(&[&a.id], &["https://cdn.example/one.jpg"])).await.unwrap();
        assert_eq!(again.id, first.id, "the same request is a retry");
        for (ids, urls) in [
            (vec![b.id.as_str()], vec!["https://cdn.example/one.jpg"]),
            (vec![a.id.as_str()], vec!["https://cdn.example/two.jpg"]),
            (vec![a.id.as_str()], vec![]),
            (vec![a.id.as_str(), b.id.as_str()], vec!["https://cdn.example/one.jpg"]),
        ] {
            let err = send_mms(&server, "alice", keyed(&ids, &urls)).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
            assert!(err.message().starts_with("idempotency_key:"), "{}", err.message());
        }
        let page = server.user("alice").await.get(&first.contact_id, 10, "").await.unwrap();
        assert_eq!(page.messages.len(), 1, "nothing else stored");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_after_copy_removes_twilios_copy() {
    let (fake, server, _gw) = stack(&Backend::Sqlite, &[("MEDIA_DELETE_AFTER_COPY", "true")]).await;
    let url = fake.host_media(jpeg(1024), "image/jpeg");
    server
        .ingest
        .record_inbound(messaging_grpc::ingest::InboundSms {
            message_sid: "SM00000000000000000000000000del01".into(),
            account_sid: twilio_fake::ACCOUNT_SID.into(),
            from: BOB.into(),
            to: OWN.into(),
            body: String::new(),
            media: vec![(url, "image/jpeg".into())],
        })
        .await
        .unwrap();
    wait_until("Twilio's copy deleted", 10, || async {
        !fake.deleted_media().is_empty()
    })
    .await;
    server.stop().await;
}
