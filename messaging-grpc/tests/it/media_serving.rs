//! `MessagingIngest/ServeMedia` serves what the gateway's signed `/media/{token}` URLs
//! name, and nothing else: a `gateway` token with a media id reads neither a photo a
//! contact sent a user nor an upload never sent.

use std::time::Duration;

use commpro_messaging_api::v1::{self as pb, MediaState, MessageStatus};
use messaging_grpc::ingest::{Inbound, InboundSms};
use tonic::Code;

use crate::{
    backend_tests,
    helpers::*,
    media::{frames, jpeg, mms, png, send_mms, stack, upload},
};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";

/// ServeMedia as a gateway-role caller, with a media id and/or a signed token.
async fn serve_by_id(
    server: &TestServer,
    media_id: &str,
    token: &str,
) -> Result<Vec<u8>, tonic::Status> {
    let gateway = server.gateway_token();
    let mut c = pb::messaging_ingest_client::MessagingIngestClient::new(server.channel().await);
    let mut stream = c
        .serve_media(authed(
            pb::ServeMediaRequest {
                media_id: media_id.into(),
                token: token.into(),
            },
            &gateway,
        ))
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = tokio_stream::StreamExt::next(&mut stream).await {
        bytes.extend(chunk?.data);
    }
    Ok(bytes)
}

backend_tests! {
    async fn a_gateway_token_alone_reads_no_media(backend: Backend) {
        let (fake, server, gw) = stack(&backend, &[]).await;
        // A photo a contact sent alice, copied from "Twilio".
        let photo = jpeg(20 * 1024);
        let url = fake.host_media(photo.clone(), "image/jpeg");
        let stored = server
            .ingest
            .record_inbound(InboundSms {
                message_sid: "SM0123456789abcdef0123456789abcdef".into(),
                account_sid: twilio_fake::ACCOUNT_SID.into(),
                from: BOB.into(),
                to: OWN.into(),
                body: "a private photo".into(),
                media: vec![(url, "image/jpeg".into())],
            })
            .await
            .unwrap();
        let Inbound::Stored(view) = stored else { panic!("stored") };
        let mut alice = server.user("alice").await;
        let mut inbound_id = String::new();
        for _ in 0..800 {
            let page = alice.get(&view.row.contact_id, 10, "").await.unwrap();
            let media = &page.messages[0].media;
            if media.len() == 1 && media[0].state == MediaState::Ready as i32 {
                inbound_id = media[0].id.clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(!inbound_id.is_empty(), "the inbound photo was copied");
        let refused = serve_by_id(&server, &inbound_id, "").await;
        assert!(
            refused.is_err(),
            "a received photo was served to a gateway token: {:?}",
            refused.map(|b| b.len())
        );
        // Even with a validly signed token naming it: inbound media are never served.
        let signed = media_token::mint(MEDIA_SECRET.as_bytes(), &inbound_id, u64::MAX);
        let refused = serve_by_id(&server, "", &signed).await;
        assert_eq!(refused.unwrap_err().code(), Code::NotFound);

        // An upload alice never sent is not served, by id or by a signed token.
        let unsent = upload(&server, "alice", frames(Some(("image/png", "a.png")), &png(4096, 1))).await.unwrap();
        assert!(serve_by_id(&server, &unsent.id, "").await.is_err());
        let signed = media_token::mint(MEDIA_SECRET.as_bytes(), &unsent.id, u64::MAX);
        assert_eq!(serve_by_id(&server, "", &signed).await.unwrap_err().code(), Code::NotFound);

        // The gateway's signed URL for a sent image still serves it (the token goes
        // through to the core).
        let original = png(8 * 1024, 5);
        let media = upload(&server, "alice", frames(Some(("image/png", "b.png")), &original)).await.unwrap();
        let sent = send_mms(&server, "alice", mms(&[&media.id], &[])).await.unwrap();
        alice.wait_status(&sent, MessageStatus::Sent, 10).await;
        let post = fake.create_requests().pop().unwrap();
        let link = post.fields("MediaUrl")[0].to_owned();
        let resp = gw.http.get(&link).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.bytes().await.unwrap().to_vec(), original);
        // The same media id, by id only, is refused: the core wants the token.
        assert_eq!(serve_by_id(&server, &media.id, "").await.unwrap_err().code(), Code::InvalidArgument);
        // A token for it signed with another secret, or expired, is refused by the core.
        let forged = media_token::mint(b"not-the-secret-not-the-secret-xx", &media.id, u64::MAX);
        assert_eq!(serve_by_id(&server, "", &forged).await.unwrap_err().code(), Code::NotFound);
        let expired = media_token::mint(MEDIA_SECRET.as_bytes(), &media.id, 1);
        assert_eq!(serve_by_id(&server, "", &expired).await.unwrap_err().code(), Code::NotFound);
        // A valid token for one media id with another id in the request: refused.
        let valid = media_token::mint(MEDIA_SECRET.as_bytes(), &media.id, u64::MAX);
        assert_eq!(serve_by_id(&server, &unsent.id, &valid).await.unwrap_err().code(), Code::NotFound);
        assert_eq!(serve_by_id(&server, &media.id, &valid).await.unwrap(), original);
        server.stop().await;
    }
}
