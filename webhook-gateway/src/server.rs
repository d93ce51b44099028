//! The accept loop: one HTTP/1 connection task per client, each tracked until it ends
//! and its end logged; on shutdown, in-flight requests get the drain time to finish.
//! At most `max_connections` are served at once: past that, connections wait in the
//! kernel's listen backlog until one ends, so a flood of idle sockets costs the
//! process neither memory nor file descriptors beyond the bound. One source holds at
//! most `per_source` of them ([`SourceSlots`]): past that, its new connection gets a
//! 429 and is closed before a byte of it is read.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use hyper::{Request, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::{JoinError, JoinSet},
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::{client_ip::Peer, conn_limit::SourceSlots};

/// How long in-flight requests get once shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// Limits of the accept loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// How long a client may take to send a request's headers (slowloris).
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// What a connection over its source's share is told.
const TOO_MANY_FROM_SOURCE: &str =
    "too many open connections from this address (GATEWAY_MAX_CONNECTIONS_PER_SOURCE)\n";

/// Serves `app` on `listener` until `shutdown` is cancelled, then drains.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    per_source: Arc<SourceSlots>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        // A free slot first, then a connection: at the limit, nothing is accepted.
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(ended) = connections.join_next() => { report(ended); continue; }
            slot = slots.clone().acquire_owned() => slot?,
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(ended) = connections.join_next() => report(ended),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match per_source.acquire(peer.ip()) {
                    Some(source) => {
                        let conn = connection(stream, peer, app.clone(), limits.header_timeout, &graceful);
                        connections.spawn(held(conn, (slot, source)));
                    }
                    None => {
                        connections.spawn(held(refuse(stream), slot));
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drain(graceful, connections).await;
    Ok(())
}

/// A connection over its source's share: the 429 (it fits any socket's send buffer,
/// so the write never waits on the client), then closed. Nothing of it is read.
async fn refuse(mut stream: TcpStream) -> hyper::Result<()> {
    let _ = stream.set_nodelay(true);
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain; charset=utf-8\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{TOO_MANY_FROM_SOURCE}",
        TOO_MANY_FROM_SOURCE.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        // What the client already sent is read (a few KB at most) and dropped, so that
        // closing does not reset the connection before it reads the answer.
        let mut sink = [0u8; 4096];
        for _ in 0..4 {
            if tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? == 0 {
                break;
            }
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
    Ok(())
}

/// `conn`, holding its slot(s) until it ends.
async fn held<F: Future, S: Send>(conn: F, slot: S) -> F::Output {
    let ended = conn.await;
    drop(slot);
    ended
}

/// One client's connection, watched for the graceful shutdown. Each request carries
/// the peer's address (the rate limit counts by it).
fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    graceful: &GracefulShutdown,
) -> impl Future<Output = hyper::Result<()>> + Send + 'static {
    // Small answers must not wait for delayed ACKs.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        app.clone().oneshot(req)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    graceful.watch(conn)
}

/// Lets open connections finish their requests for up to [`DRAIN`], then closes the
/// rest.
async fn drain(graceful: GracefulShutdown, mut connections: JoinSet<hyper::Result<()>>) {
    let finished = tokio::time::timeout(DRAIN, async {
        graceful.shutdown().await;
        while let Some(ended) = connections.join_next().await {
            report(ended);
        }
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            open = connections.len(),
            "gateway connections still open after the drain deadline; closing"
        );
        connections.shutdown().await;
    }
}

/// How a connection task ended, in the log.
fn report(ended: Result<hyper::Result<()>, JoinError>) {
    match ended {
        Ok(Ok(())) => tracing::trace!("connection closed"),
        Ok(Err(e)) => tracing::debug!(error = %e, "connection ended with an error"),
        Err(e) if e.is_panic() => tracing::error!(error = %e, "connection task panicked"),
        Err(e) => tracing::debug!(error = %e, "connection task cancelled"),
    }
}
