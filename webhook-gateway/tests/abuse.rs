#![allow(clippy::unwrap_used)]

//! The gateway binary under abuse, as its own process (so its memory can be read from
//! /proc): slowloris headers, giant and many-field forms, broken percent-encoding,
//! duplicate keys, the wrong Content-Type, HTTP/1.0, pipelining and a thousand idle
//! connections. Throughout, other clients are served, nothing answers 5xx, and the
//! resident memory stays bounded. Raw sockets throughout: these are requests no
//! well-behaved client library would send.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// The header timeout this test runs the gateway with (it is what the test is about).
const HEADER_TIMEOUT_SECS: u64 = 2;
/// A generous bound: the gateway idles at a few MB.
const MAX_RSS_KB: u64 = 200 * 1024;

struct Gateway {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// The `webhook-gateway` binary on a free loopback port, its core nowhere (every
    /// request here is refused before a core call would be made).
    /// One source may hold every connection here: these tests are about the whole
    /// server's bounds (the per-source cap has its own test).
    fn start() -> Self {
        Self::start_with(&[
            (
                "GATEWAY_READ_TIMEOUT_SECS",
                &HEADER_TIMEOUT_SECS.to_string(),
            ),
            ("GATEWAY_MAX_CONNECTIONS_PER_SOURCE", "100000"),
        ])
    }

