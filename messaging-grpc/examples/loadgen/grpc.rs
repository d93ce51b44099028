//! gRPC callers: a few HTTP/2 connections shared round-robin by the callers (one
//! connection for 64 callers would make its single-task framing the bottleneck), each
//! caller with its requests encoded and its `authorization` metadata built before the
//! clock runs.

use std::net::SocketAddr;

#[cfg(test)]
use commpro_messaging_api::v1 as pb;
use prost::bytes::{Buf as _, BufMut as _, Bytes};
use tonic::{
    Request,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
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

fn status(e: tonic::Status) -> String {
    format!("{:?}: {}", e.code(), e.message())
}

/// Pre-encoded protobuf out, raw bytes back: the loader neither encodes nor decodes a
/// message per call (it checks answers by scanning their top-level fields), so its
/// own CPU stays out of the figures it measures.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

pub struct RawEncoder;
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// How many top-level fields numbered `field` an encoded message has (`None`: not
/// well-formed protobuf).
pub fn count_field(mut buf: &[u8], field: u64) -> Option<usize> {
    fn varint(buf: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut n = 0;
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        match key & 7 {
            0 => {
                varint(&mut buf)?;
            }
            1 => buf = buf.get(8..)?,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).ok()?;
                buf = buf.get(len..)?;
            }
            5 => buf = buf.get(4..)?,
            _ => return None,
        }
        if key >> 3 == field {
            n += 1;
        }
    }
    Some(n)
}

/// What a caller checks of each answer.
#[derive(Clone, Copy)]
pub enum Expect {
    /// The echo of the request, byte for byte.
    Echo,
    /// Exactly this many top-level fields of this number (a page of 50), or at least
    /// one (a message with its id).
    Fields { field: u64, count: Option<usize> },
}

/// One unary method called with a ring of pre-encoded requests; a caller per task.
pub struct RawCaller {
    grpc: tonic::client::Grpc<Channel>,
    path: PathAndQuery,
    auth: Option<AsciiMetadataValue>,
    requests: Vec<Bytes>,
    next: usize,
    expect: Expect,
}

impl RawCaller {
    pub fn new(
        channel: Channel,
        path: &'static str,
        token: Option<&str>,
        requests: Vec<Bytes>,
        expect: Expect,
    ) -> Self {
        Self {
            grpc: tonic::client::Grpc::new(channel),
            path: PathAndQuery::from_static(path),
            auth: token.map(bearer),
            requests,
            next: 0,
            expect,
        }
    }

    /// The tonic floor: echo a payload of about a SendSms request's size.
    pub fn echo(channel: Channel) -> Self {
        let payload = echo::EchoMessage {
            payload: vec![b'x'; 120],
        };
        let bytes = Bytes::from(prost::Message::encode_to_vec(&payload));
        Self::new(channel, echo::PATH, None, vec![bytes], Expect::Echo)
    }

    /// Callers of a `MessagingService` method from protobuf requests.
    pub fn service<M: prost::Message>(
        channel: Channel,
        path: &'static str,
        token: &str,
        requests: &[M],
        expect: Expect,
    ) -> Self {
        let encoded = requests
            .iter()
            .map(|m| Bytes::from(m.encode_to_vec()))
            .collect();
        Self::new(channel, path, Some(token), encoded, expect)
    }
}

impl Call for RawCaller {
    async fn call(&mut self) -> Result<Step, String> {
        self.next = (self.next + 1) % self.requests.len();
        let body = self.requests[self.next].clone();
        let mut req = Request::new(body);
        if let Some(auth) = &self.auth {
            req.metadata_mut().insert("authorization", auth.clone());
        }
        self.grpc.ready().await.map_err(|e| e.to_string())?;
        let answer = self
            .grpc
            .unary(req, self.path.clone(), RawCodec)
            .await
            .map_err(status)?
            .into_inner();
        match self.expect {
            Expect::Echo if answer == self.requests[self.next] => Ok(Step::Done),
            Expect::Echo => Err("the echo came back different".into()),
            Expect::Fields { field, count } => match (count_field(&answer, field), count) {
                (Some(n), Some(want)) if n == want => Ok(Step::Done),
                (Some(n), None) if n > 0 => Ok(Step::Done),
                (got, want) => Err(format!(
                    "an answer with {got:?} fields {field}, not {}",
                    want.map_or("one or more".to_owned(), |w| w.to_string())
                )),
            },
        }
    }
}

/// Pages must be full: a short page would be a cheaper call than the one measured.
pub const PAGE: usize = 50;

pub const SEND_SMS: &str = "/commpro.messaging.v1.MessagingService/SendSms";
pub const LIST_CONVERSATIONS: &str = "/commpro.messaging.v1.MessagingService/ListConversations";
pub const GET_CONVERSATION: &str = "/commpro.messaging.v1.MessagingService/GetConversation";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_top_level_fields() {
        let page = pb::ListConversationsResponse {
            conversations: vec![pb::Conversation::default(); 3],
            next_page_token: "t".into(),
        };
        let bytes = prost::Message::encode_to_vec(&page);
        assert_eq!(count_field(&bytes, 1), Some(3));
        assert_eq!(count_field(&bytes, 2), Some(1));
        assert_eq!(count_field(&bytes[..bytes.len() - 1], 2), None);
    }
}
