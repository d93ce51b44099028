//! The tonic clients of the tests: each call carries the user's (or admin's) token.

use super::*;

/// Adds `authorization: Bearer` to a request.
pub fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

type Fut<'a, R> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>> + Send + 'a>,
>;

pub struct UserClient {
    pub client: MessagingServiceClient<Channel>,
    pub token: String,
}

impl UserClient {
    pub async fn send(
        &mut self,
        from: &str,
        to: &str,
        body: &str,
    ) -> Result<pb::Message, tonic::Status> {
        self.send_req(pb::SendSmsRequest {
            from: from.into(),
            to: to.into(),
            body: body.into(),
            idempotency_key: String::new(),
            send_at: None,
        })
        .await
    }

    pub async fn send_req(
        &mut self,
        req: pb::SendSmsRequest,
    ) -> Result<pb::Message, tonic::Status> {
        Ok(self
            .client
            .send_sms(authed(req, &self.token))
            .await?
            .into_inner())
    }

    pub async fn list(
        &mut self,
        page_size: u32,
        page_token: &str,
    ) -> Result<pb::ListConversationsResponse, tonic::Status> {
        self.list_in(false, page_size, page_token).await
    }

    pub async fn list_archived(
        &mut self,
        page_size: u32,
        page_token: &str,
    ) -> Result<pb::ListConversationsResponse, tonic::Status> {
        self.list_in(true, page_size, page_token).await
    }

    async fn list_in(
        &mut self,
        archived: bool,
        page_size: u32,
        page_token: &str,
    ) -> Result<pb::ListConversationsResponse, tonic::Status> {
        let req = pb::ListConversationsRequest {
            page_size,
            page_token: page_token.into(),
            archived,
        };
        Ok(self
            .client
            .list_conversations(authed(req, &self.token))
            .await?
            .into_inner())
    }

    pub async fn get(
        &mut self,
        contact_id: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<pb::GetConversationResponse, tonic::Status> {
        let req = pb::GetConversationRequest {
            contact_id: contact_id.into(),
            page_size,
            page_token: page_token.into(),
        };
        Ok(self
            .client
            .get_conversation(authed(req, &self.token))
            .await?
            .into_inner())
    }

    pub async fn mark_read(&mut self, message_id: &str) -> Result<pb::Message, tonic::Status> {
        let req = pb::MarkReadRequest {
            message_id: message_id.into(),
        };
        Ok(self
            .client
            .mark_read(authed(req, &self.token))
            .await?
            .into_inner())
    }

    pub async fn mark_conversation_read(
        &mut self,
        contact_id: &str,
        up_to: &str,
    ) -> Result<u64, tonic::Status> {
        let req = pb::MarkConversationReadRequest {
            contact_id: contact_id.into(),
            up_to_message_id: up_to.into(),
        };
        Ok(self
            .client
            .mark_conversation_read(authed(req, &self.token))
            .await?
            .into_inner()
            .unread_count)
    }

    /// The message with `id` as GetConversation shows it.
    pub async fn message(&mut self, contact_id: &str, id: &str) -> pb::Message {
        let mut token = String::new();
        loop {
            let page = self.get(contact_id, 200, &token).await.unwrap();
            if let Some(m) = page.messages.into_iter().find(|m| m.id == id) {
                return m;
            }
            assert!(
                !page.next_page_token.is_empty(),
                "message {id} not in its conversation"
            );
            token = page.next_page_token;
        }
    }

    /// Waits until the message reaches `status`.
    pub async fn wait_status(
        &mut self,
        m: &pb::Message,
        status: pb::MessageStatus,
        secs: u64,
    ) -> pb::Message {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let now = self.message(&m.contact_id, &m.id).await;
            if now.status == status as i32 {
                return now;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message stayed {:?} ({} {}), expected {status:?}",
                pb::MessageStatus::try_from(now.status),
                now.error_code,
                now.error_message
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Unread count of the conversation with `contact_id`, as ListConversations shows it.
    pub async fn unread(&mut self, contact_id: &str) -> u64 {
        let page = self.list(100, "").await.unwrap();
        page.conversations
            .iter()
            .find(|c| c.contact_id == contact_id)
            .map(|c| c.unread_count)
            .expect("conversation listed")
    }
}

pub struct AdminClient {
    pub client: MessagingAdminClient<Channel>,
    pub token: String,
}

impl AdminClient {
    pub async fn call<Q, R>(
        &mut self,
        f: impl for<'a> FnOnce(&'a mut MessagingAdminClient<Channel>, Request<Q>) -> Fut<'a, R>,
        msg: Q,
    ) -> Result<R, tonic::Status> {
        let req = authed(msg, &self.token);
        Ok(f(&mut self.client, req).await?.into_inner())
    }
}
