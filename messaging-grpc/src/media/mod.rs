//! MMS media: what types we accept, where encrypted bytes are kept (object_store), and
//! how inbound media are downloaded from Twilio without becoming an SSRF vector, and
//! the [`Media`] service (uploads, reads, signed URLs, the inbound copier).

mod addresses;
mod copier;
mod fetch;
mod objects;
mod service;
mod sniff;

use std::time::Duration;

pub use fetch::{FetchCredentials, FetchError, Fetcher, HostRule, TWILIO_CREDENTIAL_HOSTS};
pub use objects::{MediaObjects, S3_VARIABLES};
pub use service::Media;
pub use sniff::{ALLOWED_TYPES, sniff_allowed};

/// Twilio's limit for one media file and for all media of one message.
pub const MAX_MEDIA_BYTES: usize = 5 * 1024 * 1024;
/// Twilio's limit of media per message.
pub const MAX_MEDIA_PER_MESSAGE: usize = 10;

/// Media settings (README table). Prints without its secrets.
#[derive(Clone)]
pub struct MediaSettings {
    /// MEDIA_STORE: a folder, or an s3:// URL.
    pub store: String,
    /// The `AWS_*` settings of an s3:// store ([`S3_VARIABLES`] that are set).
    pub s3_options: Vec<(String, String)>,
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

/// The `AWS_*` settings that are credentials.
const S3_SECRETS: &[&str] = &["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

impl std::fmt::Debug for MediaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = crate::redact::REDACTED;
        let s3: Vec<(&str, &str)> = self
            .s3_options
            .iter()
            .map(|(k, v)| {
                let v = if S3_SECRETS.contains(&k.as_str()) {
                    redacted
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("MediaSettings")
            .field("store", &self.store)
            .field("s3_options", &s3)
            .field("url_secret", &redacted)
            .field("url_ttl", &self.url_ttl)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("fetch_timeout", &self.fetch_timeout)
            .field("fetch_max_attempts", &self.fetch_max_attempts)
            .field("delete_after_copy", &self.delete_after_copy)
            .finish()
    }
}
