//! Which addresses inbound media may never be downloaded from: everything the IANA
//! special-purpose address registries (RFC 6890 and its updates) do not mark globally
//! reachable, plus multicast and the reserved `240.0.0.0/4`. Addresses that carry an
//! IPv4 address inside an IPv6 one (IPv4-mapped, NAT64) are judged by that IPv4 address,
//! so `64:ff9b::a9fe:a9fe` is 169.254.169.254 and refused like it.
//!
//! The blocks are matched with `ipnet` (the crate the gateway's trusted-proxy list uses).
//! Crates that classify addresses as "global" (`ip_network`, std's unstable
//! `IpAddr::is_global`) count NAT64 and multicast with global scope as global, which is
//! exactly what an SSRF guard must not do, so the table below is the registry itself.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::LazyLock,
};

use ipnet::{Ipv4Net, Ipv6Net};

/// IPv4 blocks that are not globally reachable, or not unicast.
const V4_BLOCKED: &[&str] = &[
    "0.0.0.0/8",       // "this network"
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // carrier-grade NAT
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local (cloud metadata services live here)
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation
    "192.88.99.0/24",  // 6to4 relay anycast (deprecated)
    "192.168.0.0/16",  // private
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
];

/// IPv6 blocks that are not globally reachable, or not unicast.
const V6_BLOCKED: &[&str] = &[
    "::/96",          // unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d
    "64:ff9b:1::/48", // local-use NAT64
    "100::/64",       // discard-only
    "2001::/23",      // IETF protocol assignments (Teredo, ORCHID, …)
    "2001:db8::/32",  // documentation
    "2002::/16",      // 6to4: tunnels to any IPv4 address
    "3fff::/20",      // documentation
    "5f00::/16",      // segment routing SIDs
    "fc00::/7",       // unique local
    "fe80::/10",      // link-local
    "fec0::/10",      // site-local (deprecated)
    "ff00::/8",       // multicast
];

/// NAT64's well-known prefix: the last 32 bits are the IPv4 address reached.
const NAT64: &str = "64:ff9b::/96";

static BLOCKED_V4: LazyLock<Vec<Ipv4Net>> = LazyLock::new(|| parse_all(V4_BLOCKED));
static BLOCKED_V6: LazyLock<Vec<Ipv6Net>> = LazyLock::new(|| parse_all(V6_BLOCKED));
static NAT64_PREFIX: LazyLock<Ipv6Net> =
    LazyLock::new(|| NAT64.parse().expect("the NAT64 prefix is a valid block"));

fn parse_all<T: std::str::FromStr>(blocks: &[&str]) -> Vec<T> {
    blocks
        .iter()
        .map(|b| b.parse().unwrap_or_else(|_| panic!("{b} is a valid block")))
        .collect()
}

/// True for any address a server-side download must not reach: private, loopback,
/// link-local, shared, reserved, documentation, benchmarking, multicast, and IPv6
/// forms that lead to one of those.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => v6_internal(v6),
    }
}

fn v4_internal(ip: Ipv4Addr) -> bool {
    BLOCKED_V4.iter().any(|net| net.contains(&ip))
}

fn v6_internal(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_internal(v4);
    }
    if NAT64_PREFIX.contains(&ip) {
        let [.., a, b] = ip.segments();
        let embedded = Ipv4Addr::from((u32::from(a) << 16) | u32::from(b));
        return v4_internal(embedded);
    }
    BLOCKED_V6.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(ip: &str) -> bool {
        is_internal(ip.parse().unwrap())
    }

    #[test]
    fn every_blocked_range_is_refused_at_both_ends() {
        for net in BLOCKED_V4.iter() {
            assert!(v4_internal(net.network()), "{net}");
            assert!(v4_internal(net.broadcast()), "{net}");
        }
        for net in BLOCKED_V6.iter() {
            assert!(v6_internal(net.network()), "{net}");
            assert!(v6_internal(net.broadcast()), "{net}");
        }
    }

    #[test]
    fn ranges_named_in_the_issue() {
        for ip in [
            // IPv4 classics
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            // multicast, reserved, benchmarking
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "198.18.0.1",
            "198.19.255.254",
            // IPv6 classics
            "::",
            "::1",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "ff0e::1",
            // IPv6 forms of internal IPv4 addresses
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:a9fe:a9fe::1",
            "2002:0808:0808::1",
            "::169.254.169.254",
            "::8.8.8.8",
            "2001:db8::1",
            "2001::1",
        ] {
            assert!(internal(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "54.172.60.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2600:1f18::1",
            "2a00:1450:4007:80e::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!internal(ip), "{ip} is public");
        }
    }
}