    fn start_with(settings: &[(&str, &str)]) -> Self {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_webhook-gateway"))
            .env_clear()
            .env("GATEWAY_HTTP_ADDR", addr.to_string())
            .env("MESSAGING_CORE_URL", "http://127.0.0.1:9")
            .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000001")
            .env("TWILIO_AUTH_TOKEN", "abuse-test-auth-token-0123456789")
            .env("JWT_HS256_SECRET", "abuse-test-jwt-secret-0123456789abcdef")
            .env("GATEWAY_METRICS_ADDR", "off")
            .envs(settings.iter().copied())
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let gw = Self { child, addr };
        let started = Instant::now();
        while gw.get("/healthz").0 != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "gateway did not start"
            );
            thread::sleep(Duration::from_millis(50));
        }
        gw
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// A connection from another loopback address (another source).
    fn connect_from(&self, source: &str) -> TcpStream {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let from: SocketAddr = format!("{source}:0").parse().unwrap();
        socket.bind(&from.into()).unwrap();
        socket.connect(&self.addr.into()).unwrap();
        let s: TcpStream = socket.into();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// The status line's code of the answer on `s`, read without waiting for the end.
    fn status_on(s: &mut TcpStream) -> u16 {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n") && head.len() < 200 {
            match s.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => break,
            }
        }
        status_of(&String::from_utf8_lossy(&head))
    }

    /// One request on a fresh connection: the status and the whole answer.
    fn send(&self, raw: &[u8]) -> (u16, String) {
        let mut s = self.connect();
        // The gateway may answer (413) and close before the whole body is written.
        let _ = s.write_all(raw);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer).into_owned();
        (status_of(&text), text)
    }

    fn get(&self, path: &str) -> (u16, String) {
        match TcpStream::connect(self.addr) {
            Ok(_) => self.send(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            ),
            Err(_) => (0, String::new()),
        }
    }

    /// A form POSTed to the inbound webhook with a well-formed (wrong) signature, so
    /// the body is read and checked.
    fn webhook(&self, content_type: &str, body: &[u8]) -> u16 {
        let mut raw = format!(
            "POST /webhook/sms HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {content_type}\r\n\
             X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        self.send(&raw).0
    }

    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Other clients are still served, and the process is within its memory bound.
    #[track_caller]
    fn assert_healthy(&self, after: &str) {
        assert_eq!(self.get("/healthz").0, 200, "not serving after {after}");
        let rss = self.rss_kb();
        println!("{after}: gateway RSS {rss} kB");
        assert!(rss < MAX_RSS_KB, "RSS {rss} kB after {after}");
    }
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[track_caller]
fn assert_refused(status: u16, what: &str) {
    assert!(
        (400..500).contains(&status),
        "{what}: expected a 4xx refusal, got {status}"
    );
}

#[test]
fn the_gateway_survives_abuse_with_bounded_memory() {
    let gw = Gateway::start();
    println!("idle: gateway RSS {} kB", gw.rss_kb());

    // Slowloris: 50 clients trickling their headers. Each is cut off after the header
    // timeout; meanwhile everyone else is served.
    let slow: Vec<_> = (0..50)
        .map(|_| {
            let mut s = gw.connect();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let trickle = thread::spawn(move || {
        let mut open = slow;
        let mut closed = 0;
        for _ in 0..(HEADER_TIMEOUT_SECS * 4 + 8) {
            thread::sleep(Duration::from_millis(500));
            open.retain_mut(|s| {
                let alive = s.write_all(b"X-Slow: a\r\n").is_ok() && {
                    s.set_nonblocking(true).unwrap();
                    let mut b = [0u8; 64];
                    let r = s.read(&mut b);
                    s.set_nonblocking(false).unwrap();
                    matches!(r, Err(ref e) if e.kind() == ErrorKind::WouldBlock)
                };
                if !alive {
                    closed += 1;
                }
                alive
            });
            if open.is_empty() {
                break;
            }
        }
        closed
    });
    gw.assert_healthy("slowloris started");
    let closed = trickle.join().unwrap();
    assert_eq!(closed, 50, "every trickling connection was closed");
    println!(
        "slowloris: 50 connections closed within {:?}",
        started.elapsed()
    );

    // A giant form: refused by its declared length, and again when it lies about it.
    let mut huge = format!(
        "POST /webhook/sms HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nContent-Length: {}\r\n\r\n",
        50 * 1024 * 1024
    )
    .into_bytes();
    huge.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    assert_refused(gw.send(&huge).0, "a 50 MB form");
    let mut chunked = b"POST /webhook/sms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\
        Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..64 {
        chunked.extend_from_slice(b"8000\r\n");
        chunked.extend(std::iter::repeat_n(b'b', 0x8000));
        chunked.extend_from_slice(b"\r\n");
    }
    assert_refused(gw.send(&chunked).0, "a 2 MB chunked form");
    gw.assert_healthy("giant forms");

    // Forms no Twilio would send: all refused, none a 5xx.
    let form = "application/x-www-form-urlencoded";
    let many: String = (0..10_000).map(|i| format!("f{i}=1&")).collect();
    let few_short: String = "a=1&".repeat(10_000);
    for (what, ct, body) in [
        ("ten thousand fields", form, many.as_bytes()),
        ("ten thousand duplicate keys", form, few_short.as_bytes()),
        (
            "invalid percent-encoding",
            form,
            b"MessageSid=%ZZ&Body=%&From=%E2%82".as_slice(),
        ),
        (
            "duplicate keys",
            form,
            b"MessageSid=SM1&MessageSid=SM2&AccountSid=AC1&AccountSid=AC2".as_slice(),
        ),
        (
            "wrong content type",
            "application/json",
            b"{\"MessageSid\":\"SM1\"}".as_slice(),
        ),
        ("no content type", "", b"MessageSid=SM1".as_slice()),
        (
            "binary garbage",
            form,
            &[0u8, 0xff, 0xfe, b'=', 0x80, b'&', 0xc3],
        ),
    ] {
        assert_refused(gw.webhook(ct, body), what);
    }
    gw.assert_healthy("malformed forms");

    // HTTP/1.0: answered, then closed.
    let (status, answer) = gw.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200, "{answer}");
    // Pipelined requests: all answered, in order, on one connection.
    let (_, answer) = gw.send(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let statuses: Vec<u16> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| status_of(&answer[i..]))
        .collect();
    assert_eq!(statuses, [200, 404, 200], "{answer}");

    // A thousand idle connections: others are still served, memory stays bounded, and
    // the idle ones are closed after the header timeout.
    let idle: Vec<TcpStream> = (0..1000).map(|_| gw.connect()).collect();
    gw.assert_healthy("a thousand idle connections");
    let started = Instant::now();
    let mut closed = 0;
    for mut s in idle {
        let mut b = [0u8; 16];
        if matches!(s.read(&mut b), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 1000, "idle connections are closed");
    println!(
        "idle: 1000 connections closed within {:?}",
        started.elapsed()
    );
    gw.assert_healthy("the idle connections");
}

/// At GATEWAY_MAX_CONNECTIONS, a new connection waits (in the listen backlog) until
/// one of the open ones ends, and is then served.
#[test]
fn connections_past_the_limit_wait_for_a_free_slot() {
    let gw = Gateway::start_with(&[
        ("GATEWAY_MAX_CONNECTIONS", "10"),
        ("GATEWAY_READ_TIMEOUT_SECS", "120"),
    ]);
    let mut idle: Vec<TcpStream> = (0..10).map(|_| gw.connect()).collect();
    // Give the accept loop the ten.
    thread::sleep(Duration::from_millis(300));
    let mut waiting = gw.connect();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut b = [0u8; 256];
    let r = waiting.read(&mut b);
    assert!(
        matches!(r, Err(ref e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the eleventh connection was served while ten were open: {r:?}"
    );
    // One ends: the waiting one is served.
    drop(idle.pop());
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = waiting.read_to_end(&mut answer);
    assert_eq!(status_of(&String::from_utf8_lossy(&answer)), 200);
}

/// Sends `headers` and then up to `body_bytes` of body in 64 KB writes, as a client
/// that does not wait for an answer would; returns the status answered and how much of
/// the body the gateway let in before closing (what the kernel buffers included).
fn post_without_waiting(
    mut s: TcpStream,
    headers: &str,
    body_bytes: usize,
) -> (u16, usize, TcpStream) {
    s.write_all(headers.as_bytes()).unwrap();
    let status = Gateway::status_on(&mut s);
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    while sent < body_bytes {
        match s.write(&chunk) {
            Ok(n) if n > 0 => sent += n,
            _ => break,
        }
    }
    (status, sent, s)
}

/// The measurement, as a test: 60 connections POST /api/media with a bad
/// token and 4 MB of a declared 5 MB body. Each is refused on its headers (401 for a
/// token that is not a JWT; for a JWT-shaped one the core's verdict, here 503 as the
/// core is down) and its body is never read: the gateway's memory does not grow by
/// the bodies (before: +271 MB), and other clients are served meanwhile.
#[test]
fn uploads_with_bad_credentials_are_refused_before_their_bodies_are_read() {
    let gw = Gateway::start_with(&[("GATEWAY_READ_TIMEOUT_SECS", "20")]);
    let before = gw.rss_kb();
    let jwt_shaped =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLW5vYm9keS0wMTIzNDU2Nzg5";
    let workers: Vec<_> = (0..60)
        .map(|i| {
            let s = gw.connect();
            let token = if i % 2 == 0 {
                "not-a-token"
            } else {
                jwt_shaped
            };
            let headers = format!(
                "POST /api/media HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: image/png\r\nContent-Length: {}\r\n\r\n",
                5 * 1024 * 1024
            );
            thread::spawn(move || post_without_waiting(s, &headers, 4 * 1024 * 1024))
        })
        .collect();
    let done: Vec<(u16, usize, TcpStream)> =
        workers.into_iter().map(|w| w.join().unwrap()).collect();
    let grown = gw.rss_kb().saturating_sub(before);
    let let_in: usize = done.iter().map(|(_, sent, _)| sent).sum();
    println!(
        "60 uploads with bad tokens: gateway RSS +{grown} kB; {} kB of body written before the gateway closed (kernel buffers)",
        let_in / 1024
    );
    for (i, (status, _, _)) in done.iter().enumerate() {
        let expected = if i % 2 == 0 { 401 } else { 503 };
        assert_eq!(*status, expected, "connection {i}");
    }
    // 60 bodies of 4 MB would be 240 MB; a few MB of allocator noise is not that.
    assert!(grown < 32 * 1024, "RSS grew by {grown} kB");
    gw.assert_healthy("uploads with bad tokens");
}

/// A body that trickles in (a byte a second, never pausing past the idle timeout)
/// is cut off at the whole-body deadline, not when it finally ends.
#[test]
fn a_trickled_body_is_cut_off_at_the_whole_body_deadline() {
    let gw = Gateway::start_with(&[
        ("GATEWAY_READ_TIMEOUT_SECS", "2"),
        ("GATEWAY_BODY_TIMEOUT_SECS", "3"),
    ]);
    let mut s = gw.connect();
    s.write_all(
        b"POST /api/messages/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x.y.z\r\n\
          Content-Type: application/json\r\nContent-Length: 60\r\n\r\n",
    )
    .unwrap();
    let writer = {
        let mut w = s.try_clone().unwrap();
        thread::spawn(move || {
            // 60 bytes over 60 s, a byte a second: within the idle timeout every time.
            for _ in 0..60 {
                if w.write_all(b" ").is_err() {
                    return;
                }
                thread::sleep(Duration::from_secs(1));
            }
        })
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let status = Gateway::status_on(&mut s);
    assert_eq!(status, 408, "the trickle was not cut off within 30 s");
    drop(s);
    drop(writer);
}

/// One source holds at most GATEWAY_MAX_CONNECTIONS_PER_SOURCE connections: the next
/// is answered 429 naming the limit and closed, while another source is served; a
/// slot given back is usable again.
#[test]
fn one_source_cannot_take_every_connection() {
    let gw = Gateway::start_with(&[
        ("GATEWAY_MAX_CONNECTIONS_PER_SOURCE", "5"),
        ("GATEWAY_READ_TIMEOUT_SECS", "60"),
    ]);
    let mut idle: Vec<TcpStream> = (0..5).map(|_| gw.connect_from("127.0.0.2")).collect();
    thread::sleep(Duration::from_millis(300));
    let mut over = gw.connect_from("127.0.0.2");
    let mut answer = String::new();
    let _ = over.read_to_string(&mut answer);
    assert_eq!(status_of(&answer), 429, "{answer}");
    assert!(
        answer.contains("GATEWAY_MAX_CONNECTIONS_PER_SOURCE"),
        "{answer}"
    );
    // Another source is served.
    assert_eq!(gw.get("/healthz").0, 200);
    // A slot given back is free again.
    drop(idle.pop());
    thread::sleep(Duration::from_millis(300));
    let mut again = gw.connect_from("127.0.0.2");
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = again.read_to_string(&mut answer);
    assert_eq!(status_of(&answer), 200, "{answer}");
}

/// Webhooks that are not Twilio's, flooding in at once from 60 connections: unsigned
/// ones are counted and refused before their bodies are read, wrongly signed ones
/// (the body must be read to check them) hold at most the webhook body limit each,
/// for at most the read timeout. All are refused (403/429), memory stays bounded.
#[test]
fn a_flood_of_webhooks_not_signed_by_twilio_holds_no_memory() {
    let gw = Gateway::start_with(&[
        ("GATEWAY_READ_TIMEOUT_SECS", "5"),
        ("GATEWAY_RATE_LIMIT_PER_SEC", "5"),
    ]);
    let before = gw.rss_kb();
    let body_len = 60 * 1024;
    let workers: Vec<_> = (0..60)
        .map(|i| {
            let s = gw.connect();
            let signature = if i % 2 == 0 { "" } else { "X-Twilio-Signature: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n" };
            let headers = format!(
                "POST /webhook/sms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\n{signature}Content-Length: {body_len}\r\n\r\n"
            );
            thread::spawn(move || {
                let mut s = s;
                s.write_all(headers.as_bytes()).unwrap();
                let _ = s.write_all(&vec![b'a'; body_len]);
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                status_of(&answer)
            })
        })
        .collect();
    let statuses: Vec<u16> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let grown = gw.rss_kb().saturating_sub(before);
    println!("60 webhooks not signed by Twilio: gateway RSS +{grown} kB; answers {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 403 | 429)),
        "{statuses:?}"
    );
    assert!(grown < 32 * 1024, "RSS grew by {grown} kB");
    gw.assert_healthy("a flood of forged webhooks");
}
