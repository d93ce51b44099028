//! A user's data export: decrypted, newest first across conversations, media bytes
//! byte for byte, over gRPC and through `messaging export`; audited; another user's
//! data never in it.

use std::collections::HashMap;

use commpro_messaging_api::v1::{self as pb, export_user_response::Item};
use tokio_stream::StreamExt;

use crate::{
    backend_tests,
    helpers::*,
    keys::{audit_events, messaging_cli},
    media,
};

const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";
const CAROL: &str = "+14155550101";

/// The export as (messages in order, media bytes by id).
async fn export(
    server: &TestServer,
    user: &str,
    include_media: bool,
) -> (Vec<pb::Message>, HashMap<String, (String, Vec<u8>)>) {
    let mut admin = server.admin().await;
    let mut stream = admin
        .client
        .export_user(authed(
            pb::ExportUserRequest {
                user_id: user.into(),
                include_media,
            },
            &admin.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let (mut messages, mut media) = (Vec::new(), HashMap::<String, (String, Vec<u8>)>::new());
    while let Some(item) = stream.next().await {
        match item.unwrap().item.unwrap() {
            Item::Message(m) => messages.push(m),
            Item::Media(c) => {
                let entry = media.entry(c.media_id.clone()).or_default();
                if !c.content_type.is_empty() {
                    entry.0 = c.content_type;
                }
                entry.1.extend(c.data);
            }
        }
    }
    (messages, media)
}

backend_tests! {
    async fn export_round_trips_messages_and_media_byte_for_byte(backend: Backend) {
        let server = TestServer::start(&backend).await;
        server.assign(OWN, "alice").await;
        server.assign("+15005550007", "bob").await;
        // Over 64 KiB, so it travels in several pieces.
        let image = media::png(150_000, 9);
        let uploaded = media::upload(&server, "alice", media::frames(Some(("image/png", "p.png")), &image)).await.unwrap();
        let mut alice = server.user("alice").await;
        let mut bodies = Vec::new();
        alice.send(OWN, BOB, "first to bob").await.unwrap();
        bodies.push("first to bob");
        server.inbound("SM00000000000000000000000000000011", CAROL, OWN, "carol writes").await;
        bodies.push("carol writes");
        media::send_mms(&server, "alice", pb::SendMmsRequest {
            from: OWN.into(), to: CAROL.into(), body: "a picture".into(),
            media_ids: vec![uploaded.id.clone()], ..Default::default()
        }).await.unwrap();
        bodies.push("a picture");
        // The same upload again: its bytes are exported once.
        media::send_mms(&server, "alice", pb::SendMmsRequest {
            from: OWN.into(), to: BOB.into(), body: "same picture".into(),
            media_ids: vec![uploaded.id.clone()], ..Default::default()
        }).await.unwrap();
        bodies.push("same picture");
        server.user("bob").await.send("+15005550007", BOB, "bob's secret").await.unwrap();

        let (messages, media_bytes) = export(&server, "alice", true).await;
        let got: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
        bodies.reverse();
        assert_eq!(got, bodies, "decrypted, newest first across conversations, alice's only");
        assert_eq!(media_bytes.len(), 1);
        let (content_type, bytes) = &media_bytes[&uploaded.id];
        assert_eq!(content_type, "image/png");
        assert!(bytes == &image, "media bytes round-trip exactly");
        assert_eq!(messages[0].media[0].id, uploaded.id);

        let (without, none) = export(&server, "alice", false).await;
        assert_eq!(without.len(), 4);
        assert!(none.is_empty());

        let audit = audit_events(&server, "export_user", "alice").await;
        assert_eq!(audit.len(), 2);
        assert!(audit.iter().all(|e| e.actor == "operator" && e.details.contains("\"messages\":4")));
        assert!(audit.iter().all(|e| !e.details.contains("picture")));

        // The command writes JSON lines and the media files.
        let dir = tempfile::tempdir().unwrap();
        let media_dir = dir.path().join("media");
        let (ok, out, err) = messaging_cli(&server, &["export", "--user", "alice", "--media", media_dir.to_str().unwrap()]).await;
        assert!(ok, "{err}");
        let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["body"], "same picture");
        assert_eq!(lines[0]["direction"], "outbound");
        assert_eq!(lines[0]["contentState"], "available");
        assert_eq!(lines[3]["body"], "first to bob");
        let inbound = lines.iter().find(|l| l["body"] == "carol writes").unwrap();
        assert_eq!((&inbound["direction"], &inbound["status"]), (&serde_json::json!("inbound"), &serde_json::json!("received")));
        let file = lines[0]["media"][0]["file"].as_str().unwrap();
        assert!(file.ends_with(&format!("{}.png", uploaded.id)), "{file}");
        assert!(std::fs::read(file).unwrap() == image, "the file is the image, byte for byte");
    }
}
