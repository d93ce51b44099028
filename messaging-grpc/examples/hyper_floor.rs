//! The HTTP floor of `loadgen`: a bare hyper 1 server (HTTP/1.1, keep-alive) answering
//! every request `200 ok` after reading its body — the gateway's stack with no work.
//! Its own process, so its CPU and memory are its own. Prints `listening on ADDR`.
//!
//! cargo run --release -p messaging-grpc --example hyper_floor -- [127.0.0.1:0]

use std::convert::Infallible;

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

#[path = "common/floor.rs"]
mod floor;

async fn answer(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body as the gateway does, so a POST's upload is part of the floor.
    let _ = req.into_body().collect().await;
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = floor::listen().await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}
