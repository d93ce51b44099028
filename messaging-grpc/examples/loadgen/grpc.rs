//! gRPC callers: a few HTTP/2 connections shared round-robin by the callers (one
//! connection for 64 callers would make its single-task framing the bottleneck), each
//! caller with its request and `authorization` metadata built before the clock runs.

use std::net::SocketAddr;

use commpro_messaging_api::v1::{self as pb, messaging_service_client::MessagingServiceClient};
use tonic::{
    Request,
    codegen::http::uri::PathAndQuery,
    metadata::{AsciiMetadataValue, MetadataValue},
    transport::Channel,
};

use crate::{
    driver::{Call, Step},
    echo,
};

/// `n` HTTP/2 connections to `addr`, opened now.
pub async fn channels(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(
            Channel::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    Ok(out)
}

pub fn bearer(token: &str) -> AsciiMetadataValue {
    MetadataValue::try_from(format!("Bearer {token}")).expect("a JWT is valid metadata")
}

fn authed<T>(msg: T, auth: &AsciiMetadataValue) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert("authorization", auth.clone());
    req
}

fn status(e: tonic::Status) -> String {
    format!("{:?}: {}", e.code(), e.message())
}

/// The tonic floor: one echo call.
pub struct EchoCaller {
    grpc: tonic::client::Grpc<Channel>,
    msg: echo::EchoMessage,
}

impl EchoCaller {
    pub fn new(channel: Channel) -> Self {
        Self {
            grpc: tonic::client::Grpc::new(channel),
            // About the size of a SendSms request.
            msg: echo::EchoMessage {
                payload: vec![b'x'; 120],
            },
        }
    }
}

impl Call for EchoCaller {
    async fn call(&mut self) -> Result<Step, String> {
        self.grpc.ready().await.map_err(|e| e.to_string())?;
        let codec = tonic_prost::ProstCodec::<echo::EchoMessage, echo::EchoMessage>::default();
        let resp = self
            .grpc
            .unary(
                Request::new(self.msg.clone()),
                PathAndQuery::from_static(echo::PATH),
                codec,
            )
            .await
            .map_err(status)?;
        if resp.get_ref().payload.len() != self.msg.payload.len() {
            return Err("the echo came back different".into());
        }
        Ok(Step::Done)
    }
}

/// One MessagingService call, with a ring of pre-built requests.
pub struct ServiceCaller<R> {
    client: MessagingServiceClient<Channel>,
    auth: AsciiMetadataValue,
    requests: Vec<R>,
    next: usize,
}

impl<R: Clone> ServiceCaller<R> {
    pub fn new(channel: Channel, token: &str, requests: Vec<R>) -> Self {
        Self {
            client: MessagingServiceClient::new(channel),
            auth: bearer(token),
            requests,
            next: 0,
        }
    }

    fn next_request(&mut self) -> Request<R> {
        self.next = (self.next + 1) % self.requests.len();
        authed(self.requests[self.next].clone(), &self.auth)
    }
}

impl Call for ServiceCaller<pb::SendSmsRequest> {
    async fn call(&mut self) -> Result<Step, String> {
        let req = self.next_request();
        let m = self.client.send_sms(req).await.map_err(status)?;
        if m.get_ref().id.is_empty() {
            return Err("SendSms answered without a message id".into());
        }
        Ok(Step::Done)
    }
}

/// Pages must be full: a short page would be a cheaper call than the one measured.
const PAGE: usize = 50;

impl Call for ServiceCaller<pb::ListConversationsRequest> {
    async fn call(&mut self) -> Result<Step, String> {
        let req = self.next_request();
        let page = self.client.list_conversations(req).await.map_err(status)?;
        let n = page.get_ref().conversations.len();
        if n != PAGE {
            return Err(format!("a page of {n} conversations, not {PAGE}"));
        }
        Ok(Step::Done)
    }
}

impl Call for ServiceCaller<pb::GetConversationRequest> {
    async fn call(&mut self) -> Result<Step, String> {
        let req = self.next_request();
        let page = self.client.get_conversation(req).await.map_err(status)?;
        let n = page.get_ref().messages.len();
        if n != PAGE {
            return Err(format!("a page of {n} messages, not {PAGE}"));
        }
        Ok(Step::Done)
    }
}
