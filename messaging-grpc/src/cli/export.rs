//! `messaging export --user ID [--media DIR] > file.jsonl`: a user's data export
//! (MessagingAdmin.ExportUser) as JSON lines, one message per line, newest first;
//! with `--media`, each media item's decrypted bytes as `DIR/<media id>.<ext>`, named in
//! the message's `media[].file`.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use commpro_messaging_api::v1::{self as pb, export_user_response::Item};
use serde_json::{Value, json};

use super::admin_client::{AdminConnection, refused};

/// An export may be long; the stream may run this long in all.
const DEADLINE: Duration = Duration::from_secs(3600);

pub async fn run(
    user: String,
    media_dir: Option<PathBuf>,
    token: Option<String>,
) -> anyhow::Result<()> {
    if let Some(dir) = &media_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--media: creating {}", dir.display()))?;
    }
    let mut conn = AdminConnection::connect(token).await?;
    let req = conn.request(
        pb::ExportUserRequest {
            user_id: user,
            include_media: media_dir.is_some(),
        },
        DEADLINE,
    );
    let mut stream = conn
        .client
        .export_user(req)
        .await
        .map_err(refused)?
        .into_inner();
    let mut out = std::io::stdout().lock();
    // Media ids already opened, to their file (pieces of one item arrive in order).
    let mut files: HashMap<String, std::fs::File> = HashMap::new();
    while let Some(item) = stream.message().await.map_err(refused)? {
        match item.item {
            Some(Item::Message(m)) => {
                let line = message_json(&m, media_dir.as_deref());
                writeln!(out, "{line}")?;
            }
            Some(Item::Media(chunk)) => {
                let Some(dir) = &media_dir else { continue };
                let file = match files.entry(chunk.media_id.clone()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let path = media_path(dir, &chunk.media_id, &chunk.content_type);
                        let f = std::fs::File::create(&path)
                            .with_context(|| format!("creating {}", path.display()))?;
                        e.insert(f)
                    }
                };
                file.write_all(&chunk.data)
                    .context("writing a media file")?;
            }
            None => {}
        }
    }
    out.flush()?;
    Ok(())
}

/// Where an item's bytes go: named by id, with the extension of its type.
fn media_path(dir: &Path, id: &str, content_type: &str) -> PathBuf {
    let ext = match content_type {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        _ => "bin",
    };
    dir.join(format!("{id}.{ext}"))
}

/// A message as one JSON object: camelCase fields, RFC 3339 times, lower-case enums
/// (the REST API's conventions).
fn message_json(m: &pb::Message, media_dir: Option<&Path>) -> Value {
    let media: Vec<Value> = m
        .media
        .iter()
        .map(|md| {
            let state = enum_name(
                pb::MediaState::try_from(md.state).map_or("", |s| s.as_str_name()),
                "MEDIA_STATE_",
            );
            let file = media_dir
                .filter(|_| md.state == pb::MediaState::Ready as i32)
                .map(|d| {
                    media_path(d, &md.id, &md.content_type)
                        .display()
                        .to_string()
                });
            json!({
                "id": md.id,
                "contentType": md.content_type,
                "sizeBytes": md.size_bytes,
                "state": state,
                "file": file,
            })
        })
        .collect();
    json!({
        "id": m.id,
        "direction": enum_name(pb::Direction::try_from(m.direction).map_or("", |d| d.as_str_name()), "DIRECTION_"),
        "ownerNumber": m.owner_number,
        "contactNumber": m.contact_number,
        "contactId": m.contact_id,
        "body": m.body,
        "contentState": enum_name(pb::ContentState::try_from(m.content_state).map_or("", |c| c.as_str_name()), "CONTENT_STATE_"),
        "status": enum_name(pb::MessageStatus::try_from(m.status).map_or("", |s| s.as_str_name()), "MESSAGE_STATUS_"),
        "providerSid": (!m.provider_sid.is_empty()).then_some(&m.provider_sid),
        "errorCode": (m.error_code != 0).then_some(m.error_code),
        "errorMessage": (!m.error_message.is_empty()).then_some(&m.error_message),
        "segments": m.segments,
        "createdAt": time(m.created_at.as_ref()),
        "sentAt": time(m.sent_at.as_ref()),
        "deliveredAt": time(m.delivered_at.as_ref()),
        "readAt": time(m.read_at.as_ref()),
        "media": media,
    })
}

fn enum_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
}

fn time(t: Option<&prost_types::Timestamp>) -> Option<String> {
    let t = t?;
    DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
}
