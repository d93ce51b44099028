//! Only this machine may use the console: it mints tokens for any user. A loopback
//! peer alone is not enough — a tunnel such as ngrok (the very thing the console
//! replaces) or a local reverse proxy connects from loopback on behalf of anyone, and
//! a web page on another site can make a browser send requests to 127.0.0.1 (or to a
//! name it rebinds there). So the request must also name a loopback host, carry no
//! forwarding header, and, when a browser says where it comes from, come from a
//! loopback origin.

use std::net::IpAddr;

use axum::{extract::Request, middleware::Next, response::Response};
use hyper::{HeaderMap, StatusCode, header};

use crate::{client_ip::Peer, plain};

/// Headers a proxy or tunnel adds: their presence means someone else is asking.
const FORWARDING: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Answers 403 to anything but a local request.
pub(crate) async fn only_local(req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<Peer>().map(|p| p.0.ip());
    match refusal(peer, req.headers()) {
        None => next.run(req).await,
        Some(why) => {
            tracing::warn!(reason = why, "dev console request refused");
            plain::text(StatusCode::FORBIDDEN, why)
        }
    }
}

/// Why a request is not local, or `None` when it is.
fn refusal(peer: Option<IpAddr>, headers: &HeaderMap) -> Option<&'static str> {
    if !peer.is_some_and(|ip| ip.to_canonical().is_loopback()) {
        return Some("the dev console answers loopback clients only");
    }
    if FORWARDING.iter().any(|h| headers.contains_key(*h)) {
        return Some("the dev console does not answer through proxies or tunnels");
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !host.is_some_and(|h| is_loopback_authority(h)) {
        return Some("the dev console answers http://127.0.0.1 or http://localhost only");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let local = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(is_loopback_authority);
        if !local {
            return Some("the dev console does not answer other sites' pages");
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Some("the dev console does not answer other sites' pages");
    }
    None
}

/// `localhost`, `127.0.0.1`, `[::1]` and the like, with or without a port.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, tail)) if tail.is_empty() || tail.starts_with(':') => inside,
            _ => return false,
        },
        None => authority
            .split_once(':')
            .map_or(authority, |(host, _port)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const LOCAL: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn a_local_browser_or_fetcher_passes() {
        for host in [
            "127.0.0.1:3003",
            "localhost:3003",
            "[::1]:3003",
            "localhost",
        ] {
            assert_eq!(refusal(LOCAL, &headers(&[("host", host)])), None, "{host}");
        }
        let same_site = headers(&[
            ("host", "127.0.0.1:3003"),
            ("origin", "http://127.0.0.1:3003"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(refusal(LOCAL, &same_site), None);
        let v6: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            refusal(Some(v6), &headers(&[("host", "localhost:1")])),
            None
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let host = headers(&[("host", "127.0.0.1:3003")]);
        let remote: IpAddr = "10.0.0.7".parse().unwrap();
        assert!(refusal(Some(remote), &host).is_some(), "a LAN peer");
        assert!(refusal(None, &host).is_some(), "no peer known");
        let cases: &[&[(&str, &str)]] = &[
            // A tunnel (ngrok) connects from loopback with the public name and XFF.
            &[
                ("host", "abc.ngrok.app"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
            &[
                ("host", "127.0.0.1:3003"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
            &[("host", "127.0.0.1:3003"), ("forwarded", "for=203.0.113.9")],
            // DNS rebinding: a page's own name, resolved to 127.0.0.1.
            &[("host", "evil.example:3003")],
            &[("host", "127.0.0.1.evil.example")],
            &[("host", "[::1]x")],
            &[],
            // Another site's page calling through the browser.
            &[
                ("host", "127.0.0.1:3003"),
                ("origin", "https://evil.example"),
            ],
            &[("host", "127.0.0.1:3003"), ("origin", "null")],
            &[("host", "127.0.0.1:3003"), ("sec-fetch-site", "cross-site")],
        ];
        for case in cases {
            let mut h = HeaderMap::new();
            for (k, v) in *case {
                h.insert(*k, HeaderValue::from_str(v).unwrap());
            }
            assert!(refusal(LOCAL, &h).is_some(), "{case:?}");
        }
    }
}
