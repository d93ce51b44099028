//! `MessagingService`: an end user's messages. The caller is the JWT `sub`.

use commpro_messaging_api::v1::upload_media_request::Frame;
use commpro_messaging_api::v1::{self as pb, messaging_service_server::MessagingService};
use tonic::{Request, Response, Status, Streaming};

use tokio_stream::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;

use super::{call::as_caller, convert};
use crate::{
    auth::caller,
    error::Error,
    media::MAX_MEDIA_BYTES,
    messaging::{Messaging, SendMms, SendSms, WatchSettings, WatchSlots},
};

/// The send request of a `SendSmsRequest` or a `SendMmsRequest` (the same fields; a
/// macro, since they are two types).
macro_rules! send_request {
    ($r:ident) => {
        SendSms {
            send_at: convert::time_in("send_at", $r.send_at)?,
            from: $r.from,
            to: $r.to,
            body: $r.body,
            idempotency_key: $r.idempotency_key,
        }
    };
}

pub struct MessagingApi {
    messaging: Messaging,
    watch: WatchSettings,
    /// Open WatchEvents streams per user.
    watch_slots: std::sync::Arc<WatchSlots>,
    shutdown: CancellationToken,
}

impl MessagingApi {
    /// `shutdown` ends open WatchEvents streams, so a graceful stop does not wait on them.
    pub fn new(messaging: Messaging, watch: WatchSettings, shutdown: CancellationToken) -> Self {
        Self {
            messaging,
            watch,
            watch_slots: WatchSlots::new(watch.max_per_user),
            shutdown,
        }
    }
}

#[tonic::async_trait]
impl MessagingService for MessagingApi {
    type WatchEventsStream =
        std::pin::Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send + 'static>>;

