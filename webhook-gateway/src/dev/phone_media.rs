//! Images the phone sends: held in memory and served at `/dev/phone-media/{id}` on
//! this gateway's own address, so an MMS reply carries a `MediaUrl0` the core's media
//! copier downloads for real (the dev allow-list has 127.0.0.1), exactly as it copies
//! Twilio's. Bounded: the oldest images go first once the total would pass
//! [`MAX_TOTAL_BYTES`].

use std::{
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
};

use hyper::body::Bytes;

/// The largest image the phone sends (what the core stores at most).
pub const MAX_IMAGE_BYTES: usize = crate::api::MAX_UPLOAD_BYTES;
/// All images kept at once.
const MAX_TOTAL_BYTES: usize = 64 * 1024 * 1024;

/// One stored image.
#[derive(Clone)]
pub(crate) struct Image {
    pub content_type: &'static str,
    pub bytes: Bytes,
}

#[derive(Default)]
struct Held {
    /// Oldest first.
    images: VecDeque<(String, Image)>,
    total: usize,
}

/// The phone's images; cheap to clone.
#[derive(Clone)]
pub(crate) struct PhoneImages {
    base: String,
    held: Arc<Mutex<Held>>,
}

impl PhoneImages {
    pub fn new(gateway: SocketAddr) -> Self {
        // A wildcard listen address is reached on loopback.
        let ip = match gateway.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Self {
            base: format!(
                "http://{}/dev/phone-media/",
                SocketAddr::new(ip, gateway.port())
            ),
            held: Arc::default(),
        }
    }

    /// Keeps `bytes` (already checked to be an image of `content_type`); its URL.
    /// `None` only when the system has no randomness for an unguessable name.
    pub fn add(&self, content_type: &'static str, bytes: Bytes) -> Option<String> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).ok()?;
        let id = hex::encode(id);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.total += bytes.len();
        held.images.push_back((
            id.clone(),
            Image {
                content_type,
                bytes,
            },
        ));
        while held.total > MAX_TOTAL_BYTES && held.images.len() > 1 {
            if let Some((_, old)) = held.images.pop_front() {
                held.total -= old.bytes.len();
            }
        }
        Some(format!("{}{id}", self.base))
    }

    /// The image named `id`.
    pub fn get(&self, id: &str) -> Option<Image> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.images
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, image)| image.clone())
    }

    /// The content type of `url` when it is one of ours.
    pub fn content_type_of(&self, url: &str) -> Option<&'static str> {
        self.get(url.strip_prefix(&self.base)?)
            .map(|i| i.content_type)
    }
}

/// The image type of `bytes`, from their first bytes (never the name or a header).
pub(crate) fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_served_from_the_gateway_address_and_bounded() {
        let images = PhoneImages::new("0.0.0.0:3003".parse().unwrap());
        let png = Bytes::from_static(b"\x89PNG\r\n\x1a\nrest");
        let url = images.add("image/png", png.clone()).unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:3003/dev/phone-media/"),
            "{url}"
        );
        assert_eq!(images.content_type_of(&url), Some("image/png"));
        assert_eq!(images.content_type_of("http://elsewhere/x"), None);
        let big = Bytes::from(vec![0u8; MAX_IMAGE_BYTES]);
        for _ in 0..(MAX_TOTAL_BYTES / MAX_IMAGE_BYTES + 1) {
            images.add("image/png", big.clone());
        }
        assert_eq!(images.content_type_of(&url), None, "the oldest went first");
        let held = images.held.lock().unwrap();
        assert!(held.total <= MAX_TOTAL_BYTES);
    }

    #[test]
    fn only_images_are_taken() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0"), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff(b"<svg/>"), None);
        assert_eq!(sniff(b""), None);
    }
}
