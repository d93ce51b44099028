//! MMS media: what types we accept, where encrypted bytes are kept (object_store), and
//! how inbound media are downloaded from Twilio without becoming an SSRF vector, and
//! the [`Media`] service (uploads, reads, signed URLs, the inbound copier).

mod copier;
mod fetch;
mod objects;
mod service;
mod sniff;

use std::time::Duration;

pub use fetch::{FetchError, Fetcher, HostRule};
pub use objects::MediaObjects;
pub use service::Media;
pub use sniff::{ALLOWED_TYPES, sniff_allowed};

/// Twilio's limit for one media file and for all media of one message.
pub const MAX_MEDIA_BYTES: usize = 5 * 1024 * 1024;
/// Twilio's limit of media per message.
pub const MAX_MEDIA_PER_MESSAGE: usize = 10;

/// Media settings (README table).
#[derive(Clone, Debug)]
pub struct MediaSettings {
    /// MEDIA_STORE: a folder, or an s3:// URL.
    pub store: String,
    /// Signs `GET /media/{token}` URLs; shared with the gateway.
    pub url_secret: Vec<u8>,
    pub url_ttl: Duration,
    /// Hosts inbound media may be downloaded from (exact names or `*.suffix`).
    pub allowed_hosts: Vec<HostRule>,
    pub fetch_timeout: Duration,
    pub fetch_max_attempts: u32,
    /// Delete the media on Twilio once our encrypted copy is stored.
    pub delete_after_copy: bool,
}
