//! Signed, expiring tokens naming a media item, for the `GET /media/{token}` URLs the
//! core hands Twilio with an outbound MMS. The core mints them; the gateway checks
//! them before streaming anything. Both share MEDIA_URL_SECRET.
//!
//! Token: base64url(`media id` `.` `expiry unix seconds`) `.` base64url(HMAC-SHA256).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], payload: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(b"commpro.messaging.v1/media-url\0");
    mac.update(payload);
    mac
}

/// A token for `media_id` valid until `expires_at` (unix seconds).
pub fn mint(secret: &[u8], media_id: &str, expires_at: u64) -> String {
    let payload = format!("{media_id}.{expires_at}");
    let tag = mac(secret, payload.as_bytes()).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The media id of a valid, unexpired token; `None` for anything else (altered,
/// expired, malformed, other secret). Constant-time on the tag.
pub fn verify(secret: &[u8], token: &str, now: u64) -> Option<String> {
    if token.len() > 512 {
        return None;
    }
    let (payload_b64, tag_b64) = token.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag_b64).ok()?;
    mac(secret, &payload).verify_slice(&tag).ok()?;
    let payload = String::from_utf8(payload).ok()?;
    let (media_id, expires_at) = payload.rsplit_once('.')?;
    let expires_at: u64 = expires_at.parse().ok()?;
    (now <= expires_at && !media_id.is_empty()).then(|| media_id.to_owned())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn valid_until_expiry_and_tamper_proof() {
        let t = mint(b"secret", "0193-media", 1_000);
        assert_eq!(verify(b"secret", &t, 999).as_deref(), Some("0193-media"));
        assert_eq!(verify(b"secret", &t, 1_000).as_deref(), Some("0193-media"));
        assert_eq!(verify(b"secret", &t, 1_001), None, "expired");
        assert_eq!(verify(b"other", &t, 999), None, "other secret");
        let (p, tag) = t.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode("0193-other.99999");
        assert_eq!(
            verify(b"secret", &format!("{forged_payload}.{tag}"), 999),
            None,
            "altered media id"
        );
        assert_eq!(
            verify(
                b"secret",
                &format!("{p}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
                999
            ),
            None
        );
        for bad in ["", ".", "abc", "a.b.c", "%%%.%%%"] {
            assert_eq!(verify(b"secret", bad, 0), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn garbage_never_verifies(s in ".{0,200}") {
            prop_assert_eq!(verify(b"secret", &s, 0), None);
        }
    }
}
