//! What the fuzz targets (`fuzz/`) and their property-test twins drive: the core's
//! decoders of untrusted bytes, each with the properties it must keep. Every function
//! panics when a property breaks, and only then. Not an API.

use crate::{
    crypto::{self, Aad, Algorithm, DataKey, Header},
    media::sniff_allowed,
    phone::{Masked, parse_e164, parse_own_number, parse_sender},
    store::page_token::{self, Cursor, PageKind},
};

/// A ciphertext read back from the store: the header decoder, then opening it under a
/// fixed key. Never a panic; a header that parses names a known algorithm and leaves
/// room for its nonce and tag; nothing but a real seal under that key and AAD opens.
pub fn ciphertext(bytes: &[u8]) {
    let key = DataKey::from_bytes([7; 32]);
    let aad = Aad::field("messages", "body", "fuzz-user", "fuzz-row");
    match Header::parse(bytes) {
        Ok(h) => assert!(bytes.len() >= 6 + h.algorithm.nonce_len() + 16),
        Err(_) => assert!(crypto::open(&key, &aad, bytes).is_err()),
    }
    // Forging an AEAD tag by chance is not something a fuzzer does.
    assert!(crypto::open(&key, &aad, bytes).is_err());
    // The input as a plaintext: seals and opens back, under both algorithms, and its
    // ciphertext fails under another row's AAD.
    for algorithm in [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305] {
        let sealed = crypto::seal(algorithm, &key, 3, &aad, bytes).expect("seals");
        let header = Header::parse(&sealed).expect("own header parses");
        assert_eq!((header.algorithm, header.key_version), (algorithm, 3));
        let opened = crypto::open(&key, &aad, &sealed).expect("opens");
        assert_eq!(opened.as_slice(), bytes);
        let moved = Aad::field("messages", "body", "fuzz-user", "other-row");
        assert!(crypto::open(&key, &moved, &sealed).is_err());
    }
}

/// Every listing a page token can belong to.
const KINDS: [PageKind; 6] = [
    PageKind::Conversations,
    PageKind::Messages,
    PageKind::Numbers,
    PageKind::Search,
    PageKind::BlockedNumbers,
    PageKind::AuditEvents,
];

/// A page token from a caller: decoded for each listing. Never a panic; a token that
/// decodes belongs to exactly one listing and re-encodes to a token that decodes to the
/// same cursor.
pub fn page_token(bytes: &[u8]) {
    let token = String::from_utf8_lossy(bytes);
    let mut owners = 0;
    for kind in KINDS {
        if let Ok(Some(cursor)) = page_token::decode(kind, &token) {
            owners += 1;
            let again = page_token::encode(kind, &cursor);
            assert_eq!(page_token::decode(kind, &again), Ok(Some(cursor)));
        }
    }
    assert!(owners <= 1, "a token decodes for one listing at most");
    if token.is_empty() {
        assert_eq!(page_token::decode(PageKind::Messages, &token), Ok(None));
    }
}

/// A cursor made from raw bytes always round-trips (the encoder side of the above).
pub fn page_cursor(micros: i64, id: &str) {
    let Some(at) = chrono::DateTime::from_timestamp_micros(micros) else {
        return;
    };
    let cursor = Cursor {
        at,
        id: id.to_owned(),
    };
    let token = page_token::encode(PageKind::Search, &cursor);
    if token.len() <= 512 && !id.is_empty() {
        assert_eq!(
            page_token::decode(PageKind::Search, &token),
            Ok(Some(cursor))
        );
    }
}

/// A phone number from a caller or a webhook. Never a panic; what is accepted is
/// returned unchanged (one spelling per number) and accepted again; an E.164 number is
/// `+` and 7 to 15 digits; masking never shows more than the last 4 digits.
pub fn e164(bytes: &[u8]) {
    let value = String::from_utf8_lossy(bytes);
    if let Ok(n) = parse_e164("to", &value) {
        assert_eq!(n, value);
        let digits = &n[1..];
        assert!((7..=15).contains(&digits.len()));
        assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'));
        assert!(parse_sender("from", &n).is_ok() && parse_own_number("to", &n).is_ok());
        let masked = Masked(&n).to_string();
        let shown = masked.bytes().filter(u8::is_ascii_digit).count();
        assert_eq!(shown, 4, "{masked}");
    }
    for parsed in [parse_sender("from", &value), parse_own_number("to", &value)] {
        if let Ok(n) = parsed {
            assert_eq!(n, value);
        }
    }
    // A refusal names the field.
    if let Err(e) = parse_e164("to", &value) {
        assert!(e.to_string().contains("to"));
    }
}

/// Uploaded bytes: the sniffer never panics, and what it accepts is an allowed image
/// type whose full signature the bytes start with.
pub fn media_sniff(bytes: &[u8]) {
    if let Some(t) = sniff_allowed(bytes) {
        assert!(crate::media::ALLOWED_TYPES.contains(&t));
        let signature: &[u8] = match t {
            "image/png" => b"\x89PNG\r\n\x1a\n",
            "image/gif" => b"GIF8",
            _ => b"\xFF\xD8\xFF",
        };
        assert!(bytes.starts_with(signature), "{t} without its signature");
    }
}