    async fn watch_events(
        &self,
        req: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let user = caller(&req)?;
        let slot = self.watch_slots.acquire(&user.user_id).ok_or_else(|| {
            Status::resource_exhausted(format!(
                "too many open WatchEvents streams for this user (at most {}, \
                 MESSAGING_MAX_WATCH_STREAMS_PER_USER); close one first",
                self.watch_slots.max()
            ))
        })?;
        let since = match req.into_inner().since_cursor {
            None => None,
            Some(c) => Some(
                i64::try_from(c)
                    .map_err(|_| crate::error::Error::invalid("since_cursor", "is too large"))?,
            ),
        };
        let stream = self
            .messaging
            .watch_events(user.user_id, since, self.watch, self.shutdown.clone())
            .await?
            // The slot is the closure's: given back when the stream is dropped.
            .map(move |item| {
                let _held = &slot;
                item.map(convert::watch_item).map_err(Status::from)
            });
        // The token was checked once, at the start: the stream ends when it expires.
        let stream = super::token_expiry::until_expiry(stream, user.expires_at);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn send_sms(
        &self,
        req: Request<pb::SendSmsRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        as_caller(req, |user, r| async move {
            let send = send_request!(r);
            convert::message(self.messaging.send_sms(&user.user_id, send).await?)
        })
        .await
    }

    async fn send_mms(
        &self,
        req: Request<pb::SendMmsRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        as_caller(req, |user, r| async move {
            let send = SendMms {
                media_ids: r.media_ids,
                media_urls: r.media_urls,
                message: send_request!(r),
            };
            convert::message(self.messaging.send_mms(&user.user_id, send).await?)
        })
        .await
    }

    async fn upload_media(
        &self,
        req: Request<Streaming<pb::UploadMediaRequest>>,
    ) -> Result<Response<pb::Media>, Status> {
        let user = caller(&req)?;
        let mut stream = req.into_inner();
        let metadata = match stream.message().await? {
            Some(pb::UploadMediaRequest {
                frame: Some(Frame::Metadata(m)),
            }) => m,
            Some(_) => {
                return Err(
                    Error::invalid("metadata", "the first message must carry metadata").into(),
                );
            }
            None => {
                return Err(
                    Error::invalid("metadata", "the stream ended before any metadata").into(),
                );
            }
        };
        // Refuse as soon as the stream passes the limit: never buffer more than 5 MB.
        let mut bytes = Vec::new();
        while let Some(frame) = stream.message().await? {
            match frame.frame {
                Some(Frame::Chunk(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_MEDIA_BYTES {
                        return Err(Error::invalid("chunk", "media are limited to 5 MB").into());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Some(Frame::Metadata(_)) => {
                    return Err(Error::invalid(
                        "metadata",
                        "only the first message may carry metadata",
                    )
                    .into());
                }
                None => {}
            }
        }
        let stored = self
            .messaging
            .media()
            .upload(&user.user_id, &metadata.content_type, bytes)
            .await?;
        Ok(Response::new(convert::media(stored)))
    }

    type GetMediaStream = tokio_stream::Iter<std::vec::IntoIter<Result<pb::MediaChunk, Status>>>;

    async fn get_media(
        &self,
        req: Request<pb::GetMediaRequest>,
    ) -> Result<Response<Self::GetMediaStream>, Status> {
        as_caller(req, |user, r| async move {
            let (row, bytes) = self
                .messaging
                .media()
                .get(&user.user_id, &r.media_id)
                .await?;
            let chunks: Vec<_> = convert::media_chunks(&row, bytes)
                .into_iter()
                .map(Ok)
                .collect();
            Ok(tokio_stream::iter(chunks))
        })
        .await
    }

    async fn list_conversations(
        &self,
        req: Request<pb::ListConversationsRequest>,
    ) -> Result<Response<pb::ListConversationsResponse>, Status> {
        as_caller(req, |user, r| async move {
            let page = self
                .messaging
                .list_conversations(&user.user_id, r.page_size, &r.page_token, r.archived)
                .await?;
            Ok(pb::ListConversationsResponse {
                conversations: convert::conversations(page.conversations)?,
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn get_conversation(
        &self,
        req: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::GetConversationResponse>, Status> {
        as_caller(req, |user, r| async move {
            let page = self
                .messaging
                .get_conversation(&user.user_id, &r.contact_id, r.page_size, &r.page_token)
                .await?;
            Ok(pb::GetConversationResponse {
                contact_id: page.contact_id,
                contact_number: page.contact_number,
                contact_name: page.contact_name.unwrap_or_default(),
                messages: convert::messages(page.messages)?,
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn mark_read(
        &self,
        req: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        as_caller(req, |user, r| async move {
            convert::message(
                self.messaging
                    .mark_read(&user.user_id, &r.message_id)
                    .await?,
            )
        })
        .await
    }

    async fn mark_conversation_read(
        &self,
        req: Request<pb::MarkConversationReadRequest>,
    ) -> Result<Response<pb::MarkConversationReadResponse>, Status> {
        as_caller(req, |user, r| async move {
            let up_to = (!r.up_to_message_id.is_empty()).then_some(r.up_to_message_id.as_str());
            let unread_count = self
                .messaging
                .mark_conversation_read(&user.user_id, &r.contact_id, up_to)
                .await?;
            Ok(pb::MarkConversationReadResponse { unread_count })
        })
        .await
    }

    async fn cancel_scheduled(
        &self,
        req: Request<pb::CancelScheduledRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        as_caller(req, |user, r| async move {
            let canceled = self
                .messaging
                .cancel_scheduled(&user.user_id, &r.message_id)
                .await?;
            convert::message(canceled)
        })
        .await
    }

    async fn search_messages(
        &self,
        req: Request<pb::SearchMessagesRequest>,
    ) -> Result<Response<pb::SearchMessagesResponse>, Status> {
        as_caller(req, |user, r| async move {
            let page = self
                .messaging
                .search_messages(
                    &user.user_id,
                    &r.query,
                    &r.contact_id,
                    r.page_size,
                    &r.page_token,
                )
                .await?;
            Ok(pb::SearchMessagesResponse {
                messages: convert::messages(page.messages)?,
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn archive_conversation(
        &self,
        req: Request<pb::ArchiveConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        as_caller(req, |user, r| async move {
            let conv = self
                .messaging
                .set_archived(&user.user_id, &r.contact_id, true)
                .await?;
            convert::conversation(conv)
        })
        .await
    }

    async fn unarchive_conversation(
        &self,
        req: Request<pb::UnarchiveConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        as_caller(req, |user, r| async move {
            let conv = self
                .messaging
                .set_archived(&user.user_id, &r.contact_id, false)
                .await?;
            convert::conversation(conv)
        })
        .await
    }

    async fn mute_conversation(
        &self,
        req: Request<pb::MuteConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        as_caller(req, |user, r| async move {
            let until = convert::time_in("until", r.until)?;
            let conv = self
                .messaging
                .mute(&user.user_id, &r.contact_id, until)
                .await?;
            convert::conversation(conv)
        })
        .await
    }

    async fn unmute_conversation(
        &self,
        req: Request<pb::UnmuteConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        as_caller(req, |user, r| async move {
            convert::conversation(self.messaging.unmute(&user.user_id, &r.contact_id).await?)
        })
        .await
    }

    async fn block_number(
        &self,
        req: Request<pb::BlockNumberRequest>,
    ) -> Result<Response<pb::BlockedNumber>, Status> {
        as_caller(req, |user, r| async move {
            let blocked = self
                .messaging
                .block_number(&user.user_id, &r.number)
                .await?;
            Ok(convert::blocked(blocked))
        })
        .await
    }

    async fn unblock_number(
        &self,
        req: Request<pb::UnblockNumberRequest>,
    ) -> Result<Response<pb::UnblockNumberResponse>, Status> {
        as_caller(req, |user, r| async move {
            let (number, contact_id) = self
                .messaging
                .unblock_number(&user.user_id, &r.number)
                .await?;
            Ok(pb::UnblockNumberResponse { number, contact_id })
        })
        .await
    }

    async fn list_blocked_numbers(
        &self,
        req: Request<pb::ListBlockedNumbersRequest>,
    ) -> Result<Response<pb::ListBlockedNumbersResponse>, Status> {
        as_caller(req, |user, r| async move {
            let page = self
                .messaging
                .list_blocked(&user.user_id, r.page_size, &r.page_token)
                .await?;
            Ok(pb::ListBlockedNumbersResponse {
                blocked_numbers: page.blocked.into_iter().map(convert::blocked).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn delete_message(
        &self,
        req: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<pb::DeleteMessageResponse>, Status> {
        as_caller(req, |user, r| async move {
            let d = self
                .messaging
                .delete_message(&user.user_id, &r.message_id)
                .await?;
            Ok(pb::DeleteMessageResponse {
                message_id: d.message_id,
                contact_id: d.contact_id,
                unread_count: d.unread_count,
            })
        })
        .await
    }

    async fn delete_conversation(
        &self,
        req: Request<pb::DeleteConversationRequest>,
    ) -> Result<Response<pb::DeleteConversationResponse>, Status> {
        as_caller(req, |user, r| async move {
            let deleted_messages = self
                .messaging
                .delete_conversation(&user.user_id, &r.contact_id)
                .await?;
            Ok(pb::DeleteConversationResponse {
                contact_id: r.contact_id,
                deleted_messages,
            })
        })
        .await
    }

    async fn set_contact_name(
        &self,
        req: Request<pb::SetContactNameRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        as_caller(req, |user, r| async move {
            let contact = self
                .messaging
                .set_contact_name(&user.user_id, &r.contact_id, &r.name)
                .await?;
            Ok(convert::contact(contact))
        })
        .await
    }
}
