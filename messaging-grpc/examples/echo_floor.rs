//! The tonic floor of `loadgen`: a bare tonic server with one echo method, run as its
//! own process so its CPU and memory are its own. Prints `listening on ADDR` (port 0
//! unless an address is given), then serves until killed.
//!
//! cargo run --release -p messaging-grpc --example echo_floor -- [127.0.0.1:0]

#[path = "common/echo.rs"]
mod echo;
#[path = "common/floor.rs"]
mod floor;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = floor::listen().await?;
    // The same socket option the core sets on accepted connections (TCP_NODELAY).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(echo::EchoServer)
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
