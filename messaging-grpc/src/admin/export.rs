//! A user's data export (privacy requests): every message decrypted, newest first
//! across conversations, with its media references and, when asked, the media bytes
//! (each item once, after the first message that carries it). Audited before the
//! first byte leaves.

use std::collections::HashSet;

use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Admin, actions, numbers::parse_user_id};
use crate::{
    domain::MessageView,
    error::Error,
    store::{self, audit::NewAuditEvent, entities::media, page_token::Cursor},
};

/// Messages read and decrypted per query.
const PAGE: u64 = 100;
/// Media bytes per streamed piece.
const CHUNK: usize = 64 * 1024;

/// One item of an export.
pub enum ExportItem {
    Message(Box<MessageView>),
    /// A piece of a media item's bytes, in order; `first` for the first piece.
    MediaChunk {
        media: Box<media::Model>,
        data: Vec<u8>,
        first: bool,
    },
}

pub type ExportStream = ReceiverStream<Result<ExportItem, Error>>;

impl Admin {
    /// Streams `user_id`'s messages, newest first; with `include_media`, the bytes of
    /// their ready media too.
    pub async fn export_user(
        &self,
        actor: &str,
        user_id: &str,
        include_media: bool,
    ) -> Result<ExportStream, Error> {
        let user_id = parse_user_id(user_id)?.to_owned();
        let messages = store::messages::count_of(self.store().conn(), &user_id).await?;
        store::audit::insert(
            self.store().conn(),
            NewAuditEvent {
                actor,
                action: actions::EXPORT_USER,
                target_user_id: Some(&user_id),
                target: None,
                details: json!({ "messages": messages, "include_media": include_media }),
            },
        )
        .await?;
        tracing::info!(actor, user_id = %user_id, messages, include_media, "user export started");
        let (tx, rx) = mpsc::channel(16);
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.stream_export(&user_id, include_media, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(ReceiverStream::new(rx))
    }

    /// Sends the export into `tx`; stops quietly when the receiver leaves.
    async fn stream_export(
        &self,
        user_id: &str,
        include_media: bool,
        tx: &mpsc::Sender<Result<ExportItem, Error>>,
    ) -> Result<(), Error> {
        let mut after: Option<Cursor> = None;
        let mut sent_media = HashSet::new();
        loop {
            let rows =
                store::messages::page_of_user(self.store().conn(), user_id, after.as_ref(), PAGE)
                    .await?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = Some(Cursor {
                at: last.created_at,
                id: last.id.clone(),
            });
            for view in self.records.views(user_id, rows).await? {
                let media: Vec<media::Model> = view.media.clone();
                if tx
                    .send(Ok(ExportItem::Message(Box::new(view))))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
                if !include_media {
                    continue;
                }
                for m in media {
                    if m.status != store::media::READY || !sent_media.insert(m.id.clone()) {
                        continue;
                    }
                    let (row, bytes) = self.media.get(user_id, &m.id).await?;
                    // An empty item still gets its one (first) piece.
                    let pieces: Vec<&[u8]> = if bytes.is_empty() {
                        vec![&[]]
                    } else {
                        bytes.chunks(CHUNK).collect()
                    };
                    for (i, piece) in pieces.into_iter().enumerate() {
                        let item = ExportItem::MediaChunk {
                            media: Box::new(row.clone()),
                            data: piece.to_vec(),
                            first: i == 0,
                        };
                        if tx.send(Ok(item)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}
