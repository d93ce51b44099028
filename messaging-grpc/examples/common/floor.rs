//! What the floors of `loadgen` share: their listening socket, on the address given as
//! the first argument (`127.0.0.1:0` unless given), announced on stdout as
//! `listening on ADDR` for `loadgen` to read.

use tokio::net::TcpListener;

/// Binds the address from the command line and prints `listening on ADDR`.
pub async fn listen() -> anyhow::Result<TcpListener> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    Ok(listener)
}
