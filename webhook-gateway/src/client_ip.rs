//! Which address a request comes from, for the per-source rate limit. Behind a load
//! balancer every connection comes from the balancer; when its address is listed in
//! GATEWAY_TRUSTED_PROXIES, the client is the nearest address in X-Forwarded-For that
//! is not itself a trusted proxy. Addresses a client wrote further left are never
//! believed: only the hops our own proxies appended count.
//!
//! Limits count by [`source_key`]: an IPv4 address, or an IPv6 address's /64. One
//! IPv6 host is routinely given a whole /64, so counting by /128 would hand it 2^64
//! budgets.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use hyper::HeaderMap;
use ipnet::IpNet;

/// The TCP peer of a request's connection, put in its extensions by the server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub SocketAddr);

/// The address the rate limit counts a request against.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Hops in order, across repeated headers: client, proxy1, proxy2, …
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// What the per-source limits (requests and connections) count `ip` against: an IPv4
/// address as it is (IPv4-mapped IPv6 included), an IPv6 address's /64 network.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
    }
}

/// GATEWAY_TRUSTED_PROXIES: a comma list of addresses or CIDR blocks.
pub fn parse_trusted(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{s}: expected an IP address or a CIDR block such as 10.0.0.0/8")
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_taken_as_they_are() {
        let h = xff(&["203.0.113.9"]);
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_counts() {
        let trusted = parse_trusted("10.0.0.0/8, 192.0.2.1").unwrap();
        // A client spoofing a leftmost entry does not get to choose its bucket.
        let h = xff(&["1.2.3.4, 203.0.113.9", "10.1.2.3"]);
        assert_eq!(client_ip(ip("192.0.2.1"), &h, &trusted), ip("203.0.113.9"));
        // Only proxies in the chain: the first hop.
        let h = xff(&["10.9.9.9, 10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        // Garbage hops are skipped.
        let h = xff(&["unknown, 203.0.113.7"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        let a = source_key(ip("2001:db8:1:2:aaaa::1"));
        let b = source_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_eq!(a, b);
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_ne!(a, source_key(ip("2001:db8:1:3::1")));
        assert_eq!(source_key(ip("203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(source_key(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_list_errors_name_the_entry() {
        assert!(
            parse_trusted("10.0.0.0/33")
                .unwrap_err()
                .contains("10.0.0.0/33")
        );
        assert_eq!(parse_trusted("::1, 127.0.0.1").unwrap().len(), 2);
        assert!(parse_trusted("").unwrap().is_empty());
    }
}
