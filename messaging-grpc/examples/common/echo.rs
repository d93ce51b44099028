//! A bare tonic echo service, written out by hand (no proto file, no build script):
//! `/bench.Echo/Echo` answers its request message unchanged. It is the tonic floor of
//! `loadgen`: the same HTTP/2 + protobuf + tonic stack as the core, with no work.

#![allow(dead_code)] // the server and the loader each use one half

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use tonic::{
    codegen::{Body, BoxFuture, Service, StdError, http},
    server::{Grpc, NamedService, UnaryService},
};

/// The echoed message: a payload of about a SendSms request's size.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoMessage {
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
}

pub const PATH: &str = "/bench.Echo/Echo";

/// The tower service tonic's router serves.
#[derive(Clone, Default)]
pub struct EchoServer;

impl NamedService for EchoServer {
    const NAME: &'static str = "bench.Echo";
}

struct Echo;

impl UnaryService<EchoMessage> for Echo {
    type Response = EchoMessage;
    type Future = BoxFuture<tonic::Response<EchoMessage>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<EchoMessage>) -> Self::Future {
        Box::pin(async move { Ok(tonic::Response::new(request.into_inner())) })
    }
}

impl<B> Service<http::Request<B>> for EchoServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != PATH {
            return Box::pin(async { Ok(tonic::Status::unimplemented("").into_http()) });
        }
        Box::pin(async move {
            let mut grpc =
                Grpc::new(tonic_prost::ProstCodec::<EchoMessage, EchoMessage>::default());
            Ok(grpc.unary(Echo, req).await)
        })
    }
}
