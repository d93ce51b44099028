//! `MessagingService`: an end user's messages. The caller is the JWT `sub`.

use commpro_messaging_api::v1::upload_media_request::Frame;
use commpro_messaging_api::v1::{self as pb, messaging_service_server::MessagingService};
use tonic::{Request, Response, Status, Streaming};

use tokio_stream::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;

use super::convert;
use crate::{
    auth::caller,
    error::Error,
    media::MAX_MEDIA_BYTES,
    messaging::{Messaging, SendMms, SendSms, WatchSettings, WatchSlots},
};

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
        let user = caller(&req)?;
        let r = req.into_inner();
        let send = SendSms {
            send_at: convert::time_in("send_at", r.send_at)?,
            from: r.from,
            to: r.to,
            body: r.body,
            idempotency_key: r.idempotency_key,
        };
        let sent = self.messaging.send_sms(&user.user_id, send).await?;
        Ok(Response::new(convert::message(sent)?))
    }

    async fn send_mms(
        &self,
        req: Request<pb::SendMmsRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let send = SendMms {
            send_at: convert::time_in("send_at", r.send_at)?,
            from: r.from,
            to: r.to,
            body: r.body,
            media_ids: r.media_ids,
            media_urls: r.media_urls,
            idempotency_key: r.idempotency_key,
        };
        let sent = self.messaging.send_mms(&user.user_id, send).await?;
        Ok(Response::new(convert::message(sent)?))
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
        let user = caller(&req)?;
        let (row, bytes) = self
            .messaging
            .media()
            .get(&user.user_id, &req.into_inner().media_id)
            .await?;
        let chunks: Vec<_> = convert::media_chunks(&row, bytes)
            .into_iter()
            .map(Ok)
            .collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    async fn list_conversations(
        &self,
        req: Request<pb::ListConversationsRequest>,
    ) -> Result<Response<pb::ListConversationsResponse>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let page = self
            .messaging
            .list_conversations(&user.user_id, r.page_size, &r.page_token, r.archived)
            .await?;
        Ok(Response::new(pb::ListConversationsResponse {
            conversations: page
                .conversations
                .into_iter()
                .map(convert::conversation)
                .collect::<Result<_, _>>()?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_conversation(
        &self,
        req: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::GetConversationResponse>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let page = self
            .messaging
            .get_conversation(&user.user_id, &r.contact_id, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::GetConversationResponse {
            contact_id: page.contact_id,
            contact_number: page.contact_number,
            contact_name: page.contact_name.unwrap_or_default(),
            messages: page
                .messages
                .into_iter()
                .map(convert::message)
                .collect::<Result<_, _>>()?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn mark_read(
        &self,
        req: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let read = self
            .messaging
            .mark_read(&user.user_id, &r.message_id)
            .await?;
        Ok(Response::new(convert::message(read)?))
    }

    async fn mark_conversation_read(
        &self,
        req: Request<pb::MarkConversationReadRequest>,
    ) -> Result<Response<pb::MarkConversationReadResponse>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let up_to = (!r.up_to_message_id.is_empty()).then_some(r.up_to_message_id.as_str());
        let unread_count = self
            .messaging
            .mark_conversation_read(&user.user_id, &r.contact_id, up_to)
            .await?;
        Ok(Response::new(pb::MarkConversationReadResponse {
            unread_count,
        }))
    }

    async fn cancel_scheduled(
        &self,
        req: Request<pb::CancelScheduledRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let canceled = self
            .messaging
            .cancel_scheduled(&user.user_id, &r.message_id)
            .await?;
        Ok(Response::new(convert::message(canceled)?))
    }

    async fn search_messages(
        &self,
        req: Request<pb::SearchMessagesRequest>,
    ) -> Result<Response<pb::SearchMessagesResponse>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
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
        Ok(Response::new(pb::SearchMessagesResponse {
            messages: page
                .messages
                .into_iter()
                .map(convert::message)
                .collect::<Result<_, _>>()?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn archive_conversation(
        &self,
        req: Request<pb::ArchiveConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let conv = self
            .messaging
            .set_archived(&user.user_id, &r.contact_id, true)
            .await?;
        Ok(Response::new(convert::conversation(conv)?))
    }

    async fn unarchive_conversation(
        &self,
        req: Request<pb::UnarchiveConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let conv = self
            .messaging
            .set_archived(&user.user_id, &r.contact_id, false)
            .await?;
        Ok(Response::new(convert::conversation(conv)?))
    }

    async fn mute_conversation(
        &self,
        req: Request<pb::MuteConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let until = convert::time_in("until", r.until)?;
        let conv = self
            .messaging
            .mute(&user.user_id, &r.contact_id, until)
            .await?;
        Ok(Response::new(convert::conversation(conv)?))
    }

    async fn unmute_conversation(
        &self,
        req: Request<pb::UnmuteConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let conv = self.messaging.unmute(&user.user_id, &r.contact_id).await?;
        Ok(Response::new(convert::conversation(conv)?))
    }

    async fn block_number(
        &self,
        req: Request<pb::BlockNumberRequest>,
    ) -> Result<Response<pb::BlockedNumber>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let blocked = self
            .messaging
            .block_number(&user.user_id, &r.number)
            .await?;
        Ok(Response::new(convert::blocked(blocked)))
    }

    async fn unblock_number(
        &self,
        req: Request<pb::UnblockNumberRequest>,
    ) -> Result<Response<pb::UnblockNumberResponse>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let (number, contact_id) = self
            .messaging
            .unblock_number(&user.user_id, &r.number)
            .await?;
        Ok(Response::new(pb::UnblockNumberResponse {
            number,
            contact_id,
        }))
    }

    async fn list_blocked_numbers(
        &self,
        req: Request<pb::ListBlockedNumbersRequest>,
    ) -> Result<Response<pb::ListBlockedNumbersResponse>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let page = self
            .messaging
            .list_blocked(&user.user_id, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListBlockedNumbersResponse {
            blocked_numbers: page.blocked.into_iter().map(convert::blocked).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_message(
        &self,
        req: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<pb::DeleteMessageResponse>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let d = self
            .messaging
            .delete_message(&user.user_id, &r.message_id)
            .await?;
        Ok(Response::new(pb::DeleteMessageResponse {
            message_id: d.message_id,
            contact_id: d.contact_id,
            unread_count: d.unread_count,
        }))
    }

    async fn delete_conversation(
        &self,
        req: Request<pb::DeleteConversationRequest>,
    ) -> Result<Response<pb::DeleteConversationResponse>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let deleted_messages = self
            .messaging
            .delete_conversation(&user.user_id, &r.contact_id)
            .await?;
        Ok(Response::new(pb::DeleteConversationResponse {
            contact_id: r.contact_id,
            deleted_messages,
        }))
    }

    async fn set_contact_name(
        &self,
        req: Request<pb::SetContactNameRequest>,
    ) -> Result<Response<pb::Contact>, Status> {
        let user = caller(&req)?;
        let r = req.into_inner();
        let contact = self
            .messaging
            .set_contact_name(&user.user_id, &r.contact_id, &r.name)
            .await?;
        Ok(Response::new(convert::contact(contact)))
    }
}
