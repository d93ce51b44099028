//! Open connections per source (GATEWAY_MAX_CONNECTIONS_PER_SOURCE), beside the
//! whole server's cap: one address (an IPv6 client: its /64) cannot take every slot
//! and lock everyone else out, and the memory one source can hold with bodies in
//! flight is bounded by its share. Load balancers listed in GATEWAY_TRUSTED_PROXIES
//! carry everyone's connections and are not capped here.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use ipnet::IpNet;

use crate::client_ip::source_key;

/// Connections open per source.
pub(crate) struct SourceSlots {
    max: usize,
    trusted: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its source's count, given back when dropped.
pub(crate) struct SourceSlot {
    slots: Arc<SourceSlots>,
    /// None for a trusted proxy (not counted).
    key: Option<IpAddr>,
}

impl SourceSlots {
    pub(crate) fn new(max: usize, trusted: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            trusted,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `peer`; None when its source already has the most.
    pub(crate) fn acquire(self: &Arc<Self>, peer: IpAddr) -> Option<SourceSlot> {
        if self.trusted.iter().any(|net| net.contains(&peer)) {
            return Some(SourceSlot {
                slots: self.clone(),
                key: None,
            });
        }
        let key = source_key(peer);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            slots: self.clone(),
            key: Some(key),
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            // Sources with nothing open are forgotten: the map holds open sources only.
            if *count == 0 {
                open.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_source_gets_its_share_and_gives_it_back() {
        let slots = SourceSlots::new(2, vec!["10.0.0.0/8".parse().unwrap()]);
        let a1 = slots.acquire(ip("192.0.2.1")).unwrap();
        let _a2 = slots.acquire(ip("192.0.2.1")).unwrap();
        assert!(slots.acquire(ip("192.0.2.1")).is_none());
        assert!(slots.acquire(ip("192.0.2.2")).is_some(), "another source");
        drop(a1);
        assert!(slots.acquire(ip("192.0.2.1")).is_some(), "given back");
        // One IPv6 /64 is one source, whatever the host part.
        let _v1 = slots.acquire(ip("2001:db8::1")).unwrap();
        let _v2 = slots.acquire(ip("2001:db8::2")).unwrap();
        assert!(slots.acquire(ip("2001:db8::ffff:3")).is_none());
        // The load balancer is not capped.
        let lb: Vec<_> = (0..5).map(|_| slots.acquire(ip("10.1.1.1"))).collect();
        assert!(lb.iter().all(Option::is_some));
        drop(lb);
        assert!(slots.open.lock().unwrap().len() <= 3);
    }
}
