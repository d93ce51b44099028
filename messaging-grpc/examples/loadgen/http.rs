//! HTTP/1.1 callers: one keep-alive connection per caller (64 callers, 64
//! connections), requests pre-built (JSON encoded, webhooks pre-signed) so the timed
//! loop only clones bytes.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use http_body_util::{BodyExt, Full};
use hyper::{
    HeaderMap, Method, Request, StatusCode, Uri, body::Bytes, client::conn::http1::SendRequest,
    header,
};
use hyper_util::rt::TokioIo;

use crate::driver::{Call, Step};

/// A request built once and sent many times.
#[derive(Clone)]
pub struct Prebuilt {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Prebuilt {
    pub fn new(method: Method, addr: SocketAddr, path: &str, body: Bytes) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::HOST,
            addr.to_string()
                .parse()
                .expect("an address is a valid Host"),
        );
        Self {
            method,
            uri: path.parse().expect("a valid path"),
            headers,
            body,
        }
    }

    pub fn header(mut self, name: header::HeaderName, value: &str) -> Self {
        self.headers
            .insert(name, value.parse().expect("a valid header value"));
        self
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// Requests each sent once, shared by all callers (signed webhooks: a MessageSid
/// must not repeat, or the duplicate path is measured instead).
pub struct Pool {
    items: Vec<Prebuilt>,
    next: AtomicUsize,
}

impl Pool {
    pub fn new(items: Vec<Prebuilt>) -> Arc<Self> {
        Arc::new(Self {
            items,
            next: AtomicUsize::new(0),
        })
    }

    pub fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.items.len())
    }
}

pub enum Requests {
    /// The caller cycles through its own requests.
    Ring(Vec<Prebuilt>, usize),
    /// The callers take the next unused request of a shared pool.
    Pool(Arc<Pool>),
}

pub struct HttpCaller {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
    requests: Requests,
    expect: StatusCode,
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/1.1 handshake with {addr}: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

impl HttpCaller {
    /// Opens the caller's connection now, outside the timed loop.
    pub async fn new(
        addr: SocketAddr,
        requests: Requests,
        expect: StatusCode,
    ) -> anyhow::Result<Self> {
        let sender = connect(addr).await.map_err(anyhow::Error::msg)?;
        Ok(Self {
            addr,
            sender: Some(sender),
            requests,
            expect,
        })
    }

    fn next_request(&mut self) -> Option<Request<Full<Bytes>>> {
        match &mut self.requests {
            Requests::Ring(items, i) => {
                *i = (*i + 1) % items.len();
                Some(items[*i].request())
            }
            Requests::Pool(pool) => {
                let i = pool.next.fetch_add(1, Ordering::Relaxed);
                pool.items.get(i).map(Prebuilt::request)
            }
        }
    }
}

impl Call for HttpCaller {
    async fn call(&mut self) -> Result<Step, String> {
        let Some(req) = self.next_request() else {
            return Ok(Step::Exhausted);
        };
        // A connection the server closed is an error once, then reopened.
        let mut sender = match self.sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => connect(self.addr).await?,
        };
        let result = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if status != self.expect {
                return Err(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ));
            }
            Ok(Step::Done)
        }
        .await;
        self.sender = Some(sender);
        result
    }
}
