//! What the fuzz targets (`fuzz/`) and their property-test twins drive: the core's
//! decoders of untrusted bytes, each with the properties it must keep. Every function
//! panics when a property breaks, and only then. Not an API.

use crate::{
    crypto::{self, Aad, Algorithm, DataKey, Header},
    media::sniff_allowed,
    phone::{Masked, parse_e164, parse_own_number, parse_sender},
    store::page_token::{self, Cursor, PageKind, Scope},
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

/// A page token from a caller: decoded for each listing of two callers. Never a panic;
/// a token that decodes belongs to exactly one listing of one caller and re-encodes to
/// a token that decodes to the same cursor.
pub fn page_token(bytes: &[u8]) {
    let token = String::from_utf8_lossy(bytes);
    let mut owners = 0;
    for kind in KINDS {
        for caller in ["alice", "bob"] {
            let scope = Scope::new(kind, &[caller]);
            if let Ok(Some(cursor)) = page_token::decode(&scope, &token) {
                owners += 1;
                let again = page_token::encode(&scope, &cursor);
                assert_eq!(page_token::decode(&scope, &again), Ok(Some(cursor)));
            }
        }
    }
    assert!(
        owners <= 1,
        "a token decodes for one listing of one caller at most"
    );
    if token.is_empty() {
        let scope = Scope::new(PageKind::Messages, &["alice"]);
        assert_eq!(page_token::decode(&scope, &token), Ok(None));
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
    let scope = Scope::new(PageKind::Search, &["alice", "", id]);
    let token = page_token::encode(&scope, &cursor);
    if token.len() <= 512 && !id.is_empty() {
        assert_eq!(page_token::decode(&scope, &token), Ok(Some(cursor)));
        let other = Scope::new(PageKind::Search, &["bob", "", id]);
        assert!(page_token::decode(&other, &token).is_err());
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
    for n in [parse_sender("from", &value), parse_own_number("to", &value)]
        .into_iter()
        .flatten()
    {
        assert_eq!(n, value);
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

/// The fuzz targets' properties in the normal suite: proptest inputs shaped like the
/// real thing (sealed fields with bits flipped, tokens, numbers, image headers) plus
/// arbitrary bytes, and the corpus kept in `fuzz/corpus` (crashes found by fuzzing
/// are added there, so each stays a regression test here too).
#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every file of `fuzz/corpus/<target>`.
    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let files: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|f| std::fs::read(f.expect("corpus entry").path()).expect("corpus file"))
            .collect();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        files
    }

    #[test]
    fn corpora_keep_their_properties() {
        corpus("ciphertext_header")
            .iter()
            .for_each(|c| ciphertext(c));
        corpus("page_token").iter().for_each(|c| page_token(c));
        corpus("e164").iter().for_each(|c| e164(c));
        corpus("media_sniff").iter().for_each(|c| media_sniff(c));
    }

    proptest! {
        #[test]
        fn ciphertext_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            ciphertext(&bytes);
        }

        #[test]
        fn ciphertext_flipped(plain in ".{0,40}", at in any::<usize>(), bit in 0u8..8) {
            let key = DataKey::from_bytes([7; 32]);
            let aad = Aad::field("messages", "body", "fuzz-user", "fuzz-row");
            let mut sealed = crypto::seal(Algorithm::Aes256Gcm, &key, 1, &aad, plain.as_bytes()).unwrap();
            let at = at % sealed.len();
            sealed[at] ^= 1 << bit;
            ciphertext(&sealed);
        }

        #[test]
        fn page_token_strings(s in "[A-Za-z0-9_-]{0,80}|.{0,80}") {
            page_token(s.as_bytes());
        }

        #[test]
        fn page_cursors(micros in any::<i64>(), id in ".{0,100}") {
            page_cursor(micros, &id);
        }

        #[test]
        fn phone_numbers(s in "\\+?[0-9]{0,17}|[A-Za-z0-9 ]{0,12}|.{0,20}") {
            e164(s.as_bytes());
        }

        #[test]
        fn media_headers(
            head in prop_oneof![
                Just(b"\x89PNG\r\n\x1a\n".to_vec()),
                Just(b"GIF89a".to_vec()),
                Just(b"GIF87a".to_vec()),
                Just(b"\xFF\xD8\xFF".to_vec()),
                Just(Vec::new()),
            ],
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            media_sniff(&[head, tail].concat());
        }
    }
}
